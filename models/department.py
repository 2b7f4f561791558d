"""Municipal unit: a müdürlük, a deputy mayor's office or the mayor (escalation ladder, R3.3).

``parent_id`` points one step up the ladder. Each directorate has a primary (asil) and a
backup (yedek) Açık Kapı liaison officer (R3.1). ``escalation_policy_id`` names the unit's
escalation policy; ``NULL`` means the municipality's default policy (``services.sla_policy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base

if TYPE_CHECKING:
    from models.escalation_policy import EscalationPolicy
    from models.staff_user import StaffUser

UNIT_LEVELS = ("directorate", "deputy_mayor", "mayor", "office")


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (
        CheckConstraint(
            "level IN ('directorate', 'deputy_mayor', 'mayor', 'office')", name="known_level"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_tr: Mapped[str] = mapped_column(String(160))
    name_en: Mapped[str] = mapped_column(String(160))
    level: Mapped[str] = mapped_column(String(20), default="directorate")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    primary_liaison_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    backup_liaison_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    email: Mapped[str | None] = mapped_column(String(254))
    phone_extension: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    escalation_policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id"))

    parent: Mapped[Department | None] = relationship(remote_side=[id])
    primary_liaison: Mapped[StaffUser | None] = relationship(foreign_keys=[primary_liaison_id])
    backup_liaison: Mapped[StaffUser | None] = relationship(foreign_keys=[backup_liaison_id])
    escalation_policy: Mapped[EscalationPolicy | None] = relationship()

    def ladder(self) -> list[Department]:
        """This unit and every unit above it, nearest first (cycles are cut)."""
        seen: list[Department] = []
        unit: Department | None = self
        while unit is not None and unit not in seen:
            seen.append(unit)
            unit = unit.parent
        return seen
