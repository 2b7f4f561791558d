"""The notification outbox: durable first, dispatched later by workers (idempotently)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Language, Notification, NotificationChannel, OutboxStatus, Ticket


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
) -> Notification:
    """Write one notification to the outbox in the caller's transaction.

    Guarantees: at most one row per ``key`` (a second call with the same key returns the
    first row unchanged), and nothing leaves the system until the caller commits.
    ``key_is_new`` skips the look-up for keys that name a row created in this transaction;
    the unique constraint still guards them.
    """
    if not key_is_new:
        existing = session.scalar(select(Notification).where(Notification.idempotency_key == key))
        if existing is not None:
            return existing
    note = Notification(
        idempotency_key=key,
        channel=channel,
        recipient=recipient,
        template=template,
        language=language,
        payload=payload,
        ticket_id=ticket.id if ticket is not None else None,
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=now,
        available_at=now,
    )
    session.add(note)
    return note
