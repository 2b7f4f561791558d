"""The SLA clock: pauses while waiting, resumes with due_at moved, restarts on reopening, and
the legal clock runs on regardless (R2.3, R2.6, R3.3; engineering.md §5).

Time travel: every service call gets an explicit ``now``; nothing reads the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Department,
    ExternalInstitution,
    StaffUser,
    Ticket,
    TicketEvent,
    TicketStatus,
    TicketType,
    TimelineAction,
)
from services.calendar_store import get_calendar
from services.intake import open_ticket
from services.sla_clock import clock_status, on_status_change
from services.ticket_workflow import (
    change_status,
    forward_ticket,
    merge_tickets,
    reclassify_ticket,
    refer_externally,
    reopen_ticket,
    resolve_ticket,
)
from tests.factories import IST, at, mobile, request, valid_tc


def local(moment: datetime) -> datetime:
    return moment.astimezone(IST).replace(tzinfo=None)


def _open(session: Session, agent: StaffUser, when: datetime, seed: int, code: str) -> Ticket:
    return open_ticket(
        session,
        agent,
        when,
        request(tc_number=valid_tc(seed), phone=mobile(seed), ticket_type_code=code),
    ).ticket


def _forwarded(session: Session, agent: StaffUser, when: datetime, seed: int, code: str) -> Ticket:
    ticket = _open(session, agent, when, seed, code)
    department = session.get(Department, ticket.department_id)
    assert department is not None
    forward_ticket(session, agent, when, ticket, department)
    return ticket


def _events(session: Session, ticket: Ticket, action: TimelineAction) -> list[TicketEvent]:
    session.flush()
    return list(
        session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
            .order_by(TicketEvent.id)
        )
    )


def test_a_new_ticket_is_armed_for_the_next_sweep(session: Session, agent: StaffUser) -> None:
    opened = at(2026, 11, 24, 10, 0)
    ticket = _open(session, agent, opened, 9101, "yol_bozuklugu")
    session.refresh(ticket)
    assert ticket.next_escalation_at == opened  # the sweep computes the real first step
    assert ticket.sla_paused_at is None
    assert ticket.sla_cycle == 0
    assert ticket.sla_paused_seconds == 0


def test_a_ticket_referred_at_intake_starts_paused(session: Session, agent: StaffUser) -> None:
    opened = at(2026, 11, 24, 10, 0)
    ticket = _open(session, agent, opened, 9102, "su_kacagi")  # SKİ's, not ours (R2.6)
    session.refresh(ticket)
    assert ticket.status is TicketStatus.REFERRED_EXTERNALLY
    assert ticket.sla_paused_at == opened
    assert ticket.next_escalation_at is None


def test_waiting_over_a_weekend_moves_due_by_the_working_time_paused(
    session: Session, agent: StaffUser
) -> None:
    # yol_bozuklugu: 40 working hours. Opened Monday 23 Nov 2026 08:30 → due Friday 17:30.
    ticket = _forwarded(session, agent, at(2026, 11, 23, 8, 30), 9103, "yol_bozuklugu")
    assert local(ticket.due_at) == datetime(2026, 11, 27, 17, 30)
    change_status(session, agent, at(2026, 11, 27, 10, 0), ticket, TicketStatus.WAITING_ON_CITIZEN)
    assert ticket.sla_paused_at == at(2026, 11, 27, 10, 0)
    assert ticket.next_escalation_at is None
    paused = _events(session, ticket, TimelineAction.SLA_PAUSED)
    assert len(paused) == 1
    assert paused[0].data["reason"] == "waiting_on_citizen"
    assert paused[0].note and "vatandaştan bilgi bekleniyor" in paused[0].note

    # Friday 10:00–17:30 is 6.5 working hours (lunch excluded), the weekend counts nothing,
    # Monday 08:30–10:00 is 1.5 h: 8 working hours paused, so due moves by one working day.
    change_status(session, agent, at(2026, 11, 30, 10, 0), ticket, TicketStatus.IN_PROGRESS)
    assert ticket.sla_paused_at is None
    assert ticket.sla_paused_seconds == 8 * 3600
    assert local(ticket.due_at) == datetime(2026, 11, 30, 17, 30)
    resumed = _events(session, ticket, TimelineAction.SLA_RESUMED)
    assert len(resumed) == 1
    assert resumed[0].data["paused_seconds"] == 8 * 3600
    assert ticket.next_escalation_at is not None
    assert ticket.next_escalation_at <= ticket.due_at


def test_a_pause_over_kurban_bayrami_counts_only_the_arife_morning(
    session: Session, agent: StaffUser
) -> None:
    # Monday 25 May 2026 17:00 → Monday 1 June 09:00: 0.5 h on Monday, the arife morning
    # (26 May, 08:30–12:30: 4 h), Kurban Bayramı 27–30 May and Sunday off, 0.5 h on 1 June.
    ticket = _forwarded(session, agent, at(2026, 5, 25, 9, 0), 9104, "yol_bozuklugu")
    due_before = ticket.due_at
    change_status(session, agent, at(2026, 5, 25, 17, 0), ticket, TicketStatus.WAITING_ON_CITIZEN)
    change_status(session, agent, at(2026, 6, 1, 9, 0), ticket, TicketStatus.IN_PROGRESS)
    assert ticket.sla_paused_seconds == 5 * 3600
    calendar = get_calendar(session)
    assert ticket.due_at == calendar.add_working_time(due_before, timedelta(hours=5))


def test_referral_pauses_and_forwarding_back_resumes(session: Session, agent: StaffUser) -> None:
    ticket = _forwarded(session, agent, at(2026, 11, 23, 9, 0), 9105, "yol_bozuklugu")
    due_before = ticket.due_at
    institution = session.scalars(select(ExternalInstitution)).first()
    assert institution is not None
    refer_externally(session, agent, at(2026, 11, 23, 14, 0), ticket, institution)
    assert ticket.sla_paused_at == at(2026, 11, 23, 14, 0)
    assert ticket.next_escalation_at is None
    department = session.scalar(select(Department).where(Department.code == "FEN_ISLERI"))
    assert department is not None
    forward_ticket(session, agent, at(2026, 11, 24, 14, 0), ticket, department)
    assert ticket.sla_paused_seconds == 8 * 3600  # Monday 14:00 → Tuesday 14:00
    assert ticket.due_at == get_calendar(session).add_working_time(due_before, timedelta(hours=8))
    assert ticket.next_escalation_at is not None


def test_calendar_hour_types_pause_in_elapsed_time(session: Session, agent: StaffUser) -> None:
    # cenaze_hizmetleri: 4 calendar hours; a Saturday pause counts every hour.
    ticket = _forwarded(session, agent, at(2026, 11, 28, 9, 0), 9106, "cenaze_hizmetleri")
    due_before = ticket.due_at
    change_status(session, agent, at(2026, 11, 28, 10, 0), ticket, TicketStatus.WAITING_ON_CITIZEN)
    change_status(session, agent, at(2026, 11, 28, 12, 30), ticket, TicketStatus.IN_PROGRESS)
    assert ticket.sla_paused_seconds == int(2.5 * 3600)
    assert ticket.due_at == due_before + timedelta(hours=2.5)


def test_the_legal_clock_does_not_pause(session: Session, agent: StaffUser) -> None:
    # Right to information (Law 4982): 15 working days whatever we wait for.
    ticket = _forwarded(session, agent, at(2026, 11, 23, 9, 0), 9107, "bilgi_edinme_hakki")
    legal = ticket.legal_due_at
    assert legal is not None
    change_status(session, agent, at(2026, 11, 23, 10, 0), ticket, TicketStatus.WAITING_ON_CITIZEN)
    # While paused past the legal deadline: the SLA clock waits, the legal one does not.
    late = legal + timedelta(days=1)
    status = clock_status(session, ticket, late)
    assert not status.running
    assert status.paused_since == at(2026, 11, 23, 10, 0)
    assert status.legal_due_at == legal
    assert status.legal_breached
    assert status.due_at == legal  # resuming now would not promise later than the law
    change_status(session, agent, late, ticket, TicketStatus.IN_PROGRESS)
    assert ticket.legal_due_at == legal
    assert ticket.due_at == legal


def test_clock_status_while_running(session: Session, agent: StaffUser) -> None:
    ticket = _forwarded(session, agent, at(2026, 11, 23, 8, 30), 9108, "yol_bozuklugu")
    status = clock_status(session, ticket, at(2026, 11, 24, 8, 30))
    assert status.running and not status.breached
    assert status.remaining == timedelta(hours=32)
    assert status.overdue == timedelta(0)
    late = clock_status(session, ticket, at(2026, 11, 30, 9, 30))
    assert late.breached and late.remaining == timedelta(0)
    assert late.overdue == timedelta(hours=1)


def test_reopening_starts_a_fresh_clock(session: Session, agent: StaffUser) -> None:
    ticket = _forwarded(session, agent, at(2026, 11, 23, 9, 0), 9109, "yol_bozuklugu")
    change_status(session, agent, at(2026, 11, 23, 10, 0), ticket, TicketStatus.WAITING_ON_CITIZEN)
    resolve_ticket(session, agent, at(2026, 11, 24, 10, 0), ticket, "Yol onarıldı.")
    assert ticket.next_escalation_at is None
    assert ticket.sla_paused_at is None  # the pause ended with the resolution
    ticket.escalation_level = 2  # as if the ladder had been climbed before
    reopened_at = at(2026, 12, 7, 11, 0)
    reopen_ticket(session, agent, reopened_at, ticket, "Çukur yeniden açıldı.")
    assert ticket.sla_cycle == 1
    assert ticket.sla_started_at == reopened_at
    assert ticket.sla_paused_seconds == 0
    assert ticket.escalation_level == 0
    assert ticket.due_at == get_calendar(session).add_working_time(reopened_at, timedelta(hours=40))
    assert ticket.next_escalation_at is not None
    assert reopened_at < ticket.next_escalation_at < ticket.due_at


def test_closed_and_merged_tickets_leave_the_sweep_index(
    session: Session, agent: StaffUser
) -> None:
    first = _forwarded(session, agent, at(2026, 11, 23, 9, 0), 9110, "yol_bozuklugu")
    second = _forwarded(session, agent, at(2026, 11, 23, 9, 5), 9111, "park_bakimi")
    assert first.next_escalation_at is not None and second.next_escalation_at is not None
    merge_tickets(session, agent, at(2026, 11, 23, 9, 10), second, first)
    assert second.next_escalation_at is None
    resolve_ticket(session, agent, at(2026, 11, 23, 9, 20), first, "Tamam.")
    assert first.next_escalation_at is None


def test_reclassification_keeps_the_paused_time(session: Session, agent: StaffUser) -> None:
    ticket = _forwarded(session, agent, at(2026, 11, 23, 9, 0), 9112, "genel")
    change_status(session, agent, at(2026, 11, 23, 10, 0), ticket, TicketStatus.WAITING_ON_CITIZEN)
    change_status(session, agent, at(2026, 11, 24, 10, 0), ticket, TicketStatus.IN_PROGRESS)
    assert ticket.sla_paused_seconds == 8 * 3600
    road = session.scalar(select(TicketType).where(TicketType.code == "yol_bozuklugu"))
    assert road is not None
    reclassify_ticket(session, agent, at(2026, 11, 24, 11, 0), ticket, road)
    calendar = get_calendar(session)
    expected = calendar.add_working_time(at(2026, 11, 23, 9, 0), timedelta(hours=48))
    assert ticket.due_at == expected  # 40 h from receipt + the 8 h it waited
    assert ticket.next_escalation_at is not None


# Pause/resume sequences: offsets in minutes from the opening, alternating pause, resume.
_SEQUENCES = st.lists(st.integers(min_value=1, max_value=60 * 24 * 12), min_size=1, max_size=6)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(offsets=_SEQUENCES)
def test_pausing_never_moves_due_earlier_and_adds_exactly_the_paused_time(
    session: Session, agent: StaffUser, offsets: list[int]
) -> None:
    opened = at(2026, 5, 18, 9, 0)  # the week before Kurban Bayramı, 19 May a holiday
    nested = session.begin_nested()
    try:
        ticket = _forwarded(session, agent, opened, 9150, "yol_bozuklugu")
        calendar = get_calendar(session)
        original_due = ticket.due_at
        moments = sorted({opened + timedelta(minutes=m) for m in offsets})
        expected_paused = timedelta(0)
        previous_due = ticket.due_at
        for index, moment in enumerate(moments):
            if index % 2 == 0:
                target = TicketStatus.WAITING_ON_CITIZEN
                pause_start = moment
            else:
                target = TicketStatus.IN_PROGRESS
                expected_paused += timedelta(
                    seconds=int(calendar.working_time_between(pause_start, moment).total_seconds())
                )
            previous = ticket.status
            ticket.status = target
            on_status_change(session, agent, moment, ticket, previous, target)
            assert ticket.due_at >= previous_due
            previous_due = ticket.due_at
        assert ticket.sla_paused_seconds == int(expected_paused.total_seconds())
        assert ticket.due_at == calendar.add_working_time(original_due, expected_paused)
    finally:
        nested.rollback()
