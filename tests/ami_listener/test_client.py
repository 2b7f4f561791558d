"""AmiClient against a small fake AMI server on loopback: login, events, list actions,
watchdog on a half-open connection, reconnect with backoff, oversized frame."""

from __future__ import annotations

import asyncio
from typing import Any

from ami_listener.client import AmiClient
from ami_listener.liveness import Backoff, Watchdog

EVENT = b"Event: Newchannel\r\nUniqueid: 1.1\r\nCallerIDNum: 05321234567\r\n\r\n"


class FakeAmi:
    def __init__(self) -> None:
        self.answer_pings = True
        self.connections = 0
        self.logins: list[str] = []
        self.flood = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                fields = dict(
                    line.split(": ", 1)
                    for line in raw.decode().strip().split("\r\n")
                    if ": " in line
                )
                action, action_id = fields.get("Action", ""), fields.get("ActionID", "")
                if action == "Login":
                    ok = fields.get("Secret") == "s3cret"
                    self.logins.append(fields.get("Username", ""))
                    status = "Success" if ok else "Error"
                    writer.write(f"Response: {status}\r\nActionID: {action_id}\r\n\r\n".encode())
                    if ok:
                        writer.write(EVENT)
                        if self.flood:
                            writer.write(b"Event: Huge\r\nX: " + b"A" * 200_000)
                elif action == "Ping" and self.answer_pings:
                    writer.write(
                        f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n".encode()
                    )
                elif action == "CoreShowChannels":
                    writer.write(
                        f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n"
                        f"Message: Channels will follow\r\n\r\n"
                        f"Event: CoreShowChannel\r\nActionID: {action_id}\r\nUniqueid: 9.9\r\n\r\n"
                        f"Event: CoreShowChannelsComplete\r\nActionID: {action_id}\r\n"
                        f"EventList: Complete\r\nListItems: 1\r\n\r\n".encode()
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _run(fake: FakeAmi, secret: str, until: Any, **kwargs: Any) -> AmiClient:
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[Any] = []
    listed: list[Any] = []

    async def on_login(client: AmiClient) -> None:
        listed.extend(await client.event_list({"Action": "CoreShowChannels"}, timeout=2))

    client = AmiClient(
        "127.0.0.1",
        port,
        "listener",
        secret,
        events.append,
        on_login,
        backoff=Backoff(base=0.01, cap=0.05),
        **kwargs,
    )
    client.test_events = events  # type: ignore[attr-defined]
    client.test_listed = listed  # type: ignore[attr-defined]
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        for _ in range(300):
            if until(client, fake):
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        server.close()
        await server.wait_closed()
    return client


def test_login_events_and_event_list() -> None:
    fake = FakeAmi()
    client = asyncio.run(
        _run(fake, "s3cret", lambda c, f: c.test_listed and c.test_events)  # type: ignore[attr-defined]
    )
    assert client.stats.logins == 1
    assert client.test_events[0]["CallerIDNum"] == "05321234567"  # type: ignore[attr-defined]
    assert [e["Event"] for e in client.test_listed] == [  # type: ignore[attr-defined]
        "CoreShowChannel",
        "CoreShowChannelsComplete",
    ]


def test_refused_login_backs_off_and_retries() -> None:
    fake = FakeAmi()
    client = asyncio.run(_run(fake, "wrong", lambda c, f: f.connections >= 3))
    assert client.stats.logins == 0
    assert fake.connections >= 3
    assert client.backoff.failures >= 2


def test_half_open_connection_is_closed_by_watchdog_and_reconnected() -> None:
    fake = FakeAmi()
    fake.answer_pings = False
    client = asyncio.run(
        _run(
            fake,
            "s3cret",
            lambda c, f: c.stats.watchdog_aborts >= 1 and f.connections >= 2,
            watchdog=Watchdog(interval=0.05, timeout=0.05),
        )
    )
    assert client.stats.watchdog_aborts >= 1
    assert fake.connections >= 2 and client.stats.logins >= 2


def test_oversized_frame_drops_connection_and_reconnects() -> None:
    fake = FakeAmi()
    fake.flood = True
    client = asyncio.run(
        _run(
            fake,
            "s3cret",
            lambda c, f: c.stats.overflow_aborts >= 1 and f.connections >= 2,
            max_frame=64 * 1024,
        )
    )
    assert client.stats.overflow_aborts >= 1
    assert fake.connections >= 2


def test_action_while_disconnected_fails_fast() -> None:
    client = AmiClient("127.0.0.1", 1, "listener", "x", lambda e: None)

    async def go() -> str:
        try:
            await client.action({"Action": "Ping"})
        except ConnectionError:
            return "refused"
        return "sent"

    assert asyncio.run(go()) == "refused"
