"""SMS delivery receipts (issue 5): what the provider says happened to a sent SMS.

:func:`record_delivery_report` finds the outbox row by the provider's message id (the id
the gateway returned for the first part) and records the state on it
(``Notification.delivery_status``, ``delivered_at``). A message the citizen never received
(undeliverable, expired, rejected...) is written on the ticket's timeline once, so staff
know to reach the citizen another way (R3.4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Notification, NotificationChannel, Ticket, TimelineAction
from services import timeline
from services.actors import system_actor
from services.errors import InvalidField

ACTOR_NAME = "sms"


class DeliveryState(enum.StrEnum):
    """SMPP 3.4 message states, stored in ``Notification.delivery_status``."""

    ENROUTE = "enroute"  # the only intermediate state
    DELIVERED = "delivered"
    EXPIRED = "expired"
    DELETED = "deleted"
    UNDELIVERABLE = "undeliverable"
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self is not DeliveryState.ENROUTE

    @property
    def is_failure(self) -> bool:
        return self in _FAILURES


_FAILURES = frozenset(
    {
        DeliveryState.EXPIRED,
        DeliveryState.DELETED,
        DeliveryState.UNDELIVERABLE,
        DeliveryState.REJECTED,
        DeliveryState.UNKNOWN,
    }
)
# Receipt words (``stat:`` in SMPP receipt texts) and common provider spellings.
_ALIASES = {
    "DELIVRD": DeliveryState.DELIVERED,
    "UNDELIV": DeliveryState.UNDELIVERABLE,
    "ACCEPTD": DeliveryState.ACCEPTED,
    "REJECTD": DeliveryState.REJECTED,
    "FAILED": DeliveryState.UNDELIVERABLE,
}
_FAILURE_NOTES = {
    DeliveryState.EXPIRED: "süresi içinde teslim edilemedi",
    DeliveryState.DELETED: "operatör tarafından silindi",
    DeliveryState.UNDELIVERABLE: "teslim edilemedi",
    DeliveryState.REJECTED: "operatör tarafından reddedildi",
    DeliveryState.UNKNOWN: "teslim durumu bilinmiyor",
}


def normalise_state(raw: str) -> DeliveryState:
    """``DELIVRD``, ``delivered``, ``UNDELIV``... → :class:`DeliveryState`."""
    word = (raw or "").strip()
    if word.upper() in _ALIASES:
        return _ALIASES[word.upper()]
    try:
        return DeliveryState(word.lower())
    except ValueError:
        raise InvalidField(
            f"Bilinmeyen SMS teslim durumu: {raw!r}.",
            f"Unknown SMS delivery state: {raw!r}.",
            field="state",
        ) from None


class ReportOutcome(enum.StrEnum):
    RECORDED = "recorded"
    UNCHANGED = "unchanged"  # same state again, or a final state already recorded
    UNKNOWN_MESSAGE = "unknown_message"  # no SMS of ours has this provider id


@dataclass(frozen=True)
class DeliveryReport:
    outcome: ReportOutcome
    notification: Notification | None
    state: DeliveryState


def record_delivery_report(
    session: Session,
    now: datetime,
    provider_message_id: str,
    state: str,
    done_at: datetime | None,
) -> DeliveryReport:
    """Record a delivery receipt on the SMS it reports on.

    Guarantees (nothing is committed here): idempotent — a repeated receipt changes nothing;
    the first final state wins (a late ``enroute`` never overwrites ``delivered``);
    ``delivered_at`` is set only for ``delivered`` (``done_at``, else ``now``); a failure is
    noted on the ticket's timeline once; a receipt for an id we never sent (a later part of
    a concatenated SMS, a test message) writes nothing and says so.
    """
    if done_at is not None and done_at.tzinfo is None:
        raise ValueError("done_at must be timezone-aware")
    new_state = normalise_state(state)
    note = session.scalar(
        select(Notification)
        .where(
            Notification.channel == NotificationChannel.SMS,
            Notification.provider_message_id == provider_message_id,
        )
        .order_by(Notification.id)
        .limit(1)
    )
    if note is None:
        return DeliveryReport(ReportOutcome.UNKNOWN_MESSAGE, None, new_state)
    current = DeliveryState(note.delivery_status) if note.delivery_status else None
    if current is not None and (current.is_final or current is new_state):
        return DeliveryReport(ReportOutcome.UNCHANGED, note, current)
    note.delivery_status = new_state.value
    if new_state is DeliveryState.DELIVERED:
        note.delivered_at = done_at or now
    if new_state.is_failure and note.ticket_id is not None:
        ticket = session.get(Ticket, note.ticket_id)
        if ticket is not None:
            timeline.record(
                session,
                ticket,
                system_actor(session, ACTOR_NAME, now),
                now,
                TimelineAction.NOTE,
                note=f"Vatandaşa gönderilen SMS {_FAILURE_NOTES[new_state]} "
                f"({note.recipient}); başka bir yolla ulaşılmalı.",
                notification_id=note.id,
                delivery_status=new_state.value,
                template=note.template,
            )
    return DeliveryReport(ReportOutcome.RECORDED, note, new_state)
