"""Household / address: where citizens live, tied to a neighbourhood (R6.1)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.neighbourhood import Neighbourhood


class Household(Base):
    __tablename__ = "households"

    id: Mapped[int] = mapped_column(primary_key=True)
    neighbourhood_id: Mapped[int | None] = mapped_column(
        ForeignKey("neighbourhoods.id"), index=True
    )
    street: Mapped[str | None] = mapped_column(String(200))
    building_no: Mapped[str | None] = mapped_column(String(20))
    door_no: Mapped[str | None] = mapped_column(String(20))
    address_text: Mapped[str | None] = mapped_column(String(500))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]

    neighbourhood: Mapped[Neighbourhood | None] = relationship()
