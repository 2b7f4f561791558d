"""The SLA clock of a ticket: running, paused, restarted, and when the sweep looks next.

The internal SLA (``Ticket.due_at``) counts in the ticket type's unit — working hours on the
Turkish working calendar, or elapsed hours (services.sla) — and:

* **pauses** while the ticket waits on the citizen or on an external institution
  (``waiting_on_citizen``, ``referred_externally``): ``sla_paused_at`` is set, the ticket
  leaves the sweep's index (``next_escalation_at = NULL``) and the timeline says why;
* **resumes** when the ticket leaves the waiting state: the paused clock time (working
  time for working-hour types) is added to ``sla_paused_seconds`` and ``due_at`` moves later
  by exactly that much — never earlier, and never past the legal deadline unless it already
  was;
* **restarts** on reopening: a new cycle (``sla_cycle + 1``) starting at the reopening, a
  fresh ``due_at`` from the type's SLA, escalation level 0.

The legal deadline (``legal_due_at``) never pauses: the statutes (Law 3071 petitions/CİMER,
Law 4982 right to information, Law 6698 KVKK) count from the application, not from our
working state, so waiting on the citizen does not buy the municipality time.

Everything here takes the session, the acting user and ``now`` explicitly and never
commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models import (
    Department,
    SlaUnit,
    StaffUser,
    Ticket,
    TicketStatus,
    TicketType,
    TimelineAction,
)
from models.ticket import CLOCK_PAUSED_STATUSES, CLOCK_RUNNING_STATUSES
from services import timeline
from services.calendar_store import get_calendar
from services.sla import deadlines_for
from services.sla_policy import Ladder, Step, ladder_for
from services.ticket_states import STATUS_NAMES_TR
from services.working_calendar import WorkingCalendar

__all__ = [
    "Clock",
    "ClockStatus",
    "StepTime",
    "clock_for",
    "clock_status",
    "next_escalation_at",
    "on_status_change",
    "rearm",
    "recompute_due",
    "schedule",
]

_ZERO = timedelta(0)


class Clock:
    """Clock arithmetic in one SLA unit: working time on the calendar, or elapsed time."""

    def __init__(self, calendar: WorkingCalendar, unit: SlaUnit) -> None:
        self.calendar = calendar
        self.unit = unit

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant ``amount`` of clock time after ``start`` (``amount`` ≥ 0)."""
        if self.unit is SlaUnit.WORKING_HOURS:
            return self.calendar.add_working_time(start, amount)
        return self.calendar.add_calendar_time(start, amount)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Clock time inside ``[start, end)``; zero when ``end <= start``."""
        if self.unit is SlaUnit.WORKING_HOURS:
            return self.calendar.working_time_between(start, end)
        return max(end - start, _ZERO)


def clock_for(session: Session, ticket: Ticket) -> Clock:
    """The clock ``ticket``'s type counts its SLA in."""
    ticket_type = session.get(TicketType, ticket.ticket_type_id)
    unit = ticket_type.sla_unit if ticket_type is not None else SlaUnit.WORKING_HOURS
    return Clock(get_calendar(session), unit)


@dataclass(frozen=True)
class StepTime:
    """When one escalation step of a ticket falls due, and which unit it tells."""

    step: Step
    at: datetime
    unit_id: int


def schedule(ticket: Ticket, ladder: Ladder, clock: Clock) -> list[StepTime]:
    """Every step of ``ticket``'s current cycle with its due time, in ladder order.

    The reminder falls when ``reminder_percent`` of the net SLA (clock time from the cycle
    start to ``due_at``, less the paused time) has run, counting the pauses taken so far;
    each post-breach rung falls its delay of clock time after ``due_at``. Times are
    non-decreasing along the list. Pure: reads the ticket, writes nothing.
    """
    start = ticket.sla_started_at or ticket.received_at
    paused = timedelta(seconds=ticket.sla_paused_seconds or 0)
    budget = max(clock.between(start, ticket.due_at) - paused, _ZERO)
    reminder = min(clock.add(start, budget * ladder.reminder_fraction + paused), ticket.due_at)
    times = [StepTime(Step.REMINDER, reminder, ladder.department_id)]
    for rung in ladder.rungs:
        times.append(StepTime(rung.step, clock.add(ticket.due_at, rung.after), rung.unit_id))
    return times


def next_escalation_at(ticket: Ticket, ladder: Ladder, clock: Clock) -> datetime | None:
    """The due time of the first step above ``ticket.escalation_level``; ``None`` when the
    ladder is climbed to the top."""
    for step_time in schedule(ticket, ladder, clock):
        if step_time.step.level > ticket.escalation_level:
            return step_time.at
    return None


def _has_running_clock(ticket: Ticket) -> bool:
    return (
        ticket.status in CLOCK_RUNNING_STATUSES
        and ticket.sla_paused_at is None
        and ticket.department_id is not None
    )


def rearm(session: Session, ticket: Ticket) -> datetime | None:
    """Set ``ticket.next_escalation_at`` from its current state and return it.

    Guarantees: ``None`` unless the ticket is open with a running clock and a department
    (resolved, closed, merged, paused and externally referred tickets are never in the
    sweep's index); otherwise the due time of the next step not yet taken. Call after any
    change of ``due_at``, department or status. Never commits.
    """
    if not _has_running_clock(ticket):
        ticket.next_escalation_at = None
        return None
    department = session.get(Department, ticket.department_id)
    if department is None:
        ticket.next_escalation_at = None
        return None
    ticket.next_escalation_at = next_escalation_at(
        ticket, ladder_for(session, department), clock_for(session, ticket)
    )
    return ticket.next_escalation_at


def _within_law(ticket: Ticket, due: datetime, floor: datetime) -> datetime:
    """``due`` moved by a pause, held at the legal deadline when it would pass it (but
    never earlier than ``floor``, the due time before the move): the law does not wait."""
    if ticket.legal_due_at is not None and due > ticket.legal_due_at:
        return max(ticket.legal_due_at, floor)
    return due


def _pause(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, reason: TicketStatus
) -> None:
    if ticket.sla_paused_at is not None:
        return
    ticket.sla_paused_at = now
    ticket.next_escalation_at = None
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.SLA_PAUSED,
        note=f"SLA süresi durduruldu: {STATUS_NAMES_TR[reason]}.",
        reason=reason.value,
        due_at=ticket.due_at.isoformat(),
    )


def _end_pause(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, target: TicketStatus
) -> None:
    paused_since = ticket.sla_paused_at
    if paused_since is None:
        return
    clock = clock_for(session, ticket)
    paused = timedelta(seconds=int(clock.between(paused_since, now).total_seconds()))
    previous_due = ticket.due_at
    moved = _within_law(ticket, clock.add(previous_due, paused), previous_due)
    ticket.due_at = moved
    ticket.sla_paused_at = None
    ticket.sla_paused_seconds = (ticket.sla_paused_seconds or 0) + int(paused.total_seconds())
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.SLA_RESUMED,
        note=(
            "SLA süresi yeniden işliyor; son tarih bekleme süresi kadar ertelendi."
            if target in CLOCK_RUNNING_STATUSES
            else f"SLA beklemesi sona erdi ({STATUS_NAMES_TR[target]})."
        ),
        paused_seconds=int(paused.total_seconds()),
        previous_due_at=previous_due.isoformat(),
        due_at=moved.isoformat(),
    )


def _restart(session: Session, now: datetime, ticket: Ticket) -> None:
    ticket_type = session.get(TicketType, ticket.ticket_type_id)
    if ticket_type is not None:
        ticket.due_at = deadlines_for(get_calendar(session), ticket_type, now).due_at
    ticket.sla_cycle = (ticket.sla_cycle or 0) + 1
    ticket.sla_started_at = now
    ticket.sla_paused_at = None
    ticket.sla_paused_seconds = 0
    ticket.escalation_level = 0


def on_status_change(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    previous: TicketStatus,
    target: TicketStatus,
) -> None:
    """Keep the clock in step with a status change (called by services.ticket_workflow).

    Guarantees: entering ``waiting_on_citizen``/``referred_externally`` pauses the clock
    (recorded on the timeline with the reason); leaving them ends the pause (recorded,
    ``due_at`` moved by the paused clock time); reopening starts a fresh cycle; the
    ticket's place in the sweep's index is recomputed. Never commits.
    """
    if target is TicketStatus.REOPENED:
        _end_pause(session, actor, now, ticket, target)
        _restart(session, now, ticket)
    elif target in CLOCK_PAUSED_STATUSES:
        _pause(session, actor, now, ticket, target)
    elif previous in CLOCK_PAUSED_STATUSES or ticket.sla_paused_at is not None:
        _end_pause(session, actor, now, ticket, target)
    rearm(session, ticket)


def recompute_due(session: Session, ticket: Ticket, ticket_type: TicketType) -> None:
    """After a change of type: ``due_at`` from the new type's SLA counted from the start of
    the current cycle, moved by the time already paused, capped by the legal deadline;
    then re-armed. Never commits."""
    start = ticket.sla_started_at or ticket.received_at
    calendar = get_calendar(session)
    base = deadlines_for(calendar, ticket_type, start).due_at
    paused = timedelta(seconds=ticket.sla_paused_seconds or 0)
    ticket.due_at = _within_law(
        ticket, Clock(calendar, ticket_type.sla_unit).add(base, paused), base
    )
    rearm(session, ticket)


@dataclass(frozen=True)
class ClockStatus:
    """Where a ticket's clocks stand at ``now`` (for consoles, reports and tests)."""

    running: bool
    paused_since: datetime | None
    paused: timedelta  # clock time paused in this cycle, the current pause included
    due_at: datetime  # if the ticket resumed now: due_at moved by the current pause
    remaining: timedelta  # clock time left until due_at (zero once breached)
    overdue: timedelta  # clock time past due_at (zero before the breach)
    breached: bool
    legal_due_at: datetime | None
    legal_breached: bool  # the legal clock runs on while the SLA clock is paused
    escalation_level: int
    next_escalation_at: datetime | None


def clock_status(session: Session, ticket: Ticket, now: datetime) -> ClockStatus:
    """Report both clocks of ``ticket`` at ``now``, counting an ongoing pause. Reads only."""
    clock = clock_for(session, ticket)
    paused = timedelta(seconds=ticket.sla_paused_seconds or 0)
    due = ticket.due_at
    if ticket.sla_paused_at is not None:
        current = timedelta(seconds=int(clock.between(ticket.sla_paused_at, now).total_seconds()))
        paused += current
        due = _within_law(ticket, clock.add(due, current), ticket.due_at)
    breached = now >= due
    return ClockStatus(
        running=_has_running_clock(ticket),
        paused_since=ticket.sla_paused_at,
        paused=paused,
        due_at=due,
        remaining=_ZERO if breached else clock.between(now, due),
        overdue=clock.between(due, now),
        breached=breached,
        legal_due_at=ticket.legal_due_at,
        legal_breached=ticket.legal_due_at is not None and now >= ticket.legal_due_at,
        escalation_level=ticket.escalation_level,
        next_escalation_at=ticket.next_escalation_at,
    )
