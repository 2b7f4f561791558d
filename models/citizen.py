"""Citizen: a person known by TC number, by phone, or both (R2.4, R6.1)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.enums import Language

if TYPE_CHECKING:
    from models.citizen_phone import CitizenPhone
    from models.household import Household


class Citizen(Base):
    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique when known; several citizens may be known by phone only (NULL).
    tc_number: Mapped[str | None] = mapped_column(String(11), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(80))
    last_name: Mapped[str | None] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    preferred_language: Mapped[Language] = mapped_column(enum_type(Language), default=Language.TR)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    # Consent flags (KVKK / İYS). Public-information SMS about own tickets needs no İYS consent.
    consent_sms: Mapped[bool] = mapped_column(default=True)
    consent_calls: Mapped[bool] = mapped_column(default=True)
    consent_commercial: Mapped[bool] = mapped_column(default=False)
    do_not_call: Mapped[bool] = mapped_column(default=False)
    # Special groups of R5.5 (elderly, disabled, lives_alone, patient, youth, home_maker).
    special_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    phones: Mapped[list[CitizenPhone]] = relationship(
        back_populates="citizen", cascade="all, delete-orphan", order_by="CitizenPhone.id"
    )
    household: Mapped[Household | None] = relationship()

    @property
    def display_name(self) -> str:
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts)
