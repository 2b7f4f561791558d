"""The FastAGI server Asterisk calls (``AGI(agi://127.0.0.1:4573/<route>,arg1,...)``).

Built on ``panoramisk.fast_agi.Application`` (route table, async routes) with its connection
handler replaced, because panoramisk 1.4's ``handler`` loops forever at 100 % CPU when a
client closes before the blank line ending the headers, buffers headers without bound,
decodes them strictly (one bad byte in a caller ID and the call gets no answer) and never
times out. Here:

* headers are bounded (:data:`MAX_HEADER_BYTES`) and must arrive within
  :data:`HEADER_TIMEOUT` seconds; bytes that are not UTF-8 are kept as lone surrogates, so a
  route can reject — never silently alter — a bad caller ID;
* each route runs as ``async def``; database work goes to a worker thread
  (:meth:`AgiContext.run_db`, one short transaction, committed on success) with a timeout,
  so the event loop never blocks and a slow or unreachable database never holds a call;
* any error in a route is logged and the socket closed: Asterisk sets ``AGISTATUS`` and the
  dialplan goes on (engineering.md §3); the server keeps serving;
* it binds to loopback by default (FastAGI has no authentication) and stops gracefully on
  SIGTERM/SIGINT: no new connections, in-flight calls get :data:`SHUTDOWN_GRACE` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from panoramisk.fast_agi import Application
from sqlalchemy.orm import Session

from agi.protocol import AgiError, AgiHangup, AgiRequest
from models import Language
from services.service_hours import StaffedHours

log = logging.getLogger("acikkapi.agi")

MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT = 5.0
SHUTDOWN_GRACE = 5.0
DB_WORKERS = 8

T = TypeVar("T")
Route = Callable[[AgiRequest], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AgiContext:
    """What routes need besides the request: database access and the policy values.

    Services read no settings; the server passes what they need from here.
    """

    session_factory: Callable[[], Session]
    staffed_hours: StaffedHours | None = None
    default_language: Language = Language.TR
    db_timeout: float = 2.0  # the dialplan waits for us: give up on the database quickly
    command_timeout: float = 10.0  # a reply to one AGI command (GET DATA waits up to 5 s)
    clock: Callable[[], datetime] = _utc_now
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    async def run_db(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a worker thread, in one transaction (commit on success).

        Raises ``TimeoutError`` after :attr:`db_timeout` seconds (the thread finishes or
        fails on its own; its transaction is rolled back or committed there).
        """
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, self._in_transaction, work)
        return await asyncio.wait_for(future, self.db_timeout)

    def _in_transaction(self, work: Callable[[Session], T]) -> T:
        session = self.session_factory()
        try:
            result = work(session)
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


class AgiApplication(Application):  # type: ignore[misc]  # panoramisk ships no type hints
    """panoramisk's route table with a bounded, strict-but-lossless connection handler."""

    def __init__(self, context: AgiContext) -> None:
        super().__init__(loop=asyncio.get_running_loop())
        self.context = context
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.served = 0

    @property
    def routes(self) -> OrderedDict[str, Route]:
        return self._route  # type: ignore[no-any-return]

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            await self._serve(reader, writer)
        except Exception:  # never let one connection take the server down
            log.exception("FastAGI connection failed")
        finally:
            if task is not None:
                self.in_flight.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            block = await asyncio.wait_for(reader.readuntil(b"\n\n"), HEADER_TIMEOUT)
        except asyncio.IncompleteReadError:
            log.warning("FastAGI client %s closed before sending its headers", peer)
            return
        except asyncio.LimitOverrunError:
            log.warning("FastAGI client %s sent more than %d header bytes", peer, MAX_HEADER_BYTES)
            return
        except TimeoutError:
            log.warning("FastAGI client %s sent no headers within %.0f s", peer, HEADER_TIMEOUT)
            return
        headers = parse_headers(block)
        script = headers.get("agi_network_script", "")
        route = self.routes.get(script.split("?", 1)[0])
        if route is None:
            log.error("no FastAGI route %r (from %s)", script, peer)
            return
        request = AgiRequest(self, headers, reader, writer, self.context)
        started = time.perf_counter()
        try:
            await route(request)
        except AgiHangup as exc:
            log.info("route %s: channel hung up (%s)", script, exc)
        except AgiError as exc:
            log.warning("route %s: AGI conversation failed: %s", script, exc)
        except Exception:
            log.exception("route %s failed", script)
        finally:
            self.served += 1
            log.debug(
                "route %s call %s done in %.1f ms",
                script,
                headers.get("agi_uniqueid", "?"),
                (time.perf_counter() - started) * 1000,
            )


def parse_headers(block: bytes) -> dict[str, str]:
    """``agi_name: value`` lines up to the blank line; undecodable bytes kept as surrogates."""
    headers: dict[str, str] = {}
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r").decode("utf-8", "surrogateescape")
        name, sep, value = line.partition(": ")
        if sep and name.startswith("agi_"):
            headers[name] = value
        elif line.endswith(":") and line[:-1].startswith("agi_"):  # "agi_rdnis:" (empty)
            headers[line[:-1]] = ""
    return headers


def build_application(context: AgiContext) -> AgiApplication:
    """The application with every route of :mod:`agi.routes` registered."""
    from agi.routes import ROUTES

    app = AgiApplication(context)
    for path, endpoint in ROUTES.items():
        app.add_route(path, endpoint)
    return app


class AgiServer:
    """A running FastAGI listener (start/stop from a running event loop)."""

    def __init__(self, context: AgiContext, host: str = "127.0.0.1", port: int = 4573) -> None:
        self.context = context
        self.host = host
        self.port = port
        self.app: AgiApplication | None = None
        self._server: asyncio.Server | None = None
        self._owns_executor = False

    async def start(self) -> None:
        if self.context.executor is None:
            self.context.executor = ThreadPoolExecutor(DB_WORKERS, thread_name_prefix="agi-db")
            self._owns_executor = True
        self.app = build_application(self.context)
        self._server = await asyncio.start_server(
            self.app.handler, self.host, self.port, limit=MAX_HEADER_BYTES
        )
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        log.info(
            "FastAGI listening on %s:%d (routes: %s)",
            self.host,
            self.port,
            ", ".join(self.app.routes),
        )

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, give in-flight calls ``grace`` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
        pending = set(self.app.in_flight) if self.app is not None else set()
        if pending:
            log.info("waiting for %d FastAGI call(s) to finish", len(pending))
            _done, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
        if self._owns_executor and self.context.executor is not None:
            self.context.executor.shutdown(wait=False, cancel_futures=True)
            self.context.executor = None
        log.info("FastAGI server stopped")


async def serve(
    context: AgiContext,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    install_signal_handlers: bool = True,
    ready: Callable[[AgiServer], None] | None = None,
) -> None:
    """Run the server until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    server = AgiServer(context, host, port)
    await server.start()
    if install_signal_handlers:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
        log.info("stop requested")
    finally:
        await server.stop()
