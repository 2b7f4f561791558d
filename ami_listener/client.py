"""AMI connection: panoramisk's protocol with bounded strict framing, and our own supervisor.

What is reused from panoramisk 1.4: ``AMIProtocol.send`` (action serialisation and ActionID
registration), ``Action`` (ActionIDs, event-list completion: ``*Complete``) and ``Message``.
What is replaced, and why (engineering.md §2):

- ``data_received``: panoramisk's buffer is unbounded, re-scanned on every read and decoded
  with ``errors='ignore'``. :class:`BoundedAMIProtocol` uses :class:`~ami_listener.framing.
  FrameDecoder` (64 KiB frame cap, strict UTF-8: bad frames are counted and dropped; an
  oversized frame aborts the connection because the stream position is lost).
- ``close``/``connection_lost``: panoramisk re-queues unanswered actions for a later
  connection and its ``Manager`` reconnects at a fixed delay, pings without checking replies,
  waits for ``FullyBooted`` (never sent without ``system`` read) and lets actions sent while
  disconnected hang forever. :class:`AmiClient` fails pending actions on disconnect, wraps
  every action in ``asyncio.wait_for``, runs its own ping watchdog that aborts a half-open
  connection, and reconnects with exponential backoff and full jitter. panoramisk's
  ``Manager`` is therefore not used at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk.actions import Action  # type: ignore[import-untyped,unused-ignore]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped,unused-ignore]
from panoramisk.message import Message  # type: ignore[import-untyped,unused-ignore]

from ami_listener.framing import DEFAULT_MAX_FRAME, AmiEvent, FrameDecoder
from ami_listener.liveness import Backoff, Watchdog

log = logging.getLogger(__name__)


class AmiError(Exception):
    """Login refused or an action failed."""


@dataclass
class ClientStats:
    connects: int = 0
    logins: int = 0
    disconnects: int = 0
    watchdog_aborts: int = 0
    overflow_aborts: int = 0
    action_timeouts: int = 0
    events: int = 0


class BoundedAMIProtocol(AMIProtocol):  # type: ignore[misc]
    """An ``AMIProtocol`` whose input side is bounded and strict (see module doc)."""

    def __init__(
        self,
        on_event: Callable[[AmiEvent], None],
        on_lost: Callable[[Exception | None], None] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        on_traffic: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_event = on_event
        self._on_lost = on_lost
        self._on_traffic = on_traffic
        self.decoder = FrameDecoder(max_frame)
        self.encoding = "utf-8"
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.log = log
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        result = self.decoder.feed(data)
        if result.frames and self._on_traffic is not None:
            self._on_traffic()
        for frame in result.frames:
            try:
                self._route(frame)
            except Exception:  # a handler bug must not kill the connection
                log.exception("AMI frame handler failed")
        if result.overflow:
            log.error(
                "AMI frame larger than %d bytes: dropping the connection (will reconnect)",
                self.decoder.max_frame,
            )
            self.transport.abort()

    def _route(self, frame: dict[str, str]) -> None:
        action_id = frame.get("ActionID")
        pending = self.responses.get(action_id) if action_id else None
        if pending is not None:
            if pending.add_message(Message(frame)):
                self.responses.pop(pending.id, None)
                self.responses.pop(action_id, None)
            return
        if "Event" in frame:
            self._on_event(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        for action in list(self.responses.values()):
            if not action.future.done():
                action.future.set_exception(ConnectionError("AMI connection lost"))
        self.responses.clear()
        if self._on_lost is not None:
            self._on_lost(exc)

    def close(self) -> None:
        if not self.closed:
            self.transport.abort()


async def send_action(
    protocol: BoundedAMIProtocol | None,
    fields: Mapping[str, Any],
    *,
    timeout: float,
    as_list: bool | None = None,
) -> Any:
    """Send one action on ``protocol`` and wait at most ``timeout`` seconds for its response
    (or its event list). ``ConnectionError`` when not connected; on ``TimeoutError`` the
    pending response is forgotten, so a late answer is dropped."""
    if protocol is None or protocol.closed:
        raise ConnectionError("not connected to AMI")
    action = Action(dict(fields), as_list=as_list)
    future = protocol.send(action, as_list=as_list)
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        protocol.responses.pop(action.id, None)
        raise


OnLogin = Callable[["AmiClient"], Awaitable[None]]


class AmiClient:
    """One supervised AMI session at a time, forever (until ``stop`` is set)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: Callable[[AmiEvent], None],
        on_login: OnLogin | None = None,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        connect_timeout: float = 5.0,
        action_timeout: float = 5.0,
        watchdog: Watchdog | None = None,
        backoff: Backoff | None = None,
        stable_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = host, port
        self.username, self._secret = username, secret
        self.on_event = on_event
        self.on_login = on_login
        self.max_frame = max_frame
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self.watchdog = watchdog or Watchdog()
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        self.clock = clock
        self.stats = ClientStats()
        self.protocol: BoundedAMIProtocol | None = None

    def _event(self, event: AmiEvent) -> None:
        self.stats.events += 1
        self.on_event(event)

    async def action(
        self,
        fields: Mapping[str, str],
        *,
        timeout: float | None = None,
        as_list: bool | None = None,
    ) -> Any:
        """Send an action and wait (bounded) for its response, or its event list."""
        try:
            return await send_action(
                self.protocol, fields, timeout=timeout or self.action_timeout, as_list=as_list
            )
        except TimeoutError:
            self.stats.action_timeouts += 1
            raise

    async def event_list(self, fields: Mapping[str, str], timeout: float = 15.0) -> list[AmiEvent]:
        """Run a list action (``CoreShowChannels``, ``QueueStatus``) and return its events."""
        messages = await self.action(fields, timeout=timeout, as_list=True)
        if not isinstance(messages, list):
            messages = [messages]
        return [dict(m.items()) for m in messages if "Event" in m]

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, log in, reconcile, watch; on any failure back off and start again."""
        while not stop.is_set():
            started = self.clock()
            logged_in = False
            try:
                logged_in = await self._session(stop)
            except (OSError, TimeoutError, AmiError, ConnectionError) as exc:
                log.warning("AMI %s:%d: %s", self.host, self.port, exc or type(exc).__name__)
            except Exception:
                log.exception("AMI session failed")
            if stop.is_set():
                break
            if logged_in and self.clock() - started >= self.stable_after:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            log.info("AMI: reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, stop: asyncio.Event) -> bool:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()

        def on_lost(exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(None)

        def factory() -> BoundedAMIProtocol:
            return BoundedAMIProtocol(
                self._event,
                on_lost,
                self.max_frame,
                on_traffic=lambda: self.watchdog.traffic(self.clock()),
            )

        transport, protocol = await asyncio.wait_for(
            loop.create_connection(factory, self.host, self.port), self.connect_timeout
        )
        self.stats.connects += 1
        self.protocol = protocol
        logged_in = False
        try:
            response = await self.action(
                {
                    "Action": "Login",
                    "Username": self.username,
                    "Secret": self._secret,
                    "Events": "on",
                }
            )
            if not response.success:
                raise AmiError(f"login refused for AMI user {self.username!r}")
            logged_in = True
            self.stats.logins += 1
            log.info("AMI: logged in as %s (%s)", self.username, protocol.decoder.banner)
            self.watchdog.start(self.clock())
            if self.on_login is not None:
                await self.on_login(self)
            await self._watch(lost, stop, transport)
        finally:
            if protocol.decoder.closed:
                self.stats.overflow_aborts += 1
            self.stats.disconnects += 1
            self.protocol = None
            transport.abort()
        return logged_in

    async def _watch(self, lost: asyncio.Future[None], stop: asyncio.Event, transport: Any) -> None:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while not lost.done() and not stop.is_set():
                wait = max(0.0, self.watchdog.next_ping_at() - self.clock())
                waiters: set[asyncio.Future[Any]] = {lost, stopping}
                await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if lost.done() or stop.is_set():
                    return
                if not self.watchdog.ping_due(self.clock()):
                    continue
                if not await self.ping():
                    self.stats.watchdog_aborts += 1
                    log.error(
                        "AMI: Ping unanswered within %.1f s: closing the connection",
                        self.watchdog.timeout,
                    )
                    transport.abort()
                    return
        finally:
            stopping.cancel()

    async def ping(self) -> bool:
        """One watchdog round: ``True`` when Asterisk answered in time."""
        self.watchdog.ping_sent(self.clock())
        try:
            await self.action({"Action": "Ping"}, timeout=self.watchdog.timeout)
        except (TimeoutError, ConnectionError):
            return False
        self.watchdog.pong(self.clock())
        return True
