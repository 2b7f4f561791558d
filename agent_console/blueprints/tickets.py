"""One ticket: reference code, status, SLA clock, contacts and timeline (R2, R3.2)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from agent_console import db
from agent_console.context import now
from agent_console.security import current_staff
from models import StaffUser, Ticket, TicketContact, TicketEvent
from services.citizen_history import ticket_lines
from services.errors import UnknownEntity
from services.permissions import can_view_ticket, require_can_view

bp = Blueprint("tickets", __name__, url_prefix="/tickets")


@bp.route("/<int:ticket_id>")
def show(ticket_id: int) -> ResponseReturnValue:
    s = db.session()
    staff = current_staff()
    ticket = s.get(Ticket, ticket_id)
    if ticket is None:
        raise UnknownEntity("Başvuru bulunamadı.", "No such ticket.", id=ticket_id)
    require_can_view(staff, ticket)
    line = ticket_lines(s, now(), [ticket])[0]
    contacts = list(
        s.scalars(
            select(TicketContact)
            .where(TicketContact.ticket_id == ticket.id)
            .order_by(TicketContact.received_at, TicketContact.id)
        )
    )
    events = list(
        s.execute(
            select(TicketEvent, StaffUser.full_name)
            .join(StaffUser, StaffUser.id == TicketEvent.actor_id)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
    )
    merged_into = s.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    return render_template(
        "tickets/show.html",
        ticket=ticket,
        line=line,
        contacts=contacts,
        events=events,
        merged_into=merged_into if merged_into and can_view_ticket(staff, merged_into) else None,
    )
