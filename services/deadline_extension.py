"""More time for a ticket (R3.2, R3.4): a unit that cannot finish in time asks for more, says
why, and the citizen is told the new date.

Rules (decision 0019):

* The request names a number of *days* in the ticket type's own clock — working days
  (8 working hours each, on the working calendar) for working-hour types, 24-hour days for
  calendar-hour types — and a reason, which is recorded on the timeline with the old and
  the new deadline.
* A department grants itself up to :data:`SELF_SERVICE_DAYS` days per SLA cycle, and only
  before the deadline has passed: no approval round for the ordinary case, and no way to
  hide a breach that has already escalated. Anything more is granted by the coordination
  desk (roles of :data:`services.permissions.COORDINATION`) through the same service.
* The legal deadline (petitions, CİMER, right to information, KVKK) is never moved: an
  extension stops there, and a ticket already at its legal deadline gets none.
* ``due_at`` moves later, never earlier; the escalation level stays (steps already taken
  stay taken), and the sweep's index is re-armed (:func:`services.sla_clock.rearm`) so the
  next step is computed from the new deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    Notification,
    SlaUnit,
    StaffUser,
    Ticket,
    TicketEvent,
    TimelineAction,
)
from services import sla_clock, timeline
from services.errors import InvalidField, InvalidTransition, MissingField, NotPermitted
from services.escalation import local_text
from services.permissions import COORDINATION, require_can_change
from services.ticket_notifications import notify_citizen
from services.working_calendar import DEFAULT_PERIODS

SELF_SERVICE_DAYS = 5  # days a department may add by itself in one SLA cycle
MAX_DAYS = 30  # the most one request may ask for
MAX_REASON = 1000
CITIZEN_TEMPLATE = "ticket_deadline_extended"
WORKING_DAY = sum(
    (
        datetime.combine(datetime.min, end) - datetime.combine(datetime.min, start)
        for start, end in DEFAULT_PERIODS
    ),
    timedelta(0),
)
DAY_LENGTH = {SlaUnit.WORKING_HOURS: WORKING_DAY, SlaUnit.CALENDAR_HOURS: timedelta(hours=24)}


@dataclass(frozen=True)
class Extension:
    """What :func:`extend_deadline` did."""

    previous_due_at: datetime
    due_at: datetime
    days: int
    self_service: bool  # granted by the department itself (counts against its allowance)
    capped_by_law: bool  # the legal deadline stopped it short of ``days``
    notice: Notification | None  # the message to the citizen (None: unreachable)


def self_service_days_used(session: Session, ticket: Ticket) -> int:
    """Days the department granted itself in ``ticket``'s current SLA cycle. Reads only."""
    used = 0
    for data in session.scalars(
        select(TicketEvent.data).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == TimelineAction.DEADLINE_EXTENDED,
        )
    ):
        if data.get("self_service") and data.get("cycle") == (ticket.sla_cycle or 0):
            used += int(data.get("days", 0))
    return used


def self_service_days_left(session: Session, ticket: Ticket) -> int:
    """How many days the department may still add to ``ticket`` by itself. Reads only."""
    return max(SELF_SERVICE_DAYS - self_service_days_used(session, ticket), 0)


def extend_deadline(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    *,
    days: int,
    reason: str,
) -> Extension:
    """Move ``ticket``'s SLA deadline ``days`` days later for ``reason`` (see the module
    doc for who may grant how much).

    Guarantees, within the caller's transaction (never commits): the actor may change the
    ticket (:class:`NotPermitted`); the ticket is open (:class:`InvalidTransition`); the
    reason is given and ``1 ≤ days ≤`` :data:`MAX_DAYS` (:class:`MissingField`,
    :class:`InvalidField`); a department stays within its allowance and before the
    deadline (:class:`NotPermitted`); ``due_at`` only moves later and never past the
    legal deadline; the timeline records the reason, both deadlines and who granted it;
    the sweep's index is re-armed; the citizen is told the new date (outbox, once per
    extension).
    """
    require_can_change(actor, ticket)
    if ticket.status not in OPEN_STATUSES:
        raise InvalidTransition(
            "Yalnızca açık bir başvuru için ek süre istenebilir.",
            "More time can only be given to an open ticket.",
            status=ticket.status.value,
        )
    why = reason.strip()
    if not why:
        raise MissingField(
            "Ek süre için bir gerekçe yazın.", "Give a reason for more time.", field="reason"
        )
    if len(why) > MAX_REASON:
        raise InvalidField(
            f"Gerekçe en çok {MAX_REASON} karakter olabilir.",
            f"The reason can be at most {MAX_REASON} characters long.",
            field="reason",
        )
    if not 1 <= days <= MAX_DAYS:
        raise InvalidField(
            f"Ek süre 1 ile {MAX_DAYS} gün arasında olmalı.",
            f"More time must be between 1 and {MAX_DAYS} days.",
            field="days",
        )
    self_service = actor.role not in COORDINATION
    if self_service:
        if sla_clock.clock_status(session, ticket, now).breached:
            raise NotPermitted(
                "Süresi geçmiş başvuru için ek süreyi koordinasyon masası verir.",
                "Once the deadline has passed, only the coordination desk can give more time.",
                field="days",
            )
        left = self_service_days_left(session, ticket)
        if days > left:
            raise NotPermitted(
                f"Biriminiz bu başvuruya en çok {left} gün daha ek süre verebilir; "
                "daha fazlası için koordinasyon masasına başvurun.",
                f"Your unit can add at most {left} more days to this ticket; ask the "
                "coordination desk for more.",
                field="days",
                left=left,
            )
    legal = ticket.legal_due_at
    if legal is not None and ticket.due_at >= legal:
        raise InvalidField(
            "Başvuru yasal süre sonuna ulaştı; ek süre verilemez.",
            "The ticket is at its legal deadline; no more time can be given.",
            field="days",
        )
    clock = sla_clock.clock_for(session, ticket)
    previous = ticket.due_at
    due = clock.add(previous, DAY_LENGTH[clock.unit] * days)
    capped = legal is not None and due > legal
    if capped and legal is not None:
        due = legal
    ticket.due_at = due
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.DEADLINE_EXTENDED,
        note=why,
        days=days,
        cycle=ticket.sla_cycle or 0,
        self_service=self_service,
        capped_by_law=capped,
        previous_due_at=previous.isoformat(),
        due_at=due.isoformat(),
    )
    sla_clock.rearm(session, ticket)
    session.flush()
    count = len(
        session.scalars(
            select(TicketEvent.id).where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == TimelineAction.DEADLINE_EXTENDED,
            )
        ).all()
    )
    notice = notify_citizen(
        session,
        ticket,
        actor,
        now,
        template=CITIZEN_TEMPLATE,
        key=f"extended:{ticket.id}:{count}",
        extra={"due_at_local": local_text(due)},
    )
    return Extension(previous, due, days, self_service, capped, notice)
