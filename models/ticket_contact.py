"""One contact that reported a ticket: channel, person and when (R2.4).

A duplicate report becomes another contact on the same ticket, so the ticket keeps every
channel and person that raised it. ``(channel, external_ref)`` is unique: a repeated
provider message id or call id is recognised instead of being recorded twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.enums import Channel

if TYPE_CHECKING:
    from models.ticket import Ticket


class TicketContact(Base):
    __tablename__ = "ticket_contacts"
    __table_args__ = (UniqueConstraint("channel", "external_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    original_ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    channel: Mapped[Channel] = mapped_column(enum_type(Channel))
    external_ref: Mapped[str | None] = mapped_column(String(120))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    citizen_match: Mapped[str] = mapped_column(String(20))  # tc / phone / new / none / ambiguous
    contact_name: Mapped[str | None] = mapped_column(String(160))
    phone_e164: Mapped[str | None] = mapped_column(String(16), index=True)
    phone_raw: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    social_handle: Mapped[str | None] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    place_of_application: Mapped[str | None] = mapped_column(String(200))

    ticket: Mapped[Ticket] = relationship(back_populates="contacts", foreign_keys=[ticket_id])
