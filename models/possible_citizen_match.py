"""A possible identity match found by phone only: recorded for staff, never merged (R2.4)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime

if TYPE_CHECKING:
    from models.ticket import Ticket


class PossibleCitizenMatch(Base):
    __tablename__ = "possible_citizen_matches"
    __table_args__ = (UniqueConstraint("citizen_id", "candidate_id", "phone_e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The citizen the contact was attached to (NULL when the phone matched several people).
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Declared so the unit of work writes the ticket row first (one flush per intake).
    ticket: Mapped[Ticket | None] = relationship()
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed: Mapped[bool] = mapped_column(default=False)
