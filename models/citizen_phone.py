"""A citizen's phone number: E.164 for lookup, the raw form as given (R2.1)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.enums import PhoneType

if TYPE_CHECKING:
    from models.citizen import Citizen


class CitizenPhone(Base):
    __tablename__ = "citizen_phones"
    __table_args__ = (UniqueConstraint("citizen_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"))
    # Not unique: a household landline can belong to several citizens.
    e164: Mapped[str] = mapped_column(String(16), index=True)
    raw: Mapped[str] = mapped_column(String(64))
    phone_type: Mapped[PhoneType] = mapped_column(enum_type(PhoneType))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

    citizen: Mapped[Citizen] = relationship(back_populates="phones")
