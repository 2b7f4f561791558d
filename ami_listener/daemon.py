"""Wiring of the listener daemon: AMI client -> tracker -> writer -> ticket stage -> Redis.

``run_listener`` is what ``acikkapi ami-listener run`` calls. The event callback is synchronous
and cheap (parse, track, enqueue); everything slow happens in the writer (call records, a
worker thread) and the ticket stage (tickets of answered calls and their screen pops: a worker
process on PostgreSQL, a thread on SQLite), each with its own transactions.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acikkapi.db import engine_from_settings, make_session_factory, unit_of_work
from acikkapi.settings import Settings
from ami_listener.call_tracker import CallTracker, TrackerConfig
from ami_listener.callback_events import CallbackStage
from ami_listener.client import AmiClient
from ami_listener.framing import DEFAULT_MAX_FRAME, AmiEvent
from ami_listener.liveness import Backoff, Watchdog
from ami_listener.outbound_events import OutboundStage
from ami_listener.queue_log import QueueLogReader
from ami_listener.reconcile import reconcile
from ami_listener.screenpop import ScreenPopPublisher
from ami_listener.tickets import TicketStage
from ami_listener.writer import FactWriter
from telephony.asterisk import detect_layout
from telephony.secrets import load_secrets

log = logging.getLogger(__name__)

LISTENER_USER = "listener"


class SecretMissing(RuntimeError):
    pass


def listener_secret(settings: Settings, explicit: str | None = None) -> str:
    """The AMI ``listener`` secret: ``explicit`` (the CLI passes ``ACIKKAPI_AMI_LISTENER_SECRET``)
    or the one the PBX was rendered with (:func:`telephony.secrets.load_secrets`)."""
    if explicit:
        return explicit
    try:
        return load_secrets(settings).ami_password(LISTENER_USER)
    except (OSError, ValueError, KeyError) as exc:
        raise SecretMissing(
            f"no AMI listener secret: set ACIKKAPI_AMI_LISTENER_SECRET or run "
            f"`acikkapi asterisk render` ({exc})"
        ) from exc


def queue_log_state_path(settings: Settings) -> Path:
    return settings.instance_dir / "ami_listener" / "queue_log.offset.json"


@dataclass
class ListenerOptions:
    username: str = LISTENER_USER
    max_frame: int = DEFAULT_MAX_FRAME
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    backoff_cap: float = 30.0
    action_timeout: float = 5.0
    # Ticket stage: None = 1 worker process on PostgreSQL, 0 (a worker thread) on SQLite.
    ticket_workers: int | None = None


class Listener:
    """The assembled daemon (also handy in tests: feed events with :meth:`on_event`)."""

    def __init__(
        self,
        settings: Settings,
        secret: str,
        options: ListenerOptions | None = None,
        tracker_config: TrackerConfig | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or ListenerOptions()
        self.tracker_config = tracker_config or TrackerConfig()
        self.tracker = CallTracker(self.tracker_config)
        self.engine = engine_from_settings(settings)
        factory = make_session_factory(self.engine)
        self.publisher = ScreenPopPublisher(settings.redis_url)
        workers = self.options.ticket_workers
        if workers is None:
            workers = 0 if settings.is_sqlite else 1
        self.tickets = TicketStage(
            lambda: unit_of_work(factory),
            self.publisher,
            workers=workers,
            database_url=settings.database_url,
        )
        self.writer = FactWriter(lambda: unit_of_work(factory), tickets=self.tickets)
        self.outbound = OutboundStage(lambda: unit_of_work(factory))  # campaign call attempts
        # Agent-first callbacks: the agent's answer writes the call record and pops the card.
        self.callbacks = CallbackStage(lambda: unit_of_work(factory), self.publisher)
        layout = detect_layout(settings)  # private root or system Asterisk (asks once)
        self.queue_log = QueueLogReader(
            layout.log_dir / "queue_log", queue_log_state_path(settings)
        )
        self.monitor_dir = layout.monitor_dir  # recordings are <CALL_ID>.wav here
        self.client = AmiClient(
            settings.ami_host,
            settings.ami_port,
            self.options.username,
            secret,
            self.on_event,
            self.on_login,
            max_frame=self.options.max_frame,
            action_timeout=self.options.action_timeout,
            watchdog=Watchdog(self.options.ping_interval, self.options.ping_timeout),
            backoff=Backoff(cap=self.options.backoff_cap),
        )

    def on_event(self, event: AmiEvent) -> None:
        self.outbound.feed(event)
        self.callbacks.feed(event)
        try:
            facts = self.tracker.feed(event)
        except Exception:
            log.exception("tracker failed on %s", event.get("Event"))
            return
        for fact in facts:
            self.writer.submit(fact)

    async def on_login(self, client: AmiClient) -> None:
        report = await reconcile(
            client.event_list,
            self.tracker,
            self.writer,
            self.queue_log,
            self.tracker_config.internal_caller,
            monitor_dir=self.monitor_dir,
        )
        log.info("reconciled after login: %s", report)

    async def run(self, stop: asyncio.Event) -> None:
        tickets_stop = asyncio.Event()  # after the writer: it hands over until its last batch
        tickets_task = asyncio.create_task(self.tickets.run(tickets_stop), name="ami-tickets")
        writer_task = asyncio.create_task(self.writer.run(stop), name="ami-writer")
        outbound_task = asyncio.create_task(self.outbound.run(stop), name="ami-outbound")
        callbacks_task = asyncio.create_task(self.callbacks.run(stop), name="ami-callbacks")
        try:
            await self.client.run(stop)
        finally:
            stop.set()
            try:
                await writer_task
                await outbound_task
                await callbacks_task
            finally:
                tickets_stop.set()
                await tickets_task
                await self.publisher.close()
                self.engine.dispose()


async def run_listener(
    settings: Settings,
    secret: str,
    options: ListenerOptions | None = None,
    install_signals: bool = True,
) -> None:
    stop = asyncio.Event()
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    listener = Listener(settings, secret, options)
    log.info(
        "AMI listener: %s:%d as %s, queue_log %s",
        settings.ami_host,
        settings.ami_port,
        listener.options.username,
        listener.queue_log.path,
    )
    await listener.run(stop)


def replay_file(
    path: Path, settings: Settings, publish: bool = False, echo: Callable[[str], None] = print
) -> None:
    """Replay a recorded transcript into the database (``acikkapi ami-listener replay``)."""
    from ami_listener.replay import replay_into_database

    count = asyncio.run(replay_into_database(path, settings, publish=publish))
    echo(f"{count} facts applied from {path}")
