"""The ticket stage: tickets of answered calls, in their own transactions, after the records.

The call-record writer (:mod:`ami_listener.writer`) commits an answer — ``answered_at``, the
agent, no ticket yet — and only then hands the call over here (a
:class:`~services.call_records.TicketDue` in an in-memory queue). This stage opens the tickets
through the one intake path (:func:`services.call_records.open_call_tickets` →
:func:`services.intake.open_ticket`), a batch of calls per transaction, and after the commit
publishes each screen pop (ticket, reference code and citizen card). So call-record facts are
never queued behind ``open_ticket``, and the event loop never waits for either.

Where the transactions run: ``workers=0`` in a worker thread of the listener process (the
embedded default, and what SQLite wants); ``workers=N`` in N worker processes (spawned once,
each with its own engine): ``open_ticket`` is CPU-heavy Python, and in a thread it would
share the interpreter lock with the event loop and the call-record writer. Up to
``max(1, workers)`` batches are in flight at once.

Durable first: the queue is only a hint. The committed record (answered, no ticket, no
refusal note) is the work item, so at start-up, every ``sweep_interval`` and whenever the
queue overflowed, :func:`services.call_records.calls_awaiting_ticket` finds what is still to
do — e.g. after a crash between the record's commit and the ticket's. Idempotent: a call
that already has its ticket is skipped, and intake itself keys the contact on the call id.

Failure policy, as in the writer: a lost database connection (or a deadlock, or a worker
process that died) keeps the batch and retries with backoff; any other error re-runs the
batch one call per transaction, and a call that still fails is logged, counted and left for
the next start of the process (it is not swept again by this one, so it cannot spin).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.db import make_engine, make_session_factory, unit_of_work
from ami_listener.batching import BatchStage, Offload, StageStats, Transaction, run_in_thread
from ami_listener.screenpop import ScreenPopPublisher
from services.call_records import (
    CallTickets,
    TicketDue,
    TicketRefusedInBatch,
    calls_awaiting_ticket,
    open_call_tickets,
)

log = logging.getLogger(__name__)


@dataclass
class TicketStats(StageStats):  # dropped: hand-overs refused by a full queue (swept later)
    calls: int = 0  # dues processed (a call may come twice: hand-over and sweep)
    opened: int = 0
    refused: int = 0
    failed: int = 0
    sweeps: int = 0
    swept: int = 0  # calls found by sweeps


class _Retry(Exception):
    """A batch failed for a reason worth retrying as it is (database, worker process)."""


# --- worker processes ----------------------------------------------------------------------

_worker_sessions: sessionmaker[Session] | None = None


class WorkerDatabaseError(Exception):
    """An ``OperationalError`` in a worker process (the original does not cross processes)."""


class WorkerFailure(Exception):
    """Any other error in a worker process, as text."""


def _worker_init(database_url: str) -> None:
    global _worker_sessions
    _worker_sessions = make_session_factory(make_engine(database_url))


def open_batch(
    transaction: Transaction, dues: list[TicketDue], now: datetime, cards: bool
) -> CallTickets:
    """One transaction for ``dues``, without a savepoint per call; in the rare batch where
    intake refuses a ticket, that transaction is rolled back and the batch runs again with
    savepoints (so the refusal is noted and the other calls get their tickets)."""
    try:
        with transaction() as session:
            return open_call_tickets(session, now, dues, citizen_cards=cards, savepoints=False)
    except TicketRefusedInBatch:
        with transaction() as session:
            return open_call_tickets(session, now, dues, citizen_cards=cards)


def _worker_open(dues: list[TicketDue], now: datetime, cards: bool) -> CallTickets:
    """In a worker process: :func:`open_batch` on the process's own engine."""
    sessions = _worker_sessions
    assert sessions is not None, "worker not initialised"
    try:
        return open_batch(lambda: unit_of_work(sessions), dues, now, cards)
    except OperationalError as exc:
        raise WorkerDatabaseError(str(exc).splitlines()[0]) from None
    except Exception as exc:
        raise WorkerFailure(f"{type(exc).__name__}: {exc}") from None


# --- the stage -----------------------------------------------------------------------------


class TicketStage(BatchStage[TicketDue]):
    """Opens the tickets of answered calls handed over by the writer (or found by a sweep)
    and publishes their screen pops after each commit. See the module doc."""

    log = log
    name = "ticket"
    queue_full = "ticket queue full: %d hand-overs left to the sweep"
    stats: TicketStats

    def __init__(
        self,
        transaction: Transaction,
        publisher: ScreenPopPublisher | None = None,
        *,
        workers: int = 0,
        database_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offload: Offload = run_in_thread,
        batch_max: int = 20,
        queue_max: int = 50_000,
        sweep_interval: float = 300.0,
        sweep_limit: int = 1000,
        flush_interval: float = 5.0,
        retry_cap: float = 30.0,
        citizen_cards: bool = True,
        sweep_at_start: bool = True,
    ) -> None:
        if workers and not database_url:
            raise ValueError("worker processes need the database URL")
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
        self.workers = workers
        self.database_url = database_url
        self.sweep_interval = sweep_interval
        self.sweep_limit = sweep_limit
        self.citizen_cards = citizen_cards
        self.stats = TicketStats()
        self._given_up: set[str] = set()
        self._sweep_again = sweep_at_start  # work left by a previous process
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, due: TicketDue) -> bool:
        """Enqueue without blocking. ``False`` when the queue is full: the call is not lost
        (its record is committed), the next sweep picks it up."""
        if super().submit(due):
            return True
        self._sweep_again = True
        return False

    def start_workers(self) -> None:
        """Spawn the worker processes now (``run`` does it otherwise; spawning takes about a
        second, so benchmarks and the daemon start them before traffic arrives)."""
        if self.workers and self._pool is None:
            assert self.database_url is not None
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.database_url,),
            )
            for _ in range(self.workers):  # spawn and import now, not on the first call
                self._pool.submit(_worker_open, [], self.clock(), False).result()

    def _stop_workers(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Until ``stop`` is set and the queue is empty. Set ``stop`` only after the writer
        that feeds this stage has finished, or hand-overs made later wait for the sweep of
        the next process."""
        loop = asyncio.get_running_loop()
        if self.workers:
            try:
                await loop.run_in_executor(None, self.start_workers)
            except Exception:
                log.exception("ticket worker processes did not start; using a thread instead")
                self._stop_workers()
                self.workers = 0
        slots = asyncio.Semaphore(max(1, self.workers))
        in_flight: set[asyncio.Task[None]] = set()
        last_sweep = loop.time()
        self._idle_since_now()
        try:
            while stop is None or not stop.is_set() or not self.queue.empty():
                if (
                    self.queue.empty()
                    and not in_flight
                    and (self._sweep_again or loop.time() - last_sweep >= self.sweep_interval)
                ):
                    last_sweep = loop.time()
                    await self.sweep()
                    continue
                first = await self._first(0.25)
                if first is None:
                    continue
                await slots.acquire()  # meanwhile more calls may queue up for this batch
                batch = self._batch(first)
                task = asyncio.create_task(self._run_batch(batch, slots))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight)
        finally:
            if self.workers:
                await loop.run_in_executor(None, self._stop_workers)

    async def _run_batch(self, batch: list[TicketDue], slots: asyncio.Semaphore) -> None:
        try:
            await self._process(batch)
        except Exception:  # never lose the loop; the sweep of the next process retries
            log.exception("ticket batch of %d could not be processed", len(batch))
        finally:
            slots.release()
            for _ in batch:
                self.queue.task_done()

    async def sweep(self) -> int:
        """Queue the answered calls still without a ticket; how many were found."""
        self._sweep_again = False
        self.stats.sweeps += 1
        limit = self.sweep_limit + len(self._given_up)

        def find() -> list[str]:
            with self.transaction() as session:
                return calls_awaiting_ticket(session, limit)

        try:
            found = await self.offload(find)
        except Exception as exc:  # the database may be down: try again at the next sweep
            log.warning("ticket sweep failed: %s", exc)
            return 0
        todo = [c for c in found if c not in self._given_up]
        for call_id in todo:
            if not self.submit(TicketDue(call_id)):
                break
        self.stats.swept += len(todo)
        if len(found) >= limit:
            self._sweep_again = True  # more than one page waiting
        if todo:
            log.info("ticket sweep: %d answered calls without a ticket queued", len(todo))
        return len(todo)

    async def _process(self, dues: list[TicketDue]) -> None:
        # _Retry: connection lost, deadlock, worker died: the batch is tried again.
        done = await self._retrying(
            lambda: self._open(dues), _Retry, lambda: self._one_by_one(dues), len(dues)
        )
        self.stats.batches += 1
        self.stats.calls += len(dues)
        self.stats.opened += len(done.opened)
        self.stats.refused += len(done.refused)
        await self._publish(done.screen_pops)

    async def _open(self, dues: list[TicketDue]) -> CallTickets:
        """One transaction for ``dues``, in a worker process or thread."""
        now = self.clock()
        cards = self.citizen_cards and self.publisher is not None
        if not self.workers:
            try:
                result: CallTickets = await self.offload(lambda: self._apply(dues, now, cards))
            except OperationalError as exc:
                raise _Retry(f"database unavailable: {exc}") from exc
            return result
        try:
            if self._pool is None:
                await asyncio.get_running_loop().run_in_executor(None, self.start_workers)
            assert self._pool is not None
            future = self._pool.submit(_worker_open, dues, now, cards)
            return await asyncio.wrap_future(future)
        except WorkerDatabaseError as exc:
            raise _Retry(f"database unavailable: {exc}") from exc
        except (BrokenProcessPool, OSError) as exc:
            log.error("ticket worker processes failed (%s); starting new ones", exc)
            await asyncio.get_running_loop().run_in_executor(None, self._stop_workers)
            raise _Retry("worker process died") from exc

    def _apply(self, dues: list[TicketDue], now: datetime, cards: bool) -> CallTickets:
        """Worker thread: one transaction for the batch."""
        return open_batch(self.transaction, dues, now, cards)

    async def _one_by_one(self, dues: list[TicketDue]) -> CallTickets:
        total = CallTickets()
        for due in dues:
            try:
                done = await self._open([due])
            except _Retry as exc:  # not this call's fault: the periodic sweep retries it
                log.error("ticket for call %s not opened now: %s", due.call_id, exc)
                continue
            except Exception:
                self.stats.failed += 1
                self._given_up.add(due.call_id)
                log.exception("ticket for call %s could not be opened; left for later", due)
                continue
            total.opened += done.opened
            total.refused += done.refused
            total.screen_pops += done.screen_pops
        return total
