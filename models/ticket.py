"""Ticket (başvuru): one tracked request, whatever channel it came through (R2)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.enums import Channel, Language, TicketKind, TicketStatus

if TYPE_CHECKING:
    from models.citizen import Citizen
    from models.department import Department
    from models.external_institution import ExternalInstitution
    from models.neighbourhood import Neighbourhood
    from models.staff_user import StaffUser
    from models.ticket_contact import TicketContact
    from models.ticket_type import TicketType


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_dedup", "citizen_id", "ticket_type_id", "status"),
        Index("ix_tickets_status_due", "status", "due_at"),
        # Grouping looks up open tickets of a type by normalised address or by location.
        Index("ix_tickets_type_place_key", "ticket_type_id", "place_key"),
        Index("ix_tickets_type_location", "ticket_type_id", "latitude", "longitude"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Assigned right after the row gets its id, in the same transaction (services.reference_code).
    reference_code: Mapped[str | None] = mapped_column(String(12), unique=True)
    kind: Mapped[TicketKind] = mapped_column(enum_type(TicketKind))
    channel: Mapped[Channel] = mapped_column(enum_type(Channel))  # the first contact's channel
    status: Mapped[TicketStatus] = mapped_column(enum_type(TicketStatus))
    language: Mapped[Language] = mapped_column(enum_type(Language), default=Language.TR)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    ticket_type_id: Mapped[int] = mapped_column(ForeignKey("ticket_types.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    external_institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("external_institutions.id")
    )
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    neighbourhood_id: Mapped[int | None] = mapped_column(ForeignKey("neighbourhoods.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    address_text: Mapped[str | None] = mapped_column(String(500))
    place_key: Mapped[str | None] = mapped_column(String(200))  # normalised address for grouping
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    description: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    place_of_application: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    legal_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(default=0)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at_first_contact: Mapped[bool] = mapped_column(default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_groups.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    citizen: Mapped[Citizen | None] = relationship()
    ticket_type: Mapped[TicketType] = relationship()
    department: Mapped[Department | None] = relationship()
    external_institution: Mapped[ExternalInstitution | None] = relationship()
    neighbourhood: Mapped[Neighbourhood | None] = relationship()
    received_by: Mapped[StaffUser] = relationship(foreign_keys=[received_by_id])
    assigned_to: Mapped[StaffUser | None] = relationship(foreign_keys=[assigned_to_id])
    merged_into: Mapped[Ticket | None] = relationship(remote_side=[id])
    contacts: Mapped[list[TicketContact]] = relationship(
        back_populates="ticket", order_by="TicketContact.id", foreign_keys="TicketContact.ticket_id"
    )
