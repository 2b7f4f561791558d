"""The single call-record writer: facts in order, short transactions, never on the event loop.

The AMI read path only appends to an in-memory queue (``submit`` never blocks, so Asterisk's
100 ms ``writetimeout`` is never hit because of the database). One writer task takes what has
accumulated (up to ``batch_max`` items) and applies it in **one** short transaction in a
worker thread (``asyncio.to_thread``): the batch's records, agents, citizens and callback
tasks are loaded with one query each (:func:`services.call_records.preload_batch`), the facts
are applied without autoflush, and the changes go out in the commit's single flush. One
writer means facts are applied in arrival order, so per-call order is kept.

Tickets of answered calls (:class:`~services.call_records.TicketDue`) take one of two paths:

- with a ticket stage (``tickets``, the daemon: :class:`ami_listener.tickets.TicketStage`)
  they are handed over after the commit. The answered record without a ticket was committed
  first, so nothing is lost if the process dies before the stage gets to it; the stage
  opens the ticket in its own transaction and publishes the screen pop, and call-record
  facts are never queued behind ``open_ticket``;
- without one (replays, tests) they are opened at the end of the same transaction and the
  writer publishes the screen pops after the commit.

Failure policy: a lost database connection keeps the batch and retries with backoff; any other
error re-runs the batch one fact per transaction so a single bad fact (logged, counted) cannot
block the others. When the queue is full (database down for a long time) new facts are dropped
and counted; reconciliation from ``queue_log`` after the next login completes those calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ami_listener.batching import BatchStage, Offload, StageStats, Transaction, run_in_thread
from ami_listener.screenpop import ScreenPopPublisher
from services.call_records import (
    CallFact,
    ScreenPop,
    TicketDue,
    apply_fact,
    close_vanished_calls,
    open_call_tickets,
    preload_batch,
)

log = logging.getLogger(__name__)


class TicketSink(Protocol):
    """Where answered calls go after their records are committed (the ticket stage)."""

    def submit(self, due: TicketDue) -> bool: ...


@dataclass(frozen=True)
class Checkpoint:
    """Run ``callback`` (in the worker thread) once everything queued before it is committed."""

    callback: Callable[[], None]


@dataclass(frozen=True)
class CloseVanished:
    """Close open records of calls that are no longer live (reconciliation)."""

    live_call_ids: frozenset[str]
    at: datetime


WriterItem = CallFact | Checkpoint | CloseVanished


@dataclass
class WriterStats(StageStats):
    facts: int = 0
    failed_facts: int = 0
    tickets_handed_over: int = 0


@dataclass
class _Applied:
    pops: list[ScreenPop] = field(default_factory=list)
    dues: list[TicketDue] = field(default_factory=list)


class FactWriter(BatchStage[WriterItem]):
    log = log
    name = "call-record"
    queue_full = "writer queue full: %d facts dropped so far"
    stats: WriterStats

    def __init__(
        self,
        transaction: Transaction,
        publisher: ScreenPopPublisher | None = None,
        *,
        tickets: TicketSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offload: Offload = run_in_thread,
        batch_max: int = 500,
        queue_max: int = 200_000,
        flush_interval: float = 5.0,
        retry_cap: float = 30.0,
    ) -> None:
        super().__init__(
            transaction,
            publisher,
            clock=clock,
            offload=offload,
            batch_max=batch_max,
            queue_max=queue_max,
            flush_interval=flush_interval,
            retry_cap=retry_cap,
        )
        self.tickets = tickets
        self.stats = WriterStats()

    async def apply_now(self, batch: list[WriterItem]) -> None:
        """Apply ``batch`` directly (replays, benchmarks), bypassing the queue."""
        await self._process(batch)

    async def _process(self, batch: list[WriterItem]) -> None:
        # OperationalError: connection lost, database locked: the batch is tried again.
        applied: _Applied = await self._retrying(
            lambda: self.offload(lambda: self._apply(batch)),
            OperationalError,
            lambda: self.offload(lambda: self._apply_one_by_one(batch)),
            len(batch),
        )
        self.stats.batches += 1
        if self.tickets is not None:
            for due in applied.dues:  # committed: the ticket stage may start on them
                self.stats.tickets_handed_over += 1
                self.tickets.submit(due)
        await self._publish(applied.pops)

    def _apply(self, batch: list[WriterItem]) -> _Applied:
        """Worker thread: one transaction for the whole batch; checkpoints after commit."""
        applied = _Applied()
        checkpoints: list[Checkpoint] = []
        now = self.clock()
        with self.transaction() as session:
            with session.no_autoflush:  # one flush, at commit
                facts = [i for i in batch if not isinstance(i, Checkpoint | CloseVanished)]
                preload_batch(session, facts)
                for item in batch:
                    if isinstance(item, Checkpoint):
                        checkpoints.append(item)
                        continue
                    self._apply_item(session, now, item, applied)
            self._inline_tickets(session, now, applied)
        for checkpoint in checkpoints:
            checkpoint.callback()
        return applied

    def _apply_item(
        self, session: Session, now: datetime, item: WriterItem, applied: _Applied
    ) -> None:
        if isinstance(item, CloseVanished):
            close_vanished_calls(session, item.live_call_ids, item.at)
            return
        if isinstance(item, Checkpoint):
            return
        result = apply_fact(session, now, item)
        self.stats.facts += 1
        if result.ticket_due is not None:
            applied.dues.append(result.ticket_due)

    def _inline_tickets(self, session: Session, now: datetime, applied: _Applied) -> None:
        """Without a ticket stage: open the batch's tickets in its own transaction."""
        if self.tickets is not None or not applied.dues:
            return
        done = open_call_tickets(
            session, now, applied.dues, citizen_cards=self.publisher is not None
        )
        applied.pops.extend(done.screen_pops)
        applied.dues.clear()

    def _apply_one_by_one(self, batch: list[WriterItem]) -> _Applied:
        applied = _Applied()
        now = self.clock()
        for item in batch:
            if isinstance(item, Checkpoint):
                item.callback()
                continue
            one = _Applied()
            try:
                with self.transaction() as session:
                    self._apply_item(session, now, item, one)
                    self._inline_tickets(session, now, one)
            except Exception:
                self.stats.failed_facts += 1
                log.exception("fact could not be applied, skipped: %r", item)
                continue
            applied.pops.extend(one.pops)
            applied.dues.extend(one.dues)
        return applied
