"""Escalation ladders: which steps a department's overdue tickets climb, and when (R3.3).

A ladder is built from the department's :class:`models.EscalationPolicy` (or the policy
coded ``default``, or :data:`BUILT_IN_DEFAULT` when the table is empty) and from the unit
chain ``Department.parent`` (directorate → deputy mayor → mayor). Steps, in order:

1. ``reminder`` — pre-breach reminder to the department's liaison officers at
   ``reminder_percent`` of the SLA;
2. ``superior_unit`` — at the breach (+ ``superior_unit_after_hours``): the department's
   amirlik (its unit chiefs) and its liaison officers;
3. ``deputy_mayor`` — + ``deputy_mayor_after_hours``: the deputy mayor's office above it;
4. ``mayor`` — + ``mayor_after_hours``: the mayor's office.

A rung whose delay is ``NULL`` or whose unit does not exist in the chain (e.g. the Açık Kapı
office sits directly under the mayor) is left out. The step's level (1–4) is what
``Ticket.escalation_level`` records, so a level never means two different things.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Department, EscalationPolicy
from models.escalation_policy import DEFAULT_POLICY_CODE

__all__ = [
    "BUILT_IN_DEFAULT",
    "Ladder",
    "PolicyValues",
    "Rung",
    "Step",
    "ladder_for",
    "policy_values",
]


class Step(enum.StrEnum):
    """The escalation steps, in ladder order."""

    REMINDER = "reminder"
    SUPERIOR_UNIT = "superior_unit"
    DEPUTY_MAYOR = "deputy_mayor"
    MAYOR = "mayor"

    @property
    def level(self) -> int:
        """``Ticket.escalation_level`` after this step (1 for the reminder … 4 for the mayor)."""
        return _LEVELS[self]


_LEVELS = {
    Step.REMINDER: 1,
    Step.SUPERIOR_UNIT: 2,
    Step.DEPUTY_MAYOR: 3,
    Step.MAYOR: 4,
}


@dataclass(frozen=True)
class PolicyValues:
    """A policy's numbers, detached from the session."""

    code: str
    reminder_percent: int
    superior_unit_after_hours: int
    deputy_mayor_after_hours: int | None
    mayor_after_hours: int | None
    notify_email: bool
    notify_sms: bool


BUILT_IN_DEFAULT = PolicyValues(
    code="built-in",
    reminder_percent=80,
    superior_unit_after_hours=0,
    deputy_mayor_after_hours=8,
    mayor_after_hours=16,
    notify_email=True,
    notify_sms=True,
)
"""Used only when no policy row exists at all (the catalogue loads a ``default`` row)."""


@dataclass(frozen=True)
class Rung:
    """One post-breach step: ``after`` is clock time after the breach; ``unit_id`` the unit
    told (the department itself for the superior-unit step, its amirlik)."""

    step: Step
    after: timedelta
    unit_id: int


@dataclass(frozen=True)
class Ladder:
    """Everything the sweep needs to know about one department's escalation."""

    department_id: int
    policy: PolicyValues
    rungs: tuple[Rung, ...]  # post-breach steps, in order, delays non-decreasing

    @property
    def reminder_fraction(self) -> float:
        return self.policy.reminder_percent / 100


def policy_values(policy: EscalationPolicy) -> PolicyValues:
    return PolicyValues(
        code=policy.code,
        reminder_percent=policy.reminder_percent,
        superior_unit_after_hours=policy.superior_unit_after_hours,
        deputy_mayor_after_hours=policy.deputy_mayor_after_hours,
        mayor_after_hours=policy.mayor_after_hours,
        notify_email=policy.notify_email,
        notify_sms=policy.notify_sms,
    )


def _policy_for(session: Session, department: Department) -> PolicyValues:
    policy = department.escalation_policy
    if policy is None:
        policy = session.scalar(
            select(EscalationPolicy).where(EscalationPolicy.code == DEFAULT_POLICY_CODE)
        )
    return BUILT_IN_DEFAULT if policy is None else policy_values(policy)


def ladder_for(session: Session, department: Department) -> Ladder:
    """The escalation ladder of ``department``'s tickets.

    Guarantees: rungs are in :class:`Step` order with non-decreasing delays; a rung appears
    only when the policy gives it a delay and the unit it targets exists (the first unit of
    level ``deputy_mayor`` / ``mayor`` above the department). Reads, never writes.
    """
    policy = _policy_for(session, department)
    chain = department.ladder()[1:]
    deputy = next((u for u in chain if u.level == "deputy_mayor"), None)
    mayor = next((u for u in chain if u.level == "mayor"), None)
    rungs = [
        Rung(Step.SUPERIOR_UNIT, timedelta(hours=policy.superior_unit_after_hours), department.id)
    ]
    floor = policy.superior_unit_after_hours
    if deputy is not None and policy.deputy_mayor_after_hours is not None:
        floor = max(floor, policy.deputy_mayor_after_hours)
        rungs.append(Rung(Step.DEPUTY_MAYOR, timedelta(hours=floor), deputy.id))
    if mayor is not None and policy.mayor_after_hours is not None:
        floor = max(floor, policy.mayor_after_hours)
        rungs.append(Rung(Step.MAYOR, timedelta(hours=floor), mayor.id))
    return Ladder(department_id=department.id, policy=policy, rungs=tuple(rungs))
