"""Screen pop over Server-Sent Events through the real pieces: waitress serving the console,
the Redis stream the AMI listener writes (same key and message shape), an HTTP client that
reads the stream as a browser's EventSource does. Waits are bounded, never speed claims."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from acikkapi.db import make_engine, make_session_factory
from agent_console import create_app
from agent_console.screenpop import STREAM
from models import Role, StaffUser
from tests.console.conftest import PASSWORD, PASSWORD_HASH, REDIS_URL, console_settings

WAIT = 10.0  # seconds an event may take to arrive (bounded; not a latency claim)


@dataclass
class Server:
    host: str
    port: int
    agent: StaffUser
    other_agent: StaffUser
    redis: redis.Redis


def _seed(url: str) -> None:
    from acikkapi.migrate import upgrade
    from services.catalogue_loader import load_catalogue, load_demo, load_holidays

    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        load_holidays(session)
        load_catalogue(session, now)
        load_demo(session, now)
        for user in session.scalars(select(StaffUser).where(StaffUser.role == Role.AGENT)):
            user.password_hash = PASSWORD_HASH
        session.commit()
    engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from waitress.server import create_server

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis on 127.0.0.1:6379 is needed: {exc}")
    client.delete(STREAM)
    client.xadd(STREAM, {"agent_id": "0", "data": "{}"})  # an old entry the hub must skip
    workdir: Path = tmp_path_factory.mktemp("sse")
    url = f"sqlite:///{workdir / 'console.db'}"
    _seed(url)
    engine = make_engine(url)
    app = create_app(console_settings(workdir / "instance", url), session_factory=None)
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    with make_session_factory(engine)() as session:
        agents = list(
            session.scalars(
                select(StaffUser).where(StaffUser.role == Role.AGENT).order_by(StaffUser.id)
            )
        )
    try:
        yield Server("127.0.0.1", int(wsgi.effective_port), agents[0], agents[1], client)
    finally:
        hub = app.extensions["acikkapi"].screenpops
        if hub is not None:
            hub.stop()
        wsgi.close()
        thread.join(5)
        engine.dispose()
        client.delete(STREAM)
        client.close()


def sign_in(server: Server, username: str) -> str:
    """The session cookie of a signed-in browser."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/login")
    page = conn.getresponse()
    cookie = page.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    assert token
    body = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    conn.request(
        "POST",
        "/login",
        body,
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    done = conn.getresponse()
    done.read()
    assert done.status == 302, done.status
    cookie = done.getheader("Set-Cookie", "").split(";", 1)[0]
    conn.close()
    return cookie


class EventStream:
    """Reads ``text/event-stream`` on a background thread, like EventSource."""

    def __init__(self, server: Server, cookie: str, last_id: str | None = None, since: str = ""):
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        headers = {"Cookie": cookie, "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        path = "/agent/events" + (f"?since={since}" if since else "")
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                text = line.decode().rstrip("\n")
                if not text:
                    if "data" in event:
                        with self._lock:
                            self.events.append(event)
                            self.arrived.append(time.monotonic())
                            self._lock.notify_all()
                    event = {}
                elif text.startswith(":"):
                    continue
                else:
                    key, _sep, value = text.partition(": ")
                    event[key] = value
        except (OSError, ValueError):
            return

    def wait(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.events) >= count, timeout)
            return list(self.events)

    def close(self) -> None:
        self.conn.close()


def publish(server: Server, agent_id: int, call_id: str) -> str:
    """What the AMI listener's ScreenPopPublisher appends (ami_listener/screenpop.py)."""
    message = {"type": "screen_pop", "call_id": call_id, "agent_id": agent_id}
    entry = server.redis.xadd(
        STREAM, {"agent_id": str(agent_id), "data": json.dumps(message)}, maxlen=10_000
    )
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def test_screen_pop_reaches_the_answering_agent_only(server: Server) -> None:
    mine = EventStream(server, sign_in(server, server.agent.username))
    theirs = EventStream(server, sign_in(server, server.other_agent.username))
    try:
        assert mine.response.status == 200
        assert mine.response.getheader("Content-Type", "").startswith("text/event-stream")
        time.sleep(0.5)  # both streams are waiting on the hub (not a speed claim)
        sent = time.monotonic()
        entry = publish(server, server.agent.id, "1795000000.1")
        got = mine.wait(1)
        assert [e["event"] for e in got] == ["screen_pop"]
        assert got[0]["id"] == entry
        assert json.loads(got[0]["data"])["call_id"] == "1795000000.1"
        assert mine.arrived[0] - sent < WAIT
        publish(server, server.other_agent.id, "1795000000.2")
        assert [json.loads(e["data"])["call_id"] for e in theirs.wait(1)] == ["1795000000.2"]
        assert len(mine.wait(2, timeout=1.0)) == 1  # the other agent's pop is not mine
    finally:
        mine.close()
        theirs.close()


def test_a_reconnecting_browser_gets_what_it_missed(server: Server) -> None:
    cookie = sign_in(server, server.agent.username)
    first = EventStream(server, cookie)
    time.sleep(0.5)
    seen = publish(server, server.agent.id, "1795000000.10")
    assert len(first.wait(1)) == 1
    first.close()
    publish(server, server.agent.id, "1795000000.11")  # while the browser is away
    again = EventStream(server, cookie, last_id=seen)
    try:
        calls = [json.loads(e["data"])["call_id"] for e in again.wait(1)]
        assert calls == ["1795000000.11"]
    finally:
        again.close()


def test_a_pop_between_page_load_and_stream_start_is_not_lost(server: Server) -> None:
    cookie = sign_in(server, server.agent.username)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/agent", headers={"Cookie": cookie})
    page = conn.getresponse().read().decode()
    conn.close()
    since = re.search(r'data-since="([^"]+)"', page)
    assert since
    publish(server, server.agent.id, "1795000000.20")  # before the script connects
    stream = EventStream(server, cookie, since=since.group(1))
    try:
        assert [json.loads(e["data"])["call_id"] for e in stream.wait(1)] == ["1795000000.20"]
    finally:
        stream.close()


def test_the_stream_needs_a_signed_in_call_taker(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/agent/events", headers={"Accept": "text/event-stream"})
    response = conn.getresponse()
    assert response.status == 401
    conn.close()
