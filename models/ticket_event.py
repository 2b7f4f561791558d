"""Append-only ticket timeline: who did what, when (R3.2).

Rows are never updated or deleted: the ORM refuses it (see ``_refuse_change``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.enums import TicketStatus, TimelineAction

if TYPE_CHECKING:
    from models.ticket import Ticket


class TicketEvent(Base):
    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Declared so the unit of work writes the ticket row first (one flush per intake).
    ticket: Mapped[Ticket] = relationship()
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    action: Mapped[TimelineAction] = mapped_column(enum_type(TimelineAction))
    from_status: Mapped[TicketStatus | None] = mapped_column(enum_type(TicketStatus))
    to_status: Mapped[TicketStatus | None] = mapped_column(enum_type(TicketStatus))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # For exactly-once steps (e.g. one escalation step): unique per ticket when set.
    step_key: Mapped[str | None] = mapped_column(String(80), unique=True)


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete a timeline entry."""


@event.listens_for(TicketEvent, "before_update")
@event.listens_for(TicketEvent, "before_delete")
def _refuse_change(_mapper: Any, _conn: Any, target: TicketEvent) -> None:
    raise AppendOnlyError(f"ticket timeline entry {target.id} is append-only")
