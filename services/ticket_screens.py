"""What the console's ticket screens read (R2, R3.1, R3.2): one ticket the actor may see, with
its contacts, timeline and photos, and the choices of the ticket forms (types, units,
neighbourhoods).

Reads only; shared by the coordination desk, the department inbox, the walk-in desk, the
agent's call panel and the ticket page, so each screen shows the same things the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Attachment,
    Department,
    Neighbourhood,
    StaffUser,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketType,
)
from services.errors import UnknownEntity
from services.permissions import require_can_view

UNIT_LEVELS = ("directorate", "office")  # units that work on tickets (not the mayor's chain)


def visible_ticket(session: Session, actor: StaffUser, ticket_id: int) -> Ticket:
    """Ticket ``ticket_id`` if ``actor`` may see it (:class:`UnknownEntity`,
    :class:`NotPermitted`)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise UnknownEntity("Başvuru bulunamadı.", "No such ticket.", id=ticket_id)
    require_can_view(actor, ticket)
    return ticket


def ticket_contacts(session: Session, ticket: Ticket) -> list[TicketContact]:
    """Every contact of ``ticket`` (calls, forms, messages), oldest first."""
    return list(
        session.scalars(
            select(TicketContact)
            .where(TicketContact.ticket_id == ticket.id)
            .order_by(TicketContact.received_at, TicketContact.id)
        )
    )


def ticket_timeline(session: Session, ticket: Ticket) -> list[Any]:
    """The timeline of ``ticket``, oldest first: rows of (event, the actor's name)."""
    return list(
        session.execute(
            select(TicketEvent, StaffUser.full_name)
            .join(StaffUser, StaffUser.id == TicketEvent.actor_id)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
    )


def ticket_photos(session: Session, ticket: Ticket) -> list[Attachment]:
    """The photos (attachments) of ``ticket``, in upload order."""
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.ticket_id == ticket.id)
            .order_by(Attachment.uploaded_at, Attachment.id)
        )
    )


def active_ticket_types(session: Session) -> list[TicketType]:
    """The ticket types a form offers, by Turkish name."""
    return list(
        session.scalars(select(TicketType).where(TicketType.is_active).order_by(TicketType.name_tr))
    )


def ticket_units(session: Session) -> list[Department]:
    """The active units that work on tickets (directorates and offices), by Turkish name."""
    return list(
        session.scalars(
            select(Department)
            .where(Department.is_active, Department.level.in_(UNIT_LEVELS))
            .order_by(Department.name_tr)
        )
    )


def neighbourhoods(session: Session) -> list[Neighbourhood]:
    """The neighbourhoods a form offers, by name."""
    return list(session.scalars(select(Neighbourhood).order_by(Neighbourhood.name)))
