"""Ticket type: the catalogue row that decides kind, routing, SLA and legal clock (R2.3, R3.5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, enum_type
from models.enums import LegalClock, SlaUnit, TicketKind

if TYPE_CHECKING:
    from models.department import Department
    from models.external_institution import ExternalInstitution


class TicketType(Base):
    __tablename__ = "ticket_types"
    __table_args__ = (
        CheckConstraint(
            "(department_id IS NULL) <> (external_institution_id IS NULL)",
            name="routed_to_exactly_one",
        ),
        CheckConstraint("sla_hours > 0", name="sla_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_tr: Mapped[str] = mapped_column(String(160))
    name_en: Mapped[str] = mapped_column(String(160))
    default_kind: Mapped[TicketKind] = mapped_column(enum_type(TicketKind))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    external_institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("external_institutions.id")
    )
    sla_hours: Mapped[int]
    sla_unit: Mapped[SlaUnit] = mapped_column(enum_type(SlaUnit))
    legal_clock: Mapped[LegalClock] = mapped_column(enum_type(LegalClock), default=LegalClock.NONE)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)

    department: Mapped[Department | None] = relationship()
    external_institution: Mapped[ExternalInstitution | None] = relationship()
