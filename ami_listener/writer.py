"""The single database writer: facts in order, short transactions, never on the event loop.

The AMI read path only appends to an in-memory queue (``submit`` never blocks, so Asterisk's
100 ms ``writetimeout`` is never hit because of the database). One writer task takes what has
accumulated (up to ``batch_max`` items), applies it in **one** short transaction in a worker
thread (``asyncio.to_thread``) and, after the commit, publishes the screen pops it produced.
One writer means facts are applied in arrival order, so per-call order is kept.

Failure policy: a lost database connection keeps the batch and retries with backoff; any other
error re-runs the batch one fact per transaction so a single bad fact (logged, counted) cannot
block the others. When the queue is full (database down for a long time) new facts are dropped
and counted; reconciliation from ``queue_log`` after the next login completes those calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ami_listener.screenpop import ScreenPopPublisher
from services.call_records import (
    CallFact,
    ScreenPop,
    apply_fact,
    close_vanished_calls,
    preload_records,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Transaction = Callable[[], AbstractContextManager[Session]]
Offload = Callable[[Callable[[], Any]], Awaitable[Any]]


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
class WriterStats:
    facts: int = 0
    batches: int = 0
    failed_facts: int = 0
    dropped: int = 0
    db_retries: int = 0
    screen_pops: int = 0


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


class FactWriter:
    def __init__(
        self,
        transaction: Transaction,
        publisher: ScreenPopPublisher | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offload: Offload = _to_thread,
        batch_max: int = 500,
        queue_max: int = 200_000,
        flush_interval: float = 5.0,
        retry_cap: float = 30.0,
    ) -> None:
        self.transaction = transaction
        self.publisher = publisher
        self.clock = clock
        self.offload = offload
        self.batch_max = batch_max
        self.flush_interval = flush_interval
        self.retry_cap = retry_cap
        self.stats = WriterStats()
        self.queue: asyncio.Queue[WriterItem] = asyncio.Queue(maxsize=queue_max)

    def submit(self, item: WriterItem) -> bool:
        """Enqueue without blocking; ``False`` (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.error("writer queue full: %d facts dropped so far", self.stats.dropped)
            return False
        return True

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (used by tests and shutdown)."""
        await self.queue.join()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        last_flush = loop.time()
        while stop is None or not stop.is_set() or not self.queue.empty():
            try:  # short polls so that a stop request is seen quickly
                first = await asyncio.wait_for(self.queue.get(), min(self.flush_interval, 0.25))
            except TimeoutError:
                if loop.time() - last_flush >= self.flush_interval:
                    last_flush = loop.time()
                    if self.publisher is not None and self.publisher.pending:
                        await self.publisher.flush()
                continue
            batch = [first]
            while len(batch) < self.batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._process(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def apply_now(self, batch: list[WriterItem]) -> None:
        """Apply ``batch`` directly (replays, benchmarks), bypassing the queue."""
        await self._process(batch)

    async def _process(self, batch: list[WriterItem]) -> None:
        delay = 0.5
        while True:
            try:
                pops: list[ScreenPop] = await self.offload(lambda: self._apply(batch))
                break
            except OperationalError as exc:  # connection lost, database locked: try again
                self.stats.db_retries += 1
                log.error("database unavailable, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(self.retry_cap, delay * 2)
            except Exception:
                log.exception("batch of %d failed; applying one by one", len(batch))
                pops = await self.offload(lambda: self._apply_one_by_one(batch))
                break
        self.stats.batches += 1
        if self.publisher is not None:
            for pop in pops:
                self.stats.screen_pops += 1
                await self.publisher.publish(pop)

    def _apply(self, batch: list[WriterItem]) -> list[ScreenPop]:
        """Worker thread: one transaction for the whole batch; checkpoints after commit."""
        pops: list[ScreenPop] = []
        checkpoints: list[Checkpoint] = []
        now = self.clock()
        with self.transaction() as session:
            preload_records(session, [i.call_id for i in batch if isinstance(i, CallFact)])
            for item in batch:
                if isinstance(item, Checkpoint):
                    checkpoints.append(item)
                    continue
                self._apply_item(session, now, item, pops)
        for checkpoint in checkpoints:
            checkpoint.callback()
        return pops

    def _apply_item(
        self, session: Session, now: datetime, item: WriterItem, pops: list[ScreenPop]
    ) -> None:
        if isinstance(item, CloseVanished):
            close_vanished_calls(session, item.live_call_ids, item.at)
            return
        if isinstance(item, Checkpoint):
            return
        result = apply_fact(session, now, item)
        self.stats.facts += 1
        if result.screen_pop is not None:
            pops.append(result.screen_pop)

    def _apply_one_by_one(self, batch: list[WriterItem]) -> list[ScreenPop]:
        pops: list[ScreenPop] = []
        now = self.clock()
        for item in batch:
            if isinstance(item, Checkpoint):
                item.callback()
                continue
            try:
                with self.transaction() as session:
                    self._apply_item(session, now, item, pops)
            except Exception:
                self.stats.failed_facts += 1
                log.exception("fact could not be applied, skipped: %r", item)
        return pops
