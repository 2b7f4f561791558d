"""The escalation sweep: overdue tickets climb the ladder up to the mayor (R3.3, R3.4).

``run_sweep`` is called periodically (``jobs.sweeps``). It finds due work through the
partial index on ``tickets.next_escalation_at`` alone — never by scanning open tickets —
and for each due ticket takes every step of its ladder (services.sla_policy) that has come
due, in order:

* ``reminder`` (pre-breach, e.g. at 80 % of the SLA): the department's primary and backup
  liaison officers;
* ``superior_unit`` (at the breach): the department's amirlik (unit chiefs) and liaison
  officers — the unit's mailbox when it has no chief — and the citizen gets a delay notice
  by SMS or e-mail in their language, with the reference code;
* ``deputy_mayor``, then ``mayor``: those offices (their liaisons and chiefs; for the mayor
  also the mayor's private office staff), after the configured delays.

Staff are told in the console, by e-mail and by SMS (as the policy allows). Each step
writes exactly one ``escalated`` timeline row whose ``step_key``
(``esc:<ticket>:<cycle>:<step>``) is unique in the database, outbox rows with
deterministic idempotency keys (``esc:<ticket>:<cycle>:<step>:staff<id>:<channel>``),
raises ``escalation_level`` and moves ``next_escalation_at`` to the next step (or clears
it). A pre-breach reminder that first comes due after the breach is skipped: it is no
longer "pre-breach", and the breach step tells the same liaisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import (
    Base,
    Citizen,
    CitizenPhone,
    Department,
    Language,
    NotificationChannel,
    Role,
    StaffUser,
    Ticket,
    TicketContact,
    TicketType,
    TimelineAction,
)
from models.ticket import CLOCK_RUNNING_STATUSES
from services import outbox, timeline
from services.actors import system_actor
from services.identity import is_mobile
from services.sla_clock import Clock, StepTime, clock_for, schedule
from services.sla_policy import Ladder, Step, ladder_for
from services.ticket_ids import rows_json
from services.ticket_notifications import notice_entry, reach

__all__ = ["LOCAL_TZ", "Recipient", "SweepReport", "local_text", "recipients_for", "run_sweep"]

LOCAL_TZ = ZoneInfo("Europe/Istanbul")
# Staff who speak for a unit at an escalation step, besides its liaison officers.
HEAD_ROLES = frozenset({Role.UNIT_CHIEF, Role.SUPERVISOR, Role.MAYORS_OFFICE})

STAFF_TEMPLATES = {
    Step.REMINDER: "sla_reminder",
    Step.SUPERIOR_UNIT: "sla_breached",
    Step.DEPUTY_MAYOR: "sla_escalated",
    Step.MAYOR: "sla_escalated",
}
CITIZEN_TEMPLATE = "sla_delay_notice"
STEP_NOTES_TR = {
    Step.REMINDER: "SLA süresinin %{percent} kadarı doldu; Açık Kapı görevlilerine hatırlatıldı.",
    Step.SUPERIOR_UNIT: "SLA süresi aşıldı; üst birime (amirliğe) bildirildi.",
    Step.DEPUTY_MAYOR: "Gecikme başkan yardımcılığına bildirildi.",
    Step.MAYOR: "Gecikme belediye başkanlığına bildirildi.",
}


def local_text(moment: datetime | None) -> str:
    """``dd.mm.yyyy HH:MM`` in Istanbul time (``-`` for no moment), as staff read dates."""
    if moment is None:
        return "-"
    return moment.astimezone(LOCAL_TZ).strftime("%d.%m.%Y %H:%M")


@dataclass(frozen=True)
class Recipient:
    """A staff member (``staff_id`` set) or a unit's mailbox told at one step."""

    key: str  # part of the idempotency key: "staff<id>" or "unit<id>"
    staff_id: int | None
    email: str | None
    phone: str | None  # mobile E.164, for SMS
    language: Language


@dataclass
class SweepReport:
    """What one call of :func:`run_sweep` did."""

    examined: int = 0  # due tickets looked at (locked) in this batch
    steps: dict[str, int] = field(default_factory=dict)  # steps recorded, by step
    skipped_reminders: int = 0  # reminders that came due only after the breach
    notifications: int = 0  # staff outbox rows written
    citizen_notices: int = 0  # delay notices queued for citizens
    rearmed: int = 0  # tickets given a later next_escalation_at
    disarmed: int = 0  # tickets taken out of the index (top of ladder, closed, paused)
    legal_overdue: int = 0  # examined tickets already past their legal deadline
    more: bool = False  # the batch was full: call again (after committing) for the rest

    @property
    def total_steps(self) -> int:
        return sum(self.steps.values())


def _staff_recipient(user: StaffUser) -> Recipient:
    languages = user.languages or ["tr"]
    language = Language.TR if "tr" in languages else Language.EN
    phone = user.phone_e164 if user.phone_e164 and is_mobile(user.phone_e164) else None
    return Recipient(f"staff{user.id}", user.id, user.email, phone, language)


def recipients_for(session: Session, step: Step, unit: Department) -> list[Recipient]:
    """Who is told at ``step`` for ``unit`` (the department for the reminder and the
    superior-unit step; the deputy mayor's or mayor's unit above it for the later steps).

    Guarantees: only active staff; each person once; the primary and backup liaison first,
    then the unit's chiefs by staff id (for the mayor also every ``mayors_office`` user);
    the unit's mailbox when the unit has no chief (never for the reminder, which is the
    liaisons' own business). One query.
    """
    liaison_ids = [i for i in (unit.primary_liaison_id, unit.backup_liaison_id) if i]
    is_head: ColumnElement[bool] = and_(
        StaffUser.department_id == unit.id, StaffUser.role.in_(HEAD_ROLES)
    )
    if step is Step.MAYOR:
        is_head = or_(is_head, StaffUser.role == Role.MAYORS_OFFICE)
    wanted: list[ColumnElement[bool]] = [StaffUser.id.in_(liaison_ids)] if liaison_ids else []
    if step is not Step.REMINDER:
        wanted.append(is_head)
    if not wanted:
        return []
    found = list(
        session.scalars(
            select(StaffUser)
            .where(or_(*wanted), StaffUser.is_active.is_(True))
            .order_by(StaffUser.id)
        )
    )
    by_id = {u.id: u for u in found}
    people = [by_id[i] for i in liaison_ids if i in by_id]
    heads = [
        u
        for u in found
        if step is not Step.REMINDER
        and (
            (u.department_id == unit.id and u.role in HEAD_ROLES)
            or (step is Step.MAYOR and u.role is Role.MAYORS_OFFICE)
        )
    ]
    people += [u for u in heads if u not in people]
    result = [_staff_recipient(u) for u in dict.fromkeys(people)]
    if step is not Step.REMINDER and not heads and unit.email:
        result.append(Recipient(f"unit{unit.id}", None, unit.email, None, Language.TR))
    return result


class _Sweep:
    """One batch: the units and types it refers to (held, so the identity map keeps them),
    caches (ladders, clocks, recipients) and the rows it will write."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self.actor = system_actor(session, "sla", now)
        self.report = SweepReport()
        self.units = {u.id: u for u in session.scalars(select(Department))}
        self.types = {t.id: t for t in session.scalars(select(TicketType))}
        self.rows: list[dict[str, Any]] = []  # outbox rows
        self.events: list[dict[str, Any]] = []  # timeline rows, in order
        self.breached: list[tuple[Ticket, str, int]] = []  # (ticket, key, event position)
        self.updates: list[tuple[Ticket, int, datetime | None]] = []  # level, next time
        self._ladders: dict[int, Ladder] = {}
        self._clocks: dict[int, Clock] = {}
        self._recipients: dict[tuple[Step, int], list[Recipient]] = {}

    def ladder(self, department_id: int) -> Ladder:
        ladder = self._ladders.get(department_id)
        if ladder is None:
            ladder = ladder_for(self.session, self.units[department_id])
            self._ladders[department_id] = ladder
        return ladder

    def clock(self, ticket: Ticket) -> Clock:
        clock = self._clocks.get(ticket.ticket_type_id)
        if clock is None:
            clock = clock_for(self.session, ticket)
            self._clocks[ticket.ticket_type_id] = clock
        return clock

    def recipients(self, step: Step, unit_id: int) -> list[Recipient]:
        found = self._recipients.get((step, unit_id))
        if found is None:
            found = recipients_for(self.session, step, self.units[unit_id])
            self._recipients[(step, unit_id)] = found
        return found


def run_sweep(session: Session, now: datetime, *, batch_size: int = 500) -> SweepReport:
    """Take every escalation step that has come due by ``now`` for up to ``batch_size``
    tickets, in the caller's transaction (never commits).

    Guarantees:

    * Due tickets are found by ``next_escalation_at <= now`` on its partial index, oldest
      first; on PostgreSQL the rows are locked ``FOR NO KEY UPDATE SKIP LOCKED``, so
      concurrent sweeps share the work and never take the same ticket (while intake may
      still attach contacts and notifications to it); on SQLite the write transaction
      (``BEGIN IMMEDIATE``) serialises them.
    * Each step is recorded exactly once per ticket and clock cycle: the level check, the
      row lock, and the unique ``step_key`` of its timeline row (a second attempt fails
      the whole transaction rather than notify anyone twice).
    * Resolved, closed, merged, paused, externally referred tickets, and tickets without
      a department, are never escalated; a stale index entry of theirs is cleared.
    * Running again at the same ``now`` (after the caller commits) does nothing: every
      examined ticket's ``next_escalation_at`` is later than ``now`` or cleared.
    * ``report.more`` is true when the batch was full: commit and call again.
    * A batch costs a fixed number of statements, whatever the number of steps: its
      outbox rows (``services.outbox.enqueue_many``) and its timeline rows
      (``services.timeline.write``) go in one insert each, the tickets in one update.
    """
    sweep = _Sweep(session, now)
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.next_escalation_at <= now)
        .order_by(Ticket.next_escalation_at, Ticket.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True, key_share=True)
        .execution_options(populate_existing=True)
    ).all()
    with session.no_autoflush:
        for ticket in tickets:
            _process(sweep, ticket)
        _delay_notices(sweep)
    outbox.enqueue_many(session, sweep.rows)
    timeline.write(session, sweep.events)
    _update_tickets(session, sweep.updates)
    sweep.report.examined = len(tickets)
    sweep.report.more = len(tickets) >= batch_size
    return sweep.report


def _process(sweep: _Sweep, ticket: Ticket) -> None:
    report = sweep.report
    if (
        ticket.status not in CLOCK_RUNNING_STATUSES
        or ticket.sla_paused_at is not None
        or ticket.department_id is None
    ):
        sweep.updates.append((ticket, ticket.escalation_level, None))
        report.disarmed += 1
        return
    if ticket.legal_due_at is not None and ticket.legal_due_at <= sweep.now:
        report.legal_overdue += 1
    ladder = sweep.ladder(ticket.department_id)
    upcoming = [
        s
        for s in schedule(ticket, ladder, sweep.clock(ticket))
        if s.step.level > ticket.escalation_level
    ]
    next_at = None
    level = ticket.escalation_level
    for step_time in upcoming:
        if step_time.at > sweep.now:
            next_at = step_time.at
            break
        if step_time.step is Step.REMINDER and sweep.now >= ticket.due_at:
            report.skipped_reminders += 1
            continue
        _take_step(sweep, ticket, ladder, step_time)
        level = step_time.step.level
    sweep.updates.append((ticket, level, next_at))
    if next_at is None:
        report.disarmed += 1
    else:
        report.rearmed += 1


def _payload(sweep: _Sweep, ticket: Ticket, ladder: Ladder, step_time: StepTime) -> dict[str, Any]:
    ticket_type = sweep.types.get(ticket.ticket_type_id)
    department = sweep.units[ladder.department_id]
    unit = sweep.units[step_time.unit_id]
    return {
        "reference_code": ticket.reference_code,
        "ticket_type": ticket_type.name_tr if ticket_type else "",
        "ticket_type_en": ticket_type.name_en if ticket_type else "",
        "department": department.name_tr,
        "department_en": department.name_en,
        "unit": unit.name_tr,
        "unit_en": unit.name_en,
        "step": step_time.step.value,
        "level": step_time.step.level,
        "percent": ladder.policy.reminder_percent,
        "due_at": ticket.due_at.isoformat(),
        "due_at_local": local_text(ticket.due_at),
        "legal_due_at": ticket.legal_due_at.isoformat() if ticket.legal_due_at else None,
        "legal_due_at_local": local_text(ticket.legal_due_at),
    }


def _take_step(sweep: _Sweep, ticket: Ticket, ladder: Ladder, step_time: StepTime) -> None:
    step = step_time.step
    key = f"esc:{ticket.id}:{ticket.sla_cycle}:{step.value}"
    payload = _payload(sweep, ticket, ladder, step_time)
    template = STAFF_TEMPLATES[step]
    policy = ladder.policy
    queued: list[str] = []

    def send(channel: NotificationChannel, recipient: str, person: Recipient) -> None:
        row_key = f"{key}:{person.key}:{channel.value}"
        sweep.rows.append(
            outbox.pending_row(
                sweep.now,
                key=row_key,
                channel=channel,
                recipient=recipient,
                template=template,
                language=person.language,
                payload=payload,
                ticket_id=ticket.id,
            )
        )
        queued.append(row_key)

    recipients = sweep.recipients(step, step_time.unit_id)
    for person in recipients:
        if person.staff_id is not None:
            send(NotificationChannel.CONSOLE, str(person.staff_id), person)
        if policy.notify_email and person.email:
            send(NotificationChannel.EMAIL, person.email, person)
        if policy.notify_sms and person.phone:
            send(NotificationChannel.SMS, person.phone, person)
    note = STEP_NOTES_TR[step].format(percent=policy.reminder_percent)
    if not queued:
        note += " Bildirilecek kimse bulunamadı."
    sweep.events.append(
        timeline.entry(
            ticket.id,
            sweep.actor.id,
            sweep.now,
            TimelineAction.ESCALATED,
            note=note,
            step_key=key,
            step=step.value,
            level=step.level,
            unit=payload["unit"],
            unit_id=step_time.unit_id,
            policy=policy.code,
            recipients=[p.key for p in recipients],
            notifications=queued,
            due_at=payload["due_at"],
            legal_due_at=payload["legal_due_at"],
        )
    )
    sweep.report.steps[step.value] = sweep.report.steps.get(step.value, 0) + 1
    sweep.report.notifications += len(queued)
    if step is Step.SUPERIOR_UNIT:
        sweep.breached.append((ticket, f"{key}:citizen", len(sweep.events)))


def _delay_notices(sweep: _Sweep) -> None:
    """The citizen's delay notice for every ticket that breached in this batch (R3.4).

    The channel rule and timeline entry are those of ``services.ticket_notifications``
    (``reach``, ``notice_entry``): SMS to the citizen's most recently seen mobile number
    unless they refused SMS, else e-mail, else a timeline note that nobody could be told;
    a ticket without a citizen uses the phone or e-mail of its contacts. The batch's
    citizens, phones and contacts are read in one query each; each notice's timeline row
    follows its step's row.
    """
    if not sweep.breached:
        return
    session = sweep.session
    citizen_ids = {t.citizen_id for t, _, _ in sweep.breached if t.citizen_id is not None}
    citizens: dict[int, tuple[bool, str | None]] = {}  # id → (consents to SMS, e-mail)
    mobiles: dict[int, str] = {}
    if citizen_ids:
        citizens = {
            row.id: (row.consent_sms, row.email)
            for row in session.execute(
                select(Citizen.id, Citizen.consent_sms, Citizen.email).where(
                    Citizen.id.in_(citizen_ids)
                )
            )
        }
        for citizen_id, e164 in session.execute(
            select(CitizenPhone.citizen_id, CitizenPhone.e164)
            .where(CitizenPhone.citizen_id.in_(citizen_ids))
            .order_by(CitizenPhone.last_seen_at.desc(), CitizenPhone.id.desc())
        ):
            if citizen_id not in mobiles and is_mobile(e164):
                mobiles[citizen_id] = e164
    anonymous = [t.id for t, _, _ in sweep.breached if t.citizen_id is None]
    contacts: dict[int, tuple[str | None, str | None]] = {}
    if anonymous:
        for ticket_id, phone, email in session.execute(
            select(TicketContact.ticket_id, TicketContact.phone_e164, TicketContact.email)
            .where(TicketContact.ticket_id.in_(anonymous))
            .order_by(TicketContact.id)
        ):
            known_phone, known_email = contacts.get(ticket_id, (None, None))
            if known_phone is None and phone and is_mobile(phone):
                known_phone = phone
            contacts[ticket_id] = (known_phone, known_email or email)
    for ticket, key, position in reversed(sweep.breached):
        citizen = citizens.get(ticket.citizen_id) if ticket.citizen_id is not None else None
        if citizen is not None:
            consents_to_sms, email = citizen
            phone = mobiles.get(ticket.citizen_id or 0) if consents_to_sms else None
        else:
            phone, email = contacts.get(ticket.id, (None, None))
        found = reach(phone, email)
        if found is not None:
            channel, recipient = found
            sweep.rows.append(
                outbox.pending_row(
                    sweep.now,
                    key=key,
                    channel=channel,
                    recipient=recipient,
                    template=CITIZEN_TEMPLATE,
                    language=ticket.language or Language.TR,
                    payload={"reference_code": ticket.reference_code},
                    ticket_id=ticket.id,
                )
            )
            sweep.report.citizen_notices += 1
        entry = notice_entry(
            ticket.id,
            sweep.actor.id,
            sweep.now,
            template=CITIZEN_TEMPLATE,
            key=key,
            channel=found[0] if found is not None else None,
        )
        sweep.events.insert(position, entry)


def _update_tickets(session: Session, updates: list[tuple[Ticket, int, datetime | None]]) -> None:
    """Write each examined ticket's escalation level and next escalation time in one
    statement and keep the loaded objects in step (they are not left dirty)."""
    if not updates:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = [{"id": t.id, "level": level, "next": at} for t, level, at in updates]
        connection.execute(
            text(
                "UPDATE tickets SET escalation_level = r.level, next_escalation_at = r.next "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS r(id integer, level integer, next timestamptz) WHERE tickets.id = r.id"
            ),
            {"rows": rows_json(rows)},
        )
    else:
        tickets = Base.metadata.tables["tickets"]
        connection.execute(
            update(tickets)
            .where(tickets.c.id == bindparam("b_id"))
            .values(
                escalation_level=bindparam("b_level"),
                next_escalation_at=bindparam("b_next", type_=tickets.c.next_escalation_at.type),
            ),
            [{"b_id": t.id, "b_level": level, "b_next": at} for t, level, at in updates],
        )
    for ticket, level, at in updates:
        set_committed_value(ticket, "escalation_level", level)
        set_committed_value(ticket, "next_escalation_at", at)
