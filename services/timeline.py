"""Writing the append-only ticket timeline (R3.2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models import StaffUser, Ticket, TicketEvent, TicketStatus, TimelineAction


def record(
    session: Session,
    ticket: Ticket,
    actor: StaffUser,
    now: datetime,
    action: TimelineAction,
    *,
    note: str | None = None,
    from_status: TicketStatus | None = None,
    to_status: TicketStatus | None = None,
    step_key: str | None = None,
    **data: Any,
) -> TicketEvent:
    """Append one entry to ``ticket``'s timeline (never updates an existing one)."""
    entry = TicketEvent(
        ticket_id=ticket.id,
        at=now,
        actor_id=actor.id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=data,
        step_key=step_key,
    )
    session.add(entry)
    return entry
