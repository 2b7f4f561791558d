"""SLA and legal deadlines of a ticket (R2.3, engineering.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from models import LegalClock, SlaUnit
from services.working_calendar import WorkingCalendar


class SlaRule(Protocol):
    """What deadlines depend on: a ``TicketType`` row or a value copied from one."""

    @property
    def sla_hours(self) -> int: ...

    @property
    def sla_unit(self) -> SlaUnit: ...

    @property
    def legal_clock(self) -> LegalClock: ...


@dataclass(frozen=True)
class Deadlines:
    due_at: datetime
    legal_due_at: datetime | None


def deadlines_for(calendar: WorkingCalendar, ticket_type: SlaRule, start: datetime) -> Deadlines:
    """Internal SLA deadline from the type's hours (working or calendar), plus the legal clock.

    Working hours are counted on the Turkish working calendar (weekends, public holidays and
    the afternoons of half-day eves excluded). Legal clocks: petition/CİMER and KVKK 30
    calendar days; right to information 15 working days.
    """
    hours = timedelta(hours=ticket_type.sla_hours)
    if ticket_type.sla_unit is SlaUnit.WORKING_HOURS:
        due = calendar.add_working_time(start, hours)
    else:
        due = calendar.add_calendar_time(start, hours)
    legal: datetime | None
    match ticket_type.legal_clock:
        case LegalClock.PETITION_30_DAYS | LegalClock.KVKK_30_DAYS:
            legal = calendar.add_calendar_time(start, timedelta(days=30))
        case LegalClock.INFORMATION_15_WORKING_DAYS:
            legal = calendar.add_working_days(start, 15)
        case _:
            legal = None
    if legal is not None and legal < due:
        due = legal  # the internal SLA never promises later than the law allows
    return Deadlines(due_at=due, legal_due_at=legal)
