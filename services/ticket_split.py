"""Splitting a ticket (R3.1): one application that asks for two things becomes two tickets,
each routed to the unit responsible for it.

The part split off is a contact of the same person through the same channel, so it goes
through the one intake path, :func:`services.intake.open_ticket`: it is validated, routed by
its type, given its SLA and legal deadlines from the time the citizen originally applied,
recognised as a duplicate when the person already has an open ticket of that type (R2.4),
and acknowledged to the citizen with its own reference code (R2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    Citizen,
    Neighbourhood,
    StaffUser,
    Ticket,
    TicketContact,
    TicketType,
    TimelineAction,
)
from services import timeline
from services.errors import InvalidField, InvalidTransition, MissingField
from services.intake import IntakeResult, open_ticket
from services.intake_request import IntakeRequest
from services.permissions import require_coordination


@dataclass(frozen=True)
class SplitResult:
    """What :func:`split_ticket` did: ``intake`` is the split-off part's intake result
    (``created`` false when it joined the person's open ticket of that type)."""

    original: Ticket
    intake: IntakeResult

    @property
    def ticket(self) -> Ticket:
        return self.intake.ticket


def _names(citizen: Citizen | None, contact: TicketContact | None) -> tuple[str | None, str | None]:
    if citizen is not None and (citizen.first_name or citizen.last_name):
        return citizen.first_name, citizen.last_name
    name = (contact.contact_name if contact else None) or ""
    first, _sep, last = name.strip().rpartition(" ")
    return (first or None, last or None) if first else (last or None, None)


def _token(form_token: str) -> str:
    if not (form_token.isalnum() and 8 <= len(form_token) <= 64):
        raise InvalidField("Form belirteci geçersiz.", "Invalid form token.", field="form_token")
    return form_token


def split_ticket(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    *,
    ticket_type_code: str,
    description: str,
    form_token: str,
) -> SplitResult:
    """Split the part described by ``description`` off ``ticket`` as a ticket of type
    ``ticket_type_code``.

    Guarantees, within the caller's transaction (never commits): only the coordination
    desk splits (:class:`NotPermitted`); only open tickets, into another type
    (:class:`InvalidTransition` / :class:`InvalidField`); the new part is opened through
    :func:`open_ticket` with the original's channel, person, place and time of application
    (so its deadlines count from when the citizen applied) and acknowledged to the citizen;
    both timelines record the split with each other's reference code; the original keeps
    its own type, department and deadlines. ``form_token`` (one per form) makes a repeated
    submission return the first result and write nothing more.
    """
    require_coordination(actor)
    token = _token(form_token)
    if ticket.status not in OPEN_STATUSES:
        raise InvalidTransition(
            "Yalnızca açık bir başvuru bölünebilir.",
            "Only an open ticket can be split.",
            status=ticket.status.value,
        )
    text = description.strip()
    if not text:
        raise MissingField(
            "Ayrılacak bölümün açıklaması gerekli.",
            "Describe the part to split off.",
            field="description",
        )
    own_code = session.scalar(select(TicketType.code).where(TicketType.id == ticket.ticket_type_id))
    if ticket_type_code == own_code:
        raise InvalidField(
            "Ayrılan bölüm başvurunun kendi türünden farklı bir türde olmalı.",
            "The part split off must be of another type than the ticket.",
            field="ticket_type",
        )
    contact = session.scalar(
        select(TicketContact)
        .where(TicketContact.ticket_id == ticket.id)
        .order_by(TicketContact.received_at, TicketContact.id)
        .limit(1)
    )
    citizen = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id else None
    first_name, last_name = _names(citizen, contact)
    neighbourhood = (
        session.scalar(
            select(Neighbourhood.name).where(Neighbourhood.id == ticket.neighbourhood_id)
        )
        if ticket.neighbourhood_id
        else None
    )
    result = open_ticket(
        session,
        actor,
        now,
        IntakeRequest(
            channel=ticket.channel,
            description=text,
            ticket_type_code=ticket_type_code,
            citizen_id=ticket.citizen_id,
            tc_number=citizen.tc_number if citizen else None,
            first_name=first_name,
            last_name=last_name,
            phone=(contact.phone_raw or contact.phone_e164) if contact else None,
            email=contact.email if contact else None,
            social_handle=contact.social_handle if contact else None,
            language=ticket.language,
            neighbourhood=neighbourhood,
            address_text=ticket.address_text,
            latitude=ticket.latitude,
            longitude=ticket.longitude,
            place_of_application=ticket.place_of_application,
            external_ref=f"split:{ticket.id}:{token}",
            received_at=ticket.received_at,
        ),
    )
    if result.replayed:
        return SplitResult(ticket, result)
    part = result.ticket
    if part.id == ticket.id:  # cannot happen (other type), but never record a self-split
        raise InvalidField(
            "Ayrılan bölüm başvurunun kendisine eklendi.",
            "The part split off was added to the ticket itself.",
            field="ticket_type",
        )
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.SPLIT,
        note=f"Başvurunun bir bölümü {part.reference_code} koduyla ayrı başvuru yapıldı: {text}",
        split_into=part.reference_code,
        split_into_id=part.id,
        ticket_type=ticket_type_code,
        created=result.created,
    )
    timeline.record(
        session,
        part,
        actor,
        now,
        TimelineAction.SPLIT,
        note=f"{ticket.reference_code} kodlu başvurudan ayrıldı.",
        split_from=ticket.reference_code,
        split_from_id=ticket.id,
    )
    session.flush()
    return SplitResult(ticket, result)
