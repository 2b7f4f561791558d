"""The mayor's weekly random-call list and its entries (R5.4).

One :class:`MayorCallList` per week (``week_start`` is the local Monday, unique): the seed
recorded makes the draw reproducible. Each :class:`MayorCallEntry` is one ticket whose
citizen the mayor's office calls; the office records the result and may open a follow-up
ticket (``follow_up_ticket_id``) through the one intake path.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.mayor_enums import MayorCallResult

if TYPE_CHECKING:
    from models.citizen import Citizen
    from models.department import Department
    from models.neighbourhood import Neighbourhood
    from models.staff_user import StaffUser
    from models.ticket import Ticket


class MayorCallList(Base):
    __tablename__ = "mayor_call_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    week_start: Mapped[date] = mapped_column(unique=True)  # local (Europe/Istanbul) Monday
    seed: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int]  # entries asked for (the list may be shorter when the pool is)
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    drawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))  # None: job
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pool_size: Mapped[int]  # eligible candidates the draw chose from
    # Window, exclusion weeks, rule version and exclusion counts: enough to redraw.
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    drawn_by: Mapped[StaffUser | None] = relationship()
    entries: Mapped[list[MayorCallEntry]] = relationship(
        back_populates="call_list", order_by="MayorCallEntry.position", cascade="all"
    )


class MayorCallEntry(Base):
    __tablename__ = "mayor_call_entries"
    __table_args__ = (
        UniqueConstraint("list_id", "position"),
        UniqueConstraint("list_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mayor_call_lists.id"))
    position: Mapped[int]  # 1-based order of the draw
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(16), index=True)
    neighbourhood_id: Mapped[int | None] = mapped_column(ForeignKey("neighbourhoods.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    result: Mapped[MayorCallResult] = mapped_column(
        enum_type(MayorCallResult), default=MayorCallResult.PENDING
    )
    notes: Mapped[str | None] = mapped_column(Text)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    follow_up_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))

    call_list: Mapped[MayorCallList] = relationship(back_populates="entries")
    ticket: Mapped[Ticket] = relationship(foreign_keys=[ticket_id])
    citizen: Mapped[Citizen | None] = relationship()
    neighbourhood: Mapped[Neighbourhood | None] = relationship()
    department: Mapped[Department | None] = relationship()
    recorded_by: Mapped[StaffUser | None] = relationship()
    follow_up_ticket: Mapped[Ticket | None] = relationship(foreign_keys=[follow_up_ticket_id])
