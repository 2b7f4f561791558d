"""The citizen's 360° history as staff see it on a screen pop or a search (R2.4, R4.3, R6.1).

Read-only: :func:`citizen_history` returns plain values (no ORM objects) with Turkish and
English names side by side, so a screen can render either language. The TC number is only
ever returned masked; the full number goes through :func:`services.personal_data.reveal_tc`
(reason + audit). Opening a record is audited by :func:`services.personal_data.open_citizen`,
which is what the console calls.

Cost: a fixed number of indexed reads per citizen (card, phones, household, tickets by
``citizen_id``, calls by ``citizen_id``, survey answers by ``citizen_id``), whatever the size
of the tables; lists are capped (:data:`OPEN_LIMIT`, :data:`PAST_LIMIT`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, contains_eager

from models import (
    OPEN_STATUSES,
    CallOutcome,
    CallRecord,
    Citizen,
    CitizenPhone,
    Household,
    Neighbourhood,
    PhoneType,
    StaffUser,
    SurveyAnswer,
    SurveyQuestion,
    Ticket,
    TicketStatus,
)
from services.errors import UnknownEntity
from services.sla_clock import clock_status

OPEN_LIMIT = 50
PAST_LIMIT = 20
CALL_LIMIT = 20
SURVEY_LIMIT = 30
MEMBER_LIMIT = 12


def mask_tc(tc_number: str | None) -> str | None:
    """``12345678901`` -> ``12*******01``: enough to confirm with the caller, not to copy."""
    if not tc_number:
        return None
    return tc_number[:2] + "*" * (len(tc_number) - 4) + tc_number[-2:]


def display_phone(e164: str) -> str:
    """A phone as people write it: ``+905321234567`` -> ``0532 123 45 67`` (foreign numbers
    in international form)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if parsed.country_code == 90:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@dataclass(frozen=True)
class PhoneLine:
    e164: str
    display: str
    phone_type: PhoneType


@dataclass(frozen=True)
class Member:
    citizen_id: int
    name: str


@dataclass(frozen=True)
class CitizenCard:
    citizen_id: int
    name: str  # "" when the citizen is known by phone only
    tc_masked: str | None
    phones: tuple[PhoneLine, ...]
    email: str | None
    address: str | None
    neighbourhood: str | None
    household: tuple[Member, ...]  # the other people of the household
    language: str
    special_groups: tuple[str, ...]
    consent_sms: bool
    do_not_call: bool


@dataclass(frozen=True)
class TicketLine:
    ticket_id: int
    reference_code: str | None
    type_tr: str
    type_en: str
    status: TicketStatus
    channel: str
    department_tr: str | None
    department_en: str | None
    received_at: datetime
    due_at: datetime  # the SLA deadline as it stands now (a running pause counted)
    resolved_at: datetime | None
    first_contact: bool
    is_open: bool
    clock_running: bool
    breached: bool
    remaining: timedelta  # SLA clock time left (zero once breached)
    overdue: timedelta  # SLA clock time past the deadline
    merged_into: str | None  # reference of the ticket it was merged into


@dataclass(frozen=True)
class CallLine:
    call_id: str
    started_at: datetime
    answered_at: datetime | None
    outcome: CallOutcome
    queue: str | None
    agent_name: str | None
    wait_seconds: int | None
    talk_seconds: int | None
    has_recording: bool
    reference_code: str | None


@dataclass(frozen=True)
class SurveyLine:
    answered_at: datetime
    question_tr: str
    question_en: str
    answer: int
    max_answer: int
    reference_code: str | None


@dataclass(frozen=True)
class CitizenHistory:
    card: CitizenCard
    open_tickets: tuple[TicketLine, ...]
    past_tickets: tuple[TicketLine, ...]
    calls: tuple[CallLine, ...]
    surveys: tuple[SurveyLine, ...]

    @property
    def survey_average(self) -> float | None:
        """Mean of the answers scaled to 0–1 (questions may use different scales)."""
        scaled = [s.answer / s.max_answer for s in self.surveys if s.max_answer]
        return sum(scaled) / len(scaled) if scaled else None


def citizen_card(session: Session, citizen_id: int) -> CitizenCard:
    """The citizen's card; :class:`UnknownEntity` when there is no such citizen."""
    row = session.execute(
        select(Citizen, Household, Neighbourhood.name)
        .outerjoin(Household, Household.id == Citizen.household_id)
        .outerjoin(Neighbourhood, Neighbourhood.id == Household.neighbourhood_id)
        .where(Citizen.id == citizen_id)
    ).first()
    if row is None:
        raise UnknownEntity("Vatandaş kaydı bulunamadı.", "No such citizen.", id=citizen_id)
    citizen, household, neighbourhood = row
    phones = tuple(
        PhoneLine(p.e164, display_phone(p.e164), p.phone_type)
        for p in session.scalars(
            select(CitizenPhone)
            .where(CitizenPhone.citizen_id == citizen_id)
            .order_by(CitizenPhone.id)
        )
    )
    members: tuple[Member, ...] = ()
    if citizen.household_id is not None:
        members = tuple(
            Member(m_id, " ".join(p for p in (first, last) if p))
            for m_id, first, last in session.execute(
                select(Citizen.id, Citizen.first_name, Citizen.last_name)
                .where(Citizen.household_id == citizen.household_id, Citizen.id != citizen_id)
                .order_by(Citizen.id)
                .limit(MEMBER_LIMIT)
            )
        )
    return CitizenCard(
        citizen_id=citizen.id,
        name=citizen.display_name,
        tc_masked=mask_tc(citizen.tc_number),
        phones=phones,
        email=citizen.email,
        address=household.address_text if household is not None else None,
        neighbourhood=neighbourhood,
        household=members,
        language=citizen.preferred_language.value,
        special_groups=tuple(g for g in citizen.special_groups or [] if isinstance(g, str)),
        consent_sms=citizen.consent_sms,
        do_not_call=citizen.do_not_call,
    )


def ticket_lines(session: Session, now: datetime, tickets: list[Ticket]) -> tuple[TicketLine, ...]:
    """Screen lines for ``tickets`` (type, department and types loaded by the caller or
    lazily), with the SLA clock at ``now`` for the open ones."""
    merged_ids = {t.merged_into_id for t in tickets if t.merged_into_id is not None}
    merged_codes: dict[int, str | None] = {}
    if merged_ids:
        rows = session.execute(
            select(Ticket.id, Ticket.reference_code).where(Ticket.id.in_(merged_ids))
        )
        merged_codes = {ticket_id: code for ticket_id, code in rows}
    lines = []
    for t in tickets:
        is_open = t.status in OPEN_STATUSES
        status = clock_status(session, t, now) if is_open else None
        lines.append(
            TicketLine(
                ticket_id=t.id,
                reference_code=t.reference_code,
                type_tr=t.ticket_type.name_tr,
                type_en=t.ticket_type.name_en,
                status=t.status,
                channel=t.channel.value,
                department_tr=t.department.name_tr if t.department else None,
                department_en=t.department.name_en if t.department else None,
                received_at=t.received_at,
                due_at=status.due_at if status else t.due_at,
                resolved_at=t.resolved_at,
                first_contact=t.resolved_at_first_contact,
                is_open=is_open,
                clock_running=bool(status and status.running and status.paused_since is None),
                breached=bool(status and status.breached),
                remaining=status.remaining if status else timedelta(0),
                overdue=status.overdue if status else timedelta(0),
                merged_into=merged_codes.get(t.merged_into_id) if t.merged_into_id else None,
            )
        )
    return tuple(lines)


def _tickets(session: Session, citizen_id: int, *, is_open: bool, limit: int) -> list[Ticket]:
    condition = Ticket.status.in_(OPEN_STATUSES) if is_open else Ticket.status.not_in(OPEN_STATUSES)
    # The joined type and department fill the tickets' relationships (held by the tickets,
    # so neither the lines nor the SLA clocks load them again one ticket at a time).
    return list(
        session.scalars(
            select(Ticket)
            .join(Ticket.ticket_type)
            .outerjoin(Ticket.department)
            .options(contains_eager(Ticket.ticket_type), contains_eager(Ticket.department))
            .where(Ticket.citizen_id == citizen_id, condition)
            .order_by(Ticket.received_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
    )


def call_lines(session: Session, citizen_id: int, limit: int = CALL_LIMIT) -> tuple[CallLine, ...]:
    """The citizen's latest calls, newest first."""
    agent = aliased(StaffUser)
    rows = session.execute(
        select(CallRecord, agent.full_name, Ticket.reference_code)
        .outerjoin(agent, agent.id == CallRecord.agent_id)
        .outerjoin(Ticket, Ticket.id == CallRecord.ticket_id)
        .where(CallRecord.citizen_id == citizen_id)
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(limit)
    )
    return tuple(
        CallLine(
            call_id=r.call_id,
            started_at=r.started_at,
            answered_at=r.answered_at,
            outcome=r.outcome,
            queue=r.queue,
            agent_name=agent_name,
            wait_seconds=r.wait_seconds,
            talk_seconds=r.talk_seconds,
            has_recording=bool(r.recording_path),
            reference_code=code,
        )
        for r, agent_name, code in rows
    )


def survey_lines(
    session: Session, citizen_id: int, limit: int = SURVEY_LIMIT
) -> tuple[SurveyLine, ...]:
    """The citizen's satisfaction-survey answers (R5.2), newest first."""
    rows = session.execute(
        select(SurveyAnswer, SurveyQuestion, Ticket.reference_code)
        .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
        .outerjoin(Ticket, Ticket.id == SurveyAnswer.ticket_id)
        .where(SurveyAnswer.citizen_id == citizen_id)
        .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
        .limit(limit)
    )
    return tuple(
        SurveyLine(a.answered_at, q.text_tr, q.text_en, a.answer, q.max_answer, code)
        for a, q, code in rows
    )


def citizen_history(session: Session, now: datetime, citizen_id: int) -> CitizenHistory:
    """Card, open tickets (with their SLA clock at ``now``), past tickets, calls and survey
    scores of citizen ``citizen_id``. Reads only; :class:`UnknownEntity` for no citizen."""
    card = citizen_card(session, citizen_id)
    return CitizenHistory(
        card=card,
        open_tickets=ticket_lines(
            session, now, _tickets(session, citizen_id, is_open=True, limit=OPEN_LIMIT)
        ),
        past_tickets=ticket_lines(
            session, now, _tickets(session, citizen_id, is_open=False, limit=PAST_LIMIT)
        ),
        calls=call_lines(session, citizen_id),
        surveys=survey_lines(session, citizen_id),
    )
