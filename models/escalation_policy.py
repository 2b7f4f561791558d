"""Escalation policy: when an open ticket's SLA warnings climb the ladder (R3.3).

A policy is named (``code``) and shared: a department points to one through
``Department.escalation_policy_id``; a department without one uses the policy whose code is
``default``. Delays are counted in the ticket's own SLA clock (working hours for
working-hour types, elapsed hours for calendar-hour types) and measured from the breach
(the ticket's ``due_at``). A ``NULL`` delay leaves that rung out of the ladder.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

DEFAULT_POLICY_CODE = "default"


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"
    __table_args__ = (
        CheckConstraint("reminder_percent BETWEEN 1 AND 99", name="reminder_percent_range"),
        CheckConstraint("superior_unit_after_hours >= 0", name="superior_not_negative"),
        CheckConstraint(
            "deputy_mayor_after_hours IS NULL "
            "OR deputy_mayor_after_hours >= superior_unit_after_hours",
            name="deputy_after_superior",
        ),
        CheckConstraint(
            "mayor_after_hours IS NULL OR mayor_after_hours >= superior_unit_after_hours",
            name="mayor_after_superior",
        ),
        CheckConstraint(
            "mayor_after_hours IS NULL OR deputy_mayor_after_hours IS NULL "
            "OR mayor_after_hours >= deputy_mayor_after_hours",
            name="mayor_after_deputy",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_tr: Mapped[str] = mapped_column(String(160))
    name_en: Mapped[str] = mapped_column(String(160))
    # Pre-breach reminder to the department's liaison officers at this share of the SLA.
    reminder_percent: Mapped[int] = mapped_column(default=80)
    # Hours after the breach (in the ticket's SLA clock) at which each rung is told.
    superior_unit_after_hours: Mapped[int] = mapped_column(default=0)
    deputy_mayor_after_hours: Mapped[int | None] = mapped_column(default=8)
    mayor_after_hours: Mapped[int | None] = mapped_column(default=16)
    # Channels besides the console (always used for staff).
    notify_email: Mapped[bool] = mapped_column(default=True)
    notify_sms: Mapped[bool] = mapped_column(default=True)
