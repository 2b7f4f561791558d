"""The notification dead-letter list as staff see it, and requeueing one row (issue 5).

:mod:`services.outbox_dispatch` owns the outbox states (:func:`~services.outbox_dispatch.
dead_letters`, :func:`~services.outbox_dispatch.requeue_dead`); this module adds what a
screen needs around them:

- **who may**: :data:`OUTBOX_KEEPERS` (the supervisor, who answers for notifications reaching
  citizens, and the administrator, who fixes gateways); anyone else gets
  :class:`~services.errors.NotPermitted`;
- **no personal data on the list**: recipients are masked (``0532 *** ** 67``,
  ``a***@example.org``; staff recipients by name) and phone numbers / e-mail addresses inside
  gateway errors are masked the same way: the list is for fixing delivery, not for reading
  contact details (those are in the citizen's audited record);
- **who did it**: a requeue of a ticket's notification is written on that ticket's timeline
  (``notification_queued`` with ``requeued`` and the notification id) with the acting staff
  member and time (R3.2).

Both functions take ``(session, actor, now)``, never commit and never import a web framework.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Language,
    Notification,
    NotificationChannel,
    OutboxStatus,
    Role,
    StaffUser,
    Ticket,
    TimelineAction,
)
from services import timeline
from services.citizen_history import display_phone
from services.errors import InvalidTransition, NotPermitted, UnknownEntity
from services.outbox_dispatch import dead_letters, requeue_dead

__all__ = [
    "OUTBOX_KEEPERS",
    "DeadLetter",
    "DeadLetterPage",
    "list_dead",
    "mask_email",
    "mask_phone",
    "mask_text",
    "requeue",
]

OUTBOX_KEEPERS = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
PAGE = 100
ERROR_CHARS = 300  # of last_error shown on the list

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+?\d[\d ()-]{7,}\d")


def mask_phone(number: str) -> str:
    """A phone number with every digit but the first four and the last two hidden:
    ``+905321234567`` -> ``0532 *** ** 67``."""
    shown = display_phone(number) if number.startswith("+") else number
    positions = [i for i, ch in enumerate(shown) if ch.isdigit()]
    keep = set(positions[:4] + positions[-2:])
    return "".join(ch if not ch.isdigit() or i in keep else "*" for i, ch in enumerate(shown))


def mask_email(address: str) -> str:
    """``ayse.yilmaz@example.org`` -> ``a***@example.org``."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_text(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers masked (gateway error messages)."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


@dataclass(frozen=True)
class DeadLetter:
    """One dead notification, as the list shows it (no contact details)."""

    id: int
    channel: NotificationChannel
    recipient: str  # masked (or the staff member's name)
    template: str
    language: Language
    ticket_id: int | None
    reference_code: str | None
    attempts: int
    created_at: datetime
    last_attempt_at: datetime  # available_at of a dead row: when it was given up
    error: str  # masked, at most ERROR_CHARS characters


@dataclass(frozen=True)
class DeadLetterPage:
    total: int
    rows: tuple[DeadLetter, ...]  # newest first, at most the page size


def _require(actor: StaffUser) -> None:
    if not actor.is_active or actor.role not in OUTBOX_KEEPERS:
        raise NotPermitted(
            "Bildirim kuyruğunu yalnızca süpervizör ve sistem yöneticisi yönetebilir.",
            "Only the supervisor and the administrator may manage the notification queue.",
            role=actor.role.value,
        )


def _recipient(row: Notification, staff_names: dict[str, str]) -> str:
    if row.channel is NotificationChannel.SMS:
        return mask_phone(row.recipient)
    if row.channel is NotificationChannel.EMAIL:
        return mask_email(row.recipient)
    return staff_names.get(row.recipient, f"#{row.recipient}")


def list_dead(
    session: Session, actor: StaffUser, now: datetime, *, limit: int = PAGE
) -> DeadLetterPage:
    """The dead-letter list (newest first, ``limit`` rows) and how many dead rows there are.

    Guarantees: refused unless ``actor`` is one of :data:`OUTBOX_KEEPERS`; reads only; no
    recipient address, phone number or e-mail address leaves unmasked."""
    del now  # the list does not depend on the time; kept for the services' signature
    _require(actor)
    rows = dead_letters(session, limit=limit)
    total = int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.status == OutboxStatus.DEAD)
        )
        or 0
    )
    ticket_ids = {r.ticket_id for r in rows if r.ticket_id is not None}
    codes: dict[int, str | None] = {}
    if ticket_ids:
        for ticket_id, code in session.execute(
            select(Ticket.id, Ticket.reference_code).where(Ticket.id.in_(ticket_ids))
        ):
            codes[ticket_id] = code
    staff_ids = [
        int(r.recipient)
        for r in rows
        if r.channel is NotificationChannel.CONSOLE and r.recipient.isdigit()
    ]
    staff_names: dict[str, str] = {}
    if staff_ids:
        for staff_id, name in session.execute(
            select(StaffUser.id, StaffUser.full_name).where(StaffUser.id.in_(staff_ids))
        ):
            staff_names[str(staff_id)] = name
    return DeadLetterPage(
        total=total,
        rows=tuple(
            DeadLetter(
                id=r.id,
                channel=r.channel,
                recipient=_recipient(r, staff_names),
                template=r.template,
                language=r.language,
                ticket_id=r.ticket_id,
                reference_code=codes.get(r.ticket_id) if r.ticket_id is not None else None,
                attempts=r.attempts,
                created_at=r.created_at,
                last_attempt_at=r.available_at,
                error=mask_text((r.last_error or "")[:ERROR_CHARS]),
            )
            for r in rows
        ),
    )


def requeue(
    session: Session, actor: StaffUser, now: datetime, notification_id: int
) -> Notification:
    """Give dead notification ``notification_id`` a fresh set of attempts from ``now``.

    Guarantees: refused unless ``actor`` is one of :data:`OUTBOX_KEEPERS`;
    :class:`UnknownEntity` for an unknown id; :class:`InvalidTransition` when the row is not
    dead (already requeued, sent, or still being tried), so a double click requeues once; the
    change and a timeline entry on the notification's ticket (who, when) are in the caller's
    transaction. The idempotency key is unchanged, so the gateway still recognises a repeat.
    """
    _require(actor)
    row = session.get(Notification, notification_id)
    if row is None:
        raise UnknownEntity(
            "Bildirim bulunamadı.", "Notification not found.", notification_id=notification_id
        )
    if not requeue_dead(session, now, notification_id):
        raise InvalidTransition(
            "Bu bildirim ölü listede değil; yeniden kuyruğa alınmadı.",
            "This notification is not on the dead-letter list; nothing was requeued.",
            notification_id=notification_id,
        )
    session.refresh(row)
    if row.ticket_id is not None:
        ticket = session.get(Ticket, row.ticket_id)
        if ticket is not None:
            timeline.record(
                session,
                ticket,
                actor,
                now,
                TimelineAction.NOTIFICATION_QUEUED,
                note="Ölü listedeki bildirim yeniden kuyruğa alındı.",
                requeued=True,
                notification_id=row.id,
                template=row.template,
                channel=row.channel.value,
                key=row.idempotency_key,
            )
    session.flush()
    return row
