"""What the listener's stages share: a bounded hand-over queue drained in batches, retries
with backoff, and screen pops published after the commit.

:class:`BatchStage` is the base of :class:`ami_listener.writer.FactWriter` and
:class:`ami_listener.tickets.TicketStage`; :class:`EventStage` (a batch stage fed straight
from the AMI stream) that of :class:`ami_listener.outbound_events.OutboundStage` and
:class:`ami_listener.callback_events.CallbackStage`. ``submit`` never blocks (a full queue drops and
counts the item); a batch is the first item waited for plus whatever else is queued, up to
``batch_max``; while idle, screen pops that Redis refused are retried every
``flush_interval``; a batch whose transaction fails for a reason worth retrying (a lost
database connection, a dead worker process) is retried as it is with backoff up to
``retry_cap``, and any other failure re-runs it item by item once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.orm import Session

from ami_listener.framing import AmiEvent
from ami_listener.screenpop import ScreenPopPublisher
from services.call_records import ScreenPop

Item = TypeVar("Item")
Result = TypeVar("Result")
Transaction = Callable[[], AbstractContextManager[Session]]
Offload = Callable[[Callable[[], Any]], Awaitable[Any]]


async def run_in_thread(fn: Callable[[], Any]) -> Any:
    """The default offload: the blocking database work of a batch runs in a worker thread."""
    return await asyncio.to_thread(fn)


@dataclass
class StageStats:
    batches: int = 0
    dropped: int = 0  # items refused by a full queue
    db_retries: int = 0
    screen_pops: int = 0


class BatchStage(Generic[Item]):
    """A queue of ``Item`` drained in batches by one ``run`` task; see the module doc."""

    log: ClassVar[logging.Logger]
    name: ClassVar[str]  # in log lines: "<name> batch ..."
    queue_full: ClassVar[str]  # logged at the first drop and every 1000th: "... %d ..."
    stats: StageStats

    def __init__(
        self,
        transaction: Transaction,
        publisher: ScreenPopPublisher | None,
        *,
        clock: Callable[[], datetime],
        offload: Offload,
        batch_max: int,
        queue_max: int,
        flush_interval: float,
        retry_cap: float,
    ) -> None:
        self.transaction = transaction
        self.publisher = publisher
        self.clock = clock
        self.offload = offload
        self.batch_max = batch_max
        self.flush_interval = flush_interval
        self.retry_cap = retry_cap
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_max)
        self._last_flush = 0.0

    def submit(self, item: Item) -> bool:
        """Enqueue without blocking; ``False`` (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                self.log.error(self.queue_full, self.stats.dropped)
            return False
        return True

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Batches through ``_process`` until ``stop`` is set and nothing is left."""
        self._idle_since_now()
        while stop is None or not stop.is_set() or self._busy():
            if stop is not None and stop.is_set():
                self._stopping()
            # short polls so that a stop request is seen quickly
            first = await self._first(min(self.flush_interval, 0.25))
            if first is None:
                continue
            batch = self._batch(first)
            try:
                await self._process(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _process(self, batch: list[Item]) -> None:
        """One batch: its transaction (with :meth:`_retrying`), then what follows the commit."""
        raise NotImplementedError

    def _busy(self) -> bool:
        """Whether ``run`` must go on after ``stop`` is set: items are still queued."""
        return not self.queue.empty()

    def _stopping(self) -> None:
        """Called by ``run`` on every round once ``stop`` is set (nothing by default)."""

    async def drain(self) -> None:
        """Wait until everything submitted so far is done (used by tests and shutdown)."""
        await self.queue.join()

    def _idle_since_now(self) -> None:
        """``run`` starts: the idle retry of screen pops counts from here."""
        self._last_flush = asyncio.get_running_loop().time()

    async def _first(self, wait: float) -> Item | None:
        """The next item, or ``None`` after ``wait`` seconds without one (then, once every
        ``flush_interval``, the screen pops Redis refused are sent again)."""
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            now = asyncio.get_running_loop().time()
            if now - self._last_flush >= self.flush_interval:
                self._last_flush = now
                if self.publisher is not None and self.publisher.pending:
                    await self.publisher.flush()
            return None

    def _batch(self, first: Item) -> list[Item]:
        """``first`` and what else is queued now, up to ``batch_max`` items."""
        batch = [first]
        while len(batch) < self.batch_max and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    async def _retrying(
        self,
        attempt: Callable[[], Awaitable[Result]],
        retry_on: type[Exception],
        one_by_one: Callable[[], Awaitable[Result]],
        size: int,
    ) -> Result:
        """``attempt`` until it does not raise ``retry_on`` (backoff 0.5 s doubling up to
        ``retry_cap``); any other error runs ``one_by_one`` instead, once."""
        delay = 0.5
        while True:
            try:
                return await attempt()
            except retry_on as exc:
                self.stats.db_retries += 1
                self.log.error("%s batch: %s; retrying in %.1f s", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(self.retry_cap, delay * 2)
            except Exception:
                self.log.exception("%s batch of %d failed; one by one", self.name, size)
                return await one_by_one()

    async def _publish(self, pops: Iterable[ScreenPop]) -> None:
        """After the commit: each screen pop to Redis (never raises, see the publisher)."""
        if self.publisher is None:
            return
        for pop in pops:
            self.stats.screen_pops += 1
            await self.publisher.publish(pop)


@dataclass
class EventStats(StageStats):
    events: int = 0  # AMI events taken by the stage
    failed: int = 0  # items skipped: they failed even alone


class EventStage(BatchStage[Item]):
    """A batch stage fed by ``feed`` with every AMI event: the ones ``parse`` recognises are
    queued (or held, see ``_accept``), everything else is ignored at once."""

    stats: EventStats

    def parse(self, event: AmiEvent) -> Item | None:
        """The stage's item in ``event``, or ``None`` (cheap: called for every event)."""
        raise NotImplementedError

    def feed(self, event: AmiEvent) -> None:
        """Called for every AMI event on the loop: enqueue the stage's ones."""
        try:
            item = self.parse(event)
        except Exception:
            self.log.exception("%s: cannot read %s", self.name, event.get("Event"))
            return
        if item is None:
            return
        self.stats.events += 1
        self._accept(item)

    def _accept(self, item: Item) -> None:
        """A recognised item: queued at once by default."""
        self.submit(item)

    def _each_alone(
        self, batch: list[Item], apply: Callable[[list[Item]], Result], what: str
    ) -> list[Result]:
        """``apply`` to each item of a failed batch alone; an item that fails again is
        logged as ``what``, counted and skipped."""
        results: list[Result] = []
        for item in batch:
            try:
                results.append(apply([item]))
            except Exception:
                self.stats.failed += 1
                self.log.exception("%s could not be applied, skipped: %r", what, item)
        return results
