"""Claiming and settling outbox rows: the database side of notification dispatch (R2.2, R3.4).

The outbox (``models.Notification``) is the record; Redis only carries the ids of rows a
worker should look at. A row moves ``pending → sending → sent``; a failed attempt moves it to
``failed`` with a later ``available_at`` (exponential backoff with jitter), and after
:data:`MAX_ATTEMPTS` attempts or a non-retryable error to ``dead`` (the dead-letter list the
supervisor sees). While a row is ``sending``, ``available_at`` is the end of the worker's
lease: when a worker dies mid-send the lease runs out and the next claim hands the row out
again, with the same idempotency key, so the gateway can recognise the repeat.

Nothing here talks to a gateway, Redis or RQ, and nothing commits: the caller does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from models import Notification, OutboxStatus

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)  # longer than any gateway time-out
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
LEASE_EXPIRED = "worker lease expired (worker stopped or killed during the attempt)"


@dataclass(frozen=True)
class ClaimReport:
    claimed: list[int]  # rows now ``sending`` with a lease, for the caller to hand out
    dead: list[int]  # leased rows that ran out of attempts and were moved to ``dead``


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Back-off before attempt ``attempts + 1``: 30 s doubling to at most 1 h, ±20 % jitter."""
    base: timedelta = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LAST_RETRY)
    factor: float = (rng or random.Random()).uniform(0.8, 1.2)
    return base * factor


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Notification.status.in_((OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.SENDING)),
        Notification.available_at <= now,
    )


def claim_due(
    session: Session, now: datetime, *, limit: int, lease: timedelta = LEASE
) -> ClaimReport:
    """Lease up to ``limit`` due rows (oldest first) to the caller.

    Guarantees: a row is leased to one claimant at a time (PostgreSQL: ``FOR UPDATE SKIP
    LOCKED``, so concurrent dispatchers take disjoint rows; SQLite: the write transaction
    serialises them); each lease counts as one attempt; a row whose earlier lease expired
    with no attempts left goes to ``dead`` instead of being handed out again.
    """
    candidates = (
        select(Notification.id)
        .where(_due(now))
        .order_by(Notification.available_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(candidates))
    if not ids:
        return ClaimReport(claimed=[], dead=[])
    exhausted = list(
        session.scalars(
            update(Notification)
            .where(
                Notification.id.in_(ids),
                Notification.status == OutboxStatus.SENDING,
                Notification.attempts >= MAX_ATTEMPTS,
            )
            .values(status=OutboxStatus.DEAD, last_error=LEASE_EXPIRED)
            .returning(Notification.id)
        )
    )
    live = [i for i in ids if i not in set(exhausted)]
    if live:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(live))
            .values(
                status=OutboxStatus.SENDING,
                available_at=now + lease,
                attempts=Notification.attempts + 1,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
    return ClaimReport(claimed=live, dead=exhausted)


def leased(session: Session, ids: Sequence[int]) -> list[Notification]:
    """The rows among ``ids`` that are still ``sending`` (others were settled meanwhile)."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.id.in_(ids), Notification.status == OutboxStatus.SENDING)
            .order_by(Notification.id)
        )
    )


def mark_sent_many(
    session: Session, now: datetime, results: Sequence[tuple[int, str | None]]
) -> None:
    """Settle rows as sent in one statement (``(id, provider_message_id)`` pairs). A row no
    longer ``sending`` (already settled by another attempt) is left alone: the gateway's
    answer is then only logged, never applied twice."""
    if not results:
        return
    table = cast(Table, Notification.__table__)
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status == OutboxStatus.SENDING)
        .values(
            status=OutboxStatus.SENT,
            sent_at=now,
            provider_message_id=bindparam("b_pid"),
            last_error=None,
        ),
        [{"b_id": nid, "b_pid": pid} for nid, pid in results],
    )


def mark_failed(
    session: Session,
    now: datetime,
    notification_id: int,
    *,
    error: str,
    retryable: bool,
    rng: random.Random | None = None,
) -> OutboxStatus | None:
    """Record a failed attempt: ``failed`` with a back-off, or ``dead`` when the error is
    permanent or the attempts are used up. Returns the new status (None if not ``sending``).
    """
    note = session.scalar(
        select(Notification)
        .where(Notification.id == notification_id, Notification.status == OutboxStatus.SENDING)
        .with_for_update()
        .execution_options(populate_existing=True)  # claim_due updated it with Core
    )
    if note is None:
        return None
    note.last_error = error[:2000]
    if not retryable or note.attempts >= MAX_ATTEMPTS:
        note.status = OutboxStatus.DEAD
    else:
        note.status = OutboxStatus.FAILED
        note.available_at = now + retry_delay(note.attempts, rng=rng)
    session.flush()  # written now, like the Core updates of the other functions here
    return note.status


def release(session: Session, now: datetime, ids: Sequence[int]) -> int:
    """Hand leased rows back unattempted (the worker ran out of lease time before reaching
    them): ``pending`` again, due now, and the lease's attempt is not counted."""
    if not ids:
        return 0
    result = session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.status == OutboxStatus.SENDING)
        .values(
            status=OutboxStatus.PENDING,
            available_at=now,
            attempts=func.max(Notification.attempts - 1, 0)
            if session.get_bind().dialect.name == "sqlite"
            else func.greatest(Notification.attempts - 1, 0),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def dead_letters(session: Session, *, limit: int = 100) -> list[Notification]:
    """The dead-letter list, newest first (the supervisor's view)."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.status == OutboxStatus.DEAD)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def requeue_dead(session: Session, now: datetime, notification_id: int) -> bool:
    """Give a dead row a fresh set of attempts (after the supervisor fixed the cause)."""
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, available_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def backlog(session: Session, now: datetime) -> dict[str, int]:
    """Counts per status, and how many rows are due now (for status pages and benches)."""
    counts = {
        str(status): int(n)
        for status, n in session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        )
    }
    counts["due"] = int(
        session.scalar(select(func.count()).select_from(Notification).where(_due(now))) or 0
    )
    return counts
