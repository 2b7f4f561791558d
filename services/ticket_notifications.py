"""Queuing citizen notifications about a ticket (R2.2, R2.6, R3.4) in the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
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


def _sms_recipient(session: Session, ticket: Ticket, phone_hint: str | None) -> str | None:
    citizen = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id else None
    if citizen is not None and not citizen.consent_sms:
        return None
    if phone_hint and is_mobile(phone_hint):
        return phone_hint
    if citizen is None:
        return None
    phones = session.scalars(
        select(CitizenPhone.e164)
        .where(CitizenPhone.citizen_id == citizen.id)
        .order_by(CitizenPhone.last_seen_at.desc(), CitizenPhone.id.desc())
    )
    return next((p for p in phones if is_mobile(p)), None)


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
        already = session.scalar(select(Notification).where(Notification.idempotency_key == key))
        if already is not None:
            return already
    payload: dict[str, Any] = {"reference_code": ticket.reference_code, **(extra or {})}
    language = ticket.language or Language.TR
    recipient = _sms_recipient(session, ticket, phone_hint)
    channel = NotificationChannel.SMS
    if recipient is None:
        citizen = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id else None
        recipient = email_hint or (citizen.email if citizen else None)
        channel = NotificationChannel.EMAIL
    if recipient is None:
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.NOTE,
            note="Vatandaşa ulaşılacak cep telefonu veya e-posta yok; bildirim gönderilemedi.",
            template=template,
        )
        return None
    note = outbox.enqueue(
        session,
        now,
        key=key,
        channel=channel,
        recipient=recipient,
        template=template,
        language=language,
        payload=payload,
        ticket=ticket,
        key_is_new=key_is_new,
    )
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.NOTIFICATION_QUEUED,
        template=template,
        channel=channel.value,
        key=key,
    )
    return note
