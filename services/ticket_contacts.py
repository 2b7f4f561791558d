"""A new contact on an existing ticket: a citizen answering about a ticket they know (R2.4).

Intake attaches a contact to an *open duplicate* it finds by itself; this service is for
channels where the person names the ticket (an e-mail reply carrying the reference code in
its subject). The contact is recorded on the ticket whatever its status, so nothing the
citizen sends is lost; staff decide whether a resolved or closed ticket must be reopened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    Channel,
    Citizen,
    Notification,
    StaffUser,
    Ticket,
    TicketContact,
    TimelineAction,
)
from services import timeline
from services.locks import lock_keys
from services.ticket_notifications import notify_citizen
from services.ticket_states import STATUS_NAMES_TR

MAX_MERGE_HOPS = 20


@dataclass(frozen=True)
class NewContact:
    """What the channel knows about the person and the message."""

    channel: Channel
    description: str
    received_at: datetime
    external_ref: str | None = None  # provider message id (e-mail: the Message-ID)
    email: str | None = None  # normalised (services.identity.normalise_email)
    contact_name: str | None = None


@dataclass
class ContactResult:
    ticket: Ticket  # the ticket that received the contact (after following merges)
    contact: TicketContact
    replayed: bool  # the same (channel, external_ref) was recorded before; nothing written
    from_ticket_citizen: bool  # the sender is the ticket's own citizen (so acknowledged)
    acknowledgement: Notification | None = None


def live_ticket(session: Session, ticket: Ticket) -> Ticket:
    """``ticket``, or the ticket it was merged into (followed through repeated merges)."""
    current = ticket
    for _ in range(MAX_MERGE_HOPS):
        if current.merged_into_id is None:
            return current
        target = session.get(Ticket, current.merged_into_id)
        if target is None:
            return current
        current = target
    return current


def _identify_sender(
    session: Session, ticket: Ticket, email: str | None
) -> tuple[Citizen | None, str, bool]:
    """(citizen, match, is the ticket's own citizen). Never creates a citizen."""
    if email is None:
        return None, "none", False
    owner = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id else None
    if owner is not None and owner.email == email:
        return owner, "email", True
    known_on_ticket = session.scalar(
        select(TicketContact)
        .where(TicketContact.ticket_id == ticket.id, TicketContact.email == email)
        .order_by(TicketContact.id)
        .limit(1)
    )
    if known_on_ticket is not None and known_on_ticket.citizen_id is not None:
        citizen = session.get(Citizen, known_on_ticket.citizen_id)
        own = citizen is not None and citizen.id == ticket.citizen_id
        return citizen, "email", own
    holders = list(session.scalars(select(Citizen).where(Citizen.email == email).limit(2)))
    if len(holders) == 1:
        return holders[0], "email", holders[0].id == ticket.citizen_id
    if len(holders) > 1:
        return None, "ambiguous", False
    # Unknown address: it is the ticket's own only if the ticket has no citizen and this
    # address reported it before (a ticket opened by e-mail from an unidentified sender).
    return None, "none", ticket.citizen_id is None and known_on_ticket is not None


def add_contact(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, new: NewContact
) -> ContactResult:
    """Record ``new`` as a contact of ``ticket`` (or of the ticket it was merged into).

    Guarantees, within the caller's transaction (nothing is committed here):
    - a repeated ``(channel, external_ref)`` returns the earlier contact and writes nothing;
    - the contact and a ``contact_added`` timeline entry are written; the sender is matched
      to a citizen by e-mail address without creating or changing any citizen record;
    - the citizen is acknowledged (template ``ticket_contact_added``, key
      ``ack:contact:<id>``) exactly as intake acknowledges a duplicate report — but only
      when the sender is the ticket's own citizen: a message from anyone else is recorded
      for staff (timeline note) and acknowledges nobody, so knowing a reference code is
      not enough to make the system message its owner;
    - a contact on a ticket that is no longer open (resolved, closed) adds a timeline note
      asking staff to decide; the ticket's status is never changed here.
    """
    target = live_ticket(session, ticket)
    if new.external_ref is not None:
        lock_keys(session, [f"ref:{new.channel.value}:{new.external_ref}"])
        seen = session.scalar(
            select(TicketContact).where(
                TicketContact.channel == new.channel,
                TicketContact.external_ref == new.external_ref,
            )
        )
        if seen is not None:
            return ContactResult(
                ticket=seen.ticket, contact=seen, replayed=True, from_ticket_citizen=False
            )
    citizen, match, own = _identify_sender(session, target, new.email)
    contact = TicketContact(
        ticket_id=target.id,
        original_ticket_id=target.id,
        channel=new.channel,
        external_ref=new.external_ref,
        citizen_id=citizen.id if citizen is not None else None,
        citizen_match=match,
        contact_name=new.contact_name[:160] if new.contact_name else None,
        email=new.email,
        description=new.description,
        received_at=new.received_at,
        received_by_id=actor.id,
    )
    session.add(contact)
    session.flush()
    target.updated_at = now
    extra: dict[str, Any] = {}
    if target is not ticket:  # the code named a ticket that was merged into this one
        extra["requested_ticket"] = ticket.reference_code
    timeline.record(
        session,
        target,
        actor,
        now,
        TimelineAction.CONTACT_ADDED,
        note=new.description or None,
        channel=new.channel.value,
        contact_id=contact.id,
        via_reference_code=True,
        from_ticket_citizen=own,
        **extra,
    )
    if not own:
        timeline.record(
            session,
            target,
            actor,
            now,
            TimelineAction.NOTE,
            note="Gönderen bu başvurunun sahibi olarak tanınmadı; vatandaşa bildirim "
            "gönderilmedi. Lütfen kontrol edin.",
            contact_id=contact.id,
        )
    if target.status not in OPEN_STATUSES:
        timeline.record(
            session,
            target,
            actor,
            now,
            TimelineAction.NOTE,
            note=f"Başvuru '{STATUS_NAMES_TR[target.status]}' durumundayken yeni ileti "
            "geldi; gerekirse yeniden açın.",
            contact_id=contact.id,
            status=target.status.value,
        )
    ack = None
    if own:
        ack = notify_citizen(
            session,
            target,
            actor,
            now,
            template="ticket_contact_added",
            key=f"ack:contact:{contact.id}",
            key_is_new=True,
            email_hint=contact.email,
        )
    return ContactResult(
        ticket=target,
        contact=contact,
        replayed=False,
        from_ticket_citizen=own,
        acknowledgement=ack,
    )
