"""Queuing citizen notifications about a ticket (R2.2, R2.6, R3.4) in the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models import (
    Citizen,
    CitizenPhone,
    Language,
    Notification,
    NotificationChannel,
    StaffUser,
    Ticket,
    TimelineAction,
)
from services import outbox, timeline
from services.identity import is_mobile

UNREACHABLE_NOTE = "Vatandaşa ulaşılacak cep telefonu veya e-posta yok; bildirim gönderilemedi."

# Pure and called for every acknowledgement: parse each number once per process.
_is_mobile = lru_cache(maxsize=4096)(is_mobile)

_PHONES_RECENT_FIRST = (
    select(CitizenPhone.e164)
    .where(CitizenPhone.citizen_id == bindparam("citizen_id"))
    .order_by(CitizenPhone.last_seen_at.desc(), CitizenPhone.id.desc())
)


class Reachable(Protocol):
    """What choosing the channel reads of the citizen (a ``Citizen`` or a value)."""

    @property
    def id(self) -> int: ...

    @property
    def consent_sms(self) -> bool: ...

    @property
    def email(self) -> str | None: ...


def _sms_recipient(
    session: Session,
    citizen: Reachable | None,
    phone_hint: str | None,
    hint_is_mobile: bool = False,
) -> str | None:
    if citizen is not None and not citizen.consent_sms:
        return None
    if phone_hint and (hint_is_mobile or _is_mobile(phone_hint)):
        return phone_hint
    if citizen is None:
        return None
    phones = session.scalars(_PHONES_RECENT_FIRST, {"citizen_id": citizen.id})
    return next((p for p in phones if _is_mobile(p)), None)


def reach(phone: str | None, email: str | None) -> tuple[NotificationChannel, str] | None:
    """The channel and address of a citizen notice: SMS to ``phone`` (a mobile number the
    citizen has not refused SMS on), else e-mail to ``email``, else ``None`` (nobody)."""
    if phone:
        return NotificationChannel.SMS, phone
    if email is not None:
        return NotificationChannel.EMAIL, email
    return None


def notice_entry(
    ticket_id: int,
    actor_id: int,
    now: datetime,
    *,
    template: str,
    key: str,
    channel: NotificationChannel | None,
) -> dict[str, Any]:
    """The timeline entry of a citizen notice: queued on ``channel`` under ``key``, or
    (``channel`` ``None``) a note that nobody could be told."""
    if channel is None:
        return timeline.entry(
            ticket_id, actor_id, now, TimelineAction.NOTE, note=UNREACHABLE_NOTE, template=template
        )
    return timeline.entry(
        ticket_id,
        actor_id,
        now,
        TimelineAction.NOTIFICATION_QUEUED,
        template=template,
        channel=channel.value,
        key=key,
    )


@dataclass(frozen=True)
class QueuedNotice:
    """A notification put in the outbox (or ``None``: nobody to send it to) and the
    timeline entry that records it, for the caller to write with :func:`timeline.write`
    (``None`` when the key had been queued before and nothing new happened)."""

    notification: Notification | None
    timeline_entry: dict[str, Any] | None


def queue_notice(
    session: Session,
    ticket: Ticket,
    actor: StaffUser,
    now: datetime,
    *,
    citizen: Reachable | None,
    template: str,
    key: str,
    phone_hint: str | None = None,
    email_hint: str | None = None,
    extra: dict[str, Any] | None = None,
    key_is_new: bool = False,
    phone_hint_is_mobile: bool = False,
    available_at: datetime | None = None,
) -> QueuedNotice:
    """:func:`notify_citizen` for a caller that has the ticket's ``citizen`` at hand (or
    knows there is none) and writes the timeline entry itself (``timeline.write``),
    together with its other entries, in one statement.

    Guarantees: the same as :func:`notify_citizen` for the outbox row; ``ticket`` must be
    written already (the outbox row is inserted at once). ``phone_hint_is_mobile``: the
    caller has already classified the number as a mobile one (not parsed again).
    ``available_at``: not sent before then (default ``now``).
    """
    if not key_is_new:
        already = outbox.queued(session, key)
        if already is not None:
            return QueuedNotice(already, None)  # queued before: nothing new to record
    found = reach(
        _sms_recipient(session, citizen, phone_hint, phone_hint_is_mobile),
        email_hint or (citizen.email if citizen is not None else None),
    )
    if found is None:
        return QueuedNotice(
            None, notice_entry(ticket.id, actor.id, now, template=template, key=key, channel=None)
        )
    channel, recipient = found
    note = outbox.enqueue(
        session,
        now,
        key=key,
        channel=channel,
        recipient=recipient,
        template=template,
        language=ticket.language or Language.TR,
        payload={"reference_code": ticket.reference_code, **(extra or {})},
        ticket=ticket,
        key_is_new=True,  # looked up above when it could exist
        available_at=available_at,
    )
    return QueuedNotice(
        note, notice_entry(ticket.id, actor.id, now, template=template, key=key, channel=channel)
    )


def notify_citizen(
    session: Session,
    ticket: Ticket,
    actor: StaffUser,
    now: datetime,
    *,
    template: str,
    key: str,
    phone_hint: str | None = None,
    email_hint: str | None = None,
    extra: dict[str, Any] | None = None,
    key_is_new: bool = False,
) -> Notification | None:
    """Queue ``template`` for the citizen of ``ticket``: by SMS to a mobile number when the
    citizen has not refused SMS, else by e-mail, else nowhere (recorded on the timeline).

    Guarantees: at most one notification per ``key`` (idempotent), written in the caller's
    transaction, with the ticket's reference code in the payload. ``key_is_new`` skips the
    look-up when the key names a row created in this transaction (it cannot exist yet).
    """
    if not key_is_new:
        already = outbox.queued(session, key)
        if already is not None:
            return already  # before loading the citizen: a replay reads nothing else
    citizen = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id else None
    notice = queue_notice(
        session,
        ticket,
        actor,
        now,
        citizen=citizen,
        template=template,
        key=key,
        phone_hint=phone_hint,
        email_hint=email_hint,
        extra=extra,
        key_is_new=True,  # looked up above when it could exist
    )
    if notice.timeline_entry is not None:
        timeline.add(session, notice.timeline_entry)
    return notice.notification
