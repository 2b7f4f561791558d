"""Ticket (başvuru): one tracked request, whatever channel it came through (R2)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.engine.default import DefaultExecutionContext
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


# SLA clock states (services.sla_clock): the clock runs in these statuses and is paused in
# the waiting ones; resolved, closed and merged tickets have no clock.
CLOCK_RUNNING_STATUSES = frozenset(
    {TicketStatus.NEW, TicketStatus.FORWARDED, TicketStatus.IN_PROGRESS, TicketStatus.REOPENED}
)
CLOCK_PAUSED_STATUSES = frozenset(
    {TicketStatus.WAITING_ON_CITIZEN, TicketStatus.REFERRED_EXTERNALLY}
)


def _inserted_status(context: DefaultExecutionContext) -> tuple[object, object]:
    params = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return params.get("status"), params.get("received_at")


def _arm_new_ticket(context: DefaultExecutionContext) -> object:
    """A ticket inserted with a running clock and no escalation time is armed for the next
    sweep, which computes its real first step (services.escalation); intake needs no change."""
    status, received_at = _inserted_status(context)
    return received_at if status in CLOCK_RUNNING_STATUSES else None


def _pause_new_ticket(context: DefaultExecutionContext) -> object:
    """A ticket inserted waiting (e.g. referred to an external institution at intake) starts
    with its clock paused from the moment it was received."""
    status, received_at = _inserted_status(context)
    return received_at if status in CLOCK_PAUSED_STATUSES else None


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_dedup", "citizen_id", "ticket_type_id", "status"),
        Index("ix_tickets_status_due", "status", "due_at"),
        # Grouping looks up open tickets of a type by normalised address or by location.
        Index("ix_tickets_type_place_key", "ticket_type_id", "place_key"),
        Index("ix_tickets_type_location", "ticket_type_id", "latitude", "longitude"),
        # The escalation sweep finds due work by this index alone; only open tickets with a
        # running clock carry a value, so the partial index stays small.
        Index(
            "ix_tickets_next_escalation_at",
            "next_escalation_at",
            postgresql_where=text("next_escalation_at IS NOT NULL"),
            sqlite_where=text("next_escalation_at IS NOT NULL"),
        ),
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
    # Highest escalation step taken in the current clock cycle (services.sla_policy.Step).
    escalation_level: Mapped[int] = mapped_column(default=0)
    # SLA clock (services.sla_clock). A cycle starts at receipt (sla_started_at NULL) and
    # again at each reopening (sla_cycle + 1); pauses move due_at by the paused clock time.
    sla_cycle: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    sla_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=_pause_new_ticket)
    # Clock seconds (working or elapsed, as the type's SLA counts) paused in this cycle.
    sla_paused_seconds: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # When the sweep must next look at this ticket; NULL unless open with a running clock.
    next_escalation_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=_arm_new_ticket
    )
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
