"""One ticket: reference code, status, SLA clock, contacts and timeline (R2, R3.2)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from agent_console import db
from agent_console.context import now
from agent_console.security import current_staff
from models import Ticket
from services.citizen_history import ticket_lines
from services.permissions import can_view_ticket
from services.ticket_screens import ticket_contacts, ticket_timeline, visible_ticket

bp = Blueprint("tickets", __name__, url_prefix="/tickets")


@bp.route("/<int:ticket_id>")
def show(ticket_id: int) -> ResponseReturnValue:
    s = db.session()
    staff = current_staff()
    ticket = visible_ticket(s, staff, ticket_id)
    line = ticket_lines(s, now(), [ticket])[0]
    contacts = ticket_contacts(s, ticket)
    events = ticket_timeline(s, ticket)
    merged_into = s.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    return render_template(
        "tickets/show.html",
        ticket=ticket,
        line=line,
        contacts=contacts,
        events=events,
        merged_into=merged_into if merged_into and can_view_ticket(staff, merged_into) else None,
    )
