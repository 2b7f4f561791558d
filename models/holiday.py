"""A day off on the working calendar: public holiday or half-day eve (arife)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Holiday(Base):
    __tablename__ = "holidays"

    day: Mapped[date] = mapped_column(primary_key=True)
    name_tr: Mapped[str] = mapped_column(String(160))
    name_en: Mapped[str] = mapped_column(String(160))
    half_day: Mapped[bool] = mapped_column(default=False)
