"""FastAGI fixtures: a real server on an ephemeral loopback port, and a fake Asterisk.

The domain suite's ``session`` fixture lives inside a rolled-back transaction that the
server's worker threads cannot see, so the server gets its own migrated and seeded SQLite
database (committed), built once per run with the real migrations and loaders.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from acikkapi.db import make_engine, make_session_factory
from acikkapi.migrate import upgrade
from agi.server import AgiContext, AgiServer, serve
from models import Channel, CitizenPhone
from services.actors import system_actor
from services.catalogue_loader import load_catalogue, load_demo, load_holidays
from services.intake import open_ticket
from services.surveys import ensure_default_questions
from tests.conftest import FIXED_NOW
from tests.factories import add_citizen, request

AYSE = "+905053618877"  # demo citizen Ayşe Yılmaz
SHARED_LANDLINE = "+902164386293"  # Ayşe's and Mehmet's home phone
JOHN = "+905335475342"  # demo citizen John Smith, preferred language English
GULSUM = "+905302650201"  # demo citizen Gülsüm Doğan: elderly, lives alone
QUOTED = "+905559990011"  # a citizen whose name needs escaping


@pytest.fixture(scope="session")
def agi_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("agi-db") / "agi.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        load_holidays(session)
        load_catalogue(session, FIXED_NOW)
        load_demo(session, FIXED_NOW)
        ensure_default_questions(session)
        actor = system_actor(session, "test", FIXED_NOW)
        open_ticket(
            session,
            actor,
            FIXED_NOW,
            request(Channel.PHONE, phone=AYSE, tc_number="41339237316", first_name="Ayşe"),
        )
        add_citizen(session, FIXED_NOW, QUOTED, first_name='Ali "Deli"', last_name="Back\\slash")
        session.commit()
    yield engine
    engine.dispose()


def citizen_id_by_phone(engine: Engine, e164: str) -> int:
    with Session(engine) as session:
        found = session.scalar(
            select(CitizenPhone.citizen_id).where(CitizenPhone.e164 == e164).limit(1)
        )
    assert found is not None
    return found


class RunningServer:
    """An AGI server running its own event loop in a background thread."""

    def __init__(self, context: AgiContext) -> None:
        self.context = context
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.server: AgiServer | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            await serve(
                self.context,
                "127.0.0.1",
                0,
                stop=self.stop_event,
                install_signal_handlers=False,
                ready=self._on_ready,
            )

        self.loop.run_until_complete(main())
        self.loop.close()

    def _on_ready(self, server: AgiServer) -> None:
        self.server = server
        self._ready.set()

    def start(self) -> RunningServer:
        self.thread.start()
        assert self._ready.wait(10), "FastAGI server did not start"
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        assert not self.thread.is_alive(), "FastAGI server did not stop"


@pytest.fixture
def start_server(agi_engine: Engine) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def start(**overrides: object) -> RunningServer:
        options: dict[str, object] = {"session_factory": make_session_factory(agi_engine)}
        options.update(overrides)
        server = RunningServer(AgiContext(**options)).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def agi_server(start_server: Callable[..., RunningServer]) -> RunningServer:
    return start_server(clock=lambda: FIXED_NOW)


# -- a fake Asterisk speaking the FastAGI protocol --------------------------------------------


def asterisk_parse_args(line: str) -> list[str]:
    """Split an AGI command line exactly as Asterisk's ``parse_args`` (res_agi.c) does."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                args.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            args.append("")
        cur.append(ch)
        args[-1] = "".join(cur)
        escaped = False
    return args


HANGUP = "HANGUP"


@dataclass
class AgiCall:
    """What one FastAGI session did: the commands received and the channel's variables."""

    commands: list[str] = field(default_factory=list)
    channel: dict[str, str] = field(default_factory=dict)
    hung_up: bool = False

    @property
    def set_commands(self) -> list[str]:
        return [c for c in self.commands if c.startswith("SET VARIABLE ")]


def headers_block(route: str, callerid: str = "0505 361 88 77", **extra: str) -> bytes:
    headers = {
        "agi_network": "yes",
        "agi_network_script": route,
        "agi_request": f"agi://127.0.0.1/{route}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "tr",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1764300000.1",
        "agi_version": "22.1.0",
        "agi_callerid": callerid,
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_dnid": "4448007",
        "agi_rdnis": "unknown",
        "agi_context": "acikkapi-inbound",
        "agi_extension": "4448007",
        "agi_priority": "5",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
    }
    headers.update(extra)
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"


def agi_call(
    port: int,
    route: str,
    *,
    callerid: str = "0505 361 88 77",
    variables: dict[str, str] | None = None,
    digits: list[str | None] | None = None,
    raw_headers: bytes | None = None,
    timeout: float = 10.0,
    **extra_headers: str,
) -> AgiCall:
    """Play Asterisk: send the header block, answer every command until the server hangs up.

    ``digits`` scripts the GET DATA replies in order: a digit string, ``None`` for a
    timeout, or :data:`HANGUP` (the caller hangs up: ``HANGUP`` then 511 for every command).
    """
    call = AgiCall(channel=dict(variables or {}))
    script = list(digits or [])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw_headers or headers_block(route, callerid, **extra_headers))
        stream = sock.makefile("rb")
        while True:
            raw = stream.readline()
            if not raw:
                return call
            line = raw.decode("utf-8").rstrip("\n")  # strict: the server must send UTF-8
            call.commands.append(line)
            sock.sendall(_reply(call, line, script).encode("utf-8"))


def _reply(call: AgiCall, line: str, script: list[str | None]) -> str:
    if call.hung_up:
        return "511 Command Not Permitted on a dead channel or intercept routine\n"
    args = asterisk_parse_args(line)
    verb = " ".join(args[:2]).upper()
    if verb == "SET VARIABLE" and len(args) == 4:
        call.channel[args[2]] = args[3]
        return "200 result=1\n"
    if verb == "GET VARIABLE" and len(args) == 3:
        value = call.channel.get(args[2])
        return f"200 result=1 ({value})\n" if value else "200 result=0\n"
    if verb == "GET DATA":
        answer = script.pop(0) if script else None
        if answer == HANGUP:
            call.hung_up = True
            return "HANGUP\n"
        return "200 result= (timeout)\n" if answer is None else f"200 result={answer}\n"
    if verb == "STREAM FILE":
        return "200 result=0 endpos=8000\n"
    return "510 Invalid or unknown command\n"
