"""The notification outbox: durable first, dispatched later by workers (idempotently)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from models import Language, Notification, NotificationChannel, OutboxStatus, Ticket
from services.ticket_ids import adopt_written, insert_rows

# Built once: executing a prepared construct costs no statement building or cache-key work.
_BY_KEY = select(Notification).where(Notification.idempotency_key == bindparam("key"))
# Only the columns given are listed: columns added later take their defaults.
_INSERT = insert(Notification).returning(Notification.id)
_TABLE = cast(Table, Notification.__table__)


def queued(session: Session, key: str) -> Notification | None:
    """The outbox row written for ``key``, if any."""
    return session.scalars(_BY_KEY, {"key": key}).first()


def pending_row(
    now: datetime,
    *,
    key: str,
    channel: NotificationChannel,
    recipient: str,
    template: str,
    language: Language,
    payload: dict[str, Any],
    ticket_id: int | None,
    available_at: datetime | None = None,
) -> dict[str, Any]:
    """The values of a new outbox row: pending, no attempt yet, available ``now`` or at
    ``available_at`` (what :func:`enqueue` and :func:`enqueue_many` write)."""
    return {
        "idempotency_key": key,
        "channel": channel,
        "recipient": recipient,
        "template": template,
        "language": language,
        "payload": payload,
        "ticket_id": ticket_id,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "available_at": available_at or now,
    }


def enqueue(
    session: Session,
    now: datetime,
    *,
    key: str,
    channel: NotificationChannel,
    recipient: str,
    template: str,
    language: Language,
    payload: dict[str, Any],
    ticket: Ticket | None = None,
    key_is_new: bool = False,
    available_at: datetime | None = None,
) -> Notification:
    """Write one notification to the outbox in the caller's transaction.

    Guarantees: at most one row per ``key`` (a second call with the same key returns the
    first row unchanged), and nothing leaves the system until the caller commits. The row
    is inserted at once (after flushing the session when ``ticket`` is not written yet), so
    the returned notification is persistent and has its ``id``. ``key_is_new`` skips the
    look-up for keys that name a row created in this transaction; the unique constraint
    still guards them.
    """
    if not key_is_new:
        existing = queued(session, key)
        if existing is not None:
            return existing
    if ticket is not None and ticket.id is None:
        session.flush()  # the ticket row first: the outbox row refers to it
    values = pending_row(
        now,
        key=key,
        channel=channel,
        recipient=recipient,
        template=template,
        language=language,
        payload=payload,
        ticket_id=ticket.id if ticket is not None else None,
        available_at=available_at,
    )
    values["id"] = session.connection().execute(_INSERT, values).scalar_one()
    return adopt_written(session, Notification, values)


def enqueue_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write many notifications (each from :func:`pending_row`) in one statement, in the
    caller's transaction, for a batch whose keys are new (no look-up: a key written before
    fails the whole statement on the unique constraint, so nobody is told twice). Nothing
    is added to the session."""
    insert_rows(session, _TABLE, rows)


def withdraw(session: Session, key: str) -> bool:
    """Take back the message queued under ``key`` if it has not started to leave.

    Guarantees: only a row still pending with no attempt is changed (to ``withdrawn``); a
    row being sent, sent, failed (it may have reached the gateway) or dead is left alone, so
    nothing already on its way is ever reported as withdrawn. True when a row was withdrawn.
    """
    result = session.execute(
        update(Notification)
        .where(
            Notification.idempotency_key == key,
            Notification.status == OutboxStatus.PENDING,
            Notification.attempts == 0,
        )
        .values(status=OutboxStatus.WITHDRAWN)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
