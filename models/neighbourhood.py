"""Neighbourhood (mahalle) with its muhtar (R7.1)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Neighbourhood(Base):
    __tablename__ = "neighbourhoods"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    muhtar_name: Mapped[str | None] = mapped_column(String(120))
    muhtar_phone_e164: Mapped[str | None] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(String(40))  # e.g. "kuzey" / "güney"
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    mayor_last_visit_on: Mapped[date | None]
