"""The escalation sweep: reminder at 80 %, breach, deputy mayor, mayor — each step once, on
the Turkish working calendar (R3.3, R3.4; issue 5).

Time travel: the sweep runs at explicit ``now`` values across a weekend, a public holiday
(19 May) and Kurban Bayramı 2026 with its half-day arife (26 May morning; 27–30 May off).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.migrate import upgrade
from models import (
    Channel,
    Department,
    EscalationPolicy,
    Language,
    Notification,
    NotificationChannel,
    StaffUser,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    TicketType,
    TimelineAction,
)
from services.actors import system_actor
from services.calendar_store import get_calendar
from services.escalation import local_text, run_sweep
from services.intake import open_ticket
from services.message_templates import render
from services.sla import deadlines_for
from services.ticket_workflow import change_status, forward_ticket, resolve_ticket
from tests.factories import add_citizen, at, mobile, mobile_e164, request, valid_tc

CONTEXT = {"municipality": "Açık Kapı Belediyesi", "call_centre": "444 80 07"}


@pytest.fixture(autouse=True)
def only_this_tests_tickets(request: pytest.FixtureRequest) -> None:
    """The sweeps of a test see its own tickets only. Other tests may have committed open
    tickets to the shared database: they are taken out of the sweep's index inside this
    test's (rolled back) transaction. On PostgreSQL that transaction reads one snapshot
    (REPEATABLE READ), so tickets committed while the test runs (another test's threads)
    never enter it either; on SQLite the test's write transaction keeps them out."""
    if "session" not in request.fixturenames:
        return
    session: Session = request.getfixturevalue("session")
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        assert isinstance(bind, Connection)
        # Must be the transaction's first statement (this fixture runs before any other).
        bind.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    session.execute(
        update(Ticket).where(Ticket.next_escalation_at.is_not(None)).values(next_escalation_at=None)
    )


def _open(
    session: Session,
    agent: StaffUser,
    when: datetime,
    seed: int,
    code: str,
    language: Language = Language.TR,
) -> Ticket:
    ticket = open_ticket(
        session,
        agent,
        when,
        request(
            tc_number=valid_tc(seed), phone=mobile(seed), ticket_type_code=code, language=language
        ),
    ).ticket
    department = session.get(Department, ticket.department_id)
    assert department is not None
    forward_ticket(session, agent, when, ticket, department)
    session.flush()
    return ticket


def _staff(session: Session, username: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    assert user is not None
    return user


def _escalations(session: Session, ticket: Ticket) -> list[TicketEvent]:
    session.flush()
    return list(
        session.scalars(
            select(TicketEvent)
            .where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.action == TimelineAction.ESCALATED
            )
            .order_by(TicketEvent.id)
        )
    )


def _step_rows(session: Session, ticket: Ticket, step: str) -> list[Notification]:
    """The staff notifications of one step (the citizen's delay notice left out)."""
    session.flush()
    return list(
        session.scalars(
            select(Notification)
            .where(
                Notification.idempotency_key.like(f"esc:{ticket.id}:%:{step}:%"),
                Notification.idempotency_key.not_like("%:citizen"),
            )
            .order_by(Notification.idempotency_key)
        )
    )


def _console_recipients(rows: list[Notification]) -> set[int]:
    return {int(n.recipient) for n in rows if n.channel is NotificationChannel.CONSOLE}


def test_the_ladder_climbs_in_order_across_a_holiday_a_weekend_and_kurban_bayrami(
    session: Session, agent: StaffUser
) -> None:
    # yol_bozuklugu (Fen İşleri, default policy: reminder 80 %, superior unit at the breach,
    # deputy mayor +8 h, mayor +16 h), 40 working hours. Opened Monday 18 May 2026 08:30:
    # Mon 18 (8 h), Tue 19 May holiday, Wed 20, Thu 21, Fri 22, Mon 25 → due Mon 25 17:30.
    ticket = _open(session, agent, at(2026, 5, 18, 8, 30), 9201, "yol_bozuklugu")
    assert ticket.due_at == at(2026, 5, 25, 17, 30)

    # Forwarding armed it: 80 % of 40 h = 32 h, the end of Friday 22 May.
    assert ticket.next_escalation_at == at(2026, 5, 22, 17, 30)
    assert run_sweep(session, at(2026, 5, 18, 9, 0)).examined == 0

    assert run_sweep(session, at(2026, 5, 22, 17, 29)).examined == 0
    reminder = run_sweep(session, at(2026, 5, 22, 17, 30))
    assert reminder.steps == {"reminder": 1}
    assert ticket.escalation_level == 1
    assert ticket.next_escalation_at == ticket.due_at
    fen = session.scalar(select(Department).where(Department.code == "FEN_ISLERI"))
    assert fen is not None and fen.primary_liaison_id and fen.backup_liaison_id
    rows = _step_rows(session, ticket, "reminder")
    assert _console_recipients(rows) == {fen.primary_liaison_id, fen.backup_liaison_id}
    assert {n.channel for n in rows} == {
        NotificationChannel.CONSOLE,
        NotificationChannel.EMAIL,
        NotificationChannel.SMS,
    }
    assert len(rows) == 6  # two liaisons × console, e-mail, SMS

    # Weekend: nothing moves.
    assert run_sweep(session, at(2026, 5, 24, 12, 0)).examined == 0

    breach = run_sweep(session, at(2026, 5, 25, 17, 30))
    assert breach.steps == {"superior_unit": 1}
    assert breach.citizen_notices == 1
    assert ticket.escalation_level == 2
    chief = _staff(session, "emre.aslan")  # Fen İşleri's unit chief: its amirlik
    superior = _step_rows(session, ticket, "superior_unit")
    assert _console_recipients(superior) == {
        chief.id,
        fen.primary_liaison_id,
        fen.backup_liaison_id,
    }
    # Deputy mayor +8 working hours: the arife morning (4 h), Kurban Bayramı 27–30 May and
    # Sunday off, then Monday 1 June 08:30–12:30 (4 h).
    assert ticket.next_escalation_at == at(2026, 6, 1, 12, 30)

    assert run_sweep(session, at(2026, 5, 28, 12, 0)).examined == 0  # bayram
    deputy = run_sweep(session, at(2026, 6, 1, 12, 30))
    assert deputy.steps == {"deputy_mayor": 1}
    deputy_office = _staff(session, "kemal.tuna")
    assert _console_recipients(_step_rows(session, ticket, "deputy_mayor")) == {deputy_office.id}
    # Mayor +16 h: Monday afternoon (4 h) and Tuesday morning (4 h) after the deputy.
    assert ticket.next_escalation_at == at(2026, 6, 2, 12, 30)

    mayor = run_sweep(session, at(2026, 6, 2, 12, 30))
    assert mayor.steps == {"mayor": 1}
    assert ticket.escalation_level == 4
    assert ticket.next_escalation_at is None
    mayors_office = _staff(session, "seda.unal")
    assert mayors_office.id in _console_recipients(_step_rows(session, ticket, "mayor"))

    assert run_sweep(session, at(2026, 6, 30, 12, 0)).examined == 0
    steps = _escalations(session, ticket)
    assert [e.data["step"] for e in steps] == [
        "reminder",
        "superior_unit",
        "deputy_mayor",
        "mayor",
    ]
    assert [e.step_key for e in steps] == [
        f"esc:{ticket.id}:0:{s}" for s in ("reminder", "superior_unit", "deputy_mayor", "mayor")
    ]
    assert [e.at for e in steps] == [
        at(2026, 5, 22, 17, 30),
        at(2026, 5, 25, 17, 30),
        at(2026, 6, 1, 12, 30),
        at(2026, 6, 2, 12, 30),
    ]


def test_the_citizen_gets_one_delay_notice_in_their_language(
    session: Session, agent: StaffUser
) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9202, "yol_bozuklugu", Language.EN)
    run_sweep(session, ticket.due_at)
    run_sweep(session, ticket.due_at + timedelta(days=30))
    session.flush()
    notices = list(
        session.scalars(
            select(Notification).where(
                Notification.ticket_id == ticket.id, Notification.template == "sla_delay_notice"
            )
        )
    )
    assert len(notices) == 1
    notice = notices[0]
    assert notice.channel is NotificationChannel.SMS
    assert notice.recipient == mobile_e164(9202)
    assert notice.language is Language.EN
    assert notice.idempotency_key == f"esc:{ticket.id}:0:superior_unit:citizen"
    text = render("sla_delay_notice", notice.language.value, {**CONTEXT, **notice.payload})
    assert ticket.reference_code is not None and ticket.reference_code in text
    assert "escalated" in text


def _delay_notices(session: Session, ticket: Ticket) -> list[Notification]:
    session.flush()
    return list(
        session.scalars(
            select(Notification).where(
                Notification.ticket_id == ticket.id, Notification.template == "sla_delay_notice"
            )
        )
    )


def test_a_shared_landline_caller_gets_the_notice_on_the_number_they_called_from(
    session: Session, agent: StaffUser
) -> None:
    # A mobile held by two citizens identifies nobody: the ticket has no citizen, but its
    # contact has the number, and that is where the delay notice goes.
    shared = mobile_e164(9230)
    add_citizen(session, at(2026, 1, 5, 9, 0), shared, first_name="Ali", last_name="Demir")
    add_citizen(session, at(2026, 1, 5, 9, 0), shared, first_name="Ayşe", last_name="Demir")
    ticket = open_ticket(
        session,
        agent,
        at(2026, 11, 23, 8, 30),
        request(Channel.PHONE, phone=mobile(9230), ticket_type_code="yol_bozuklugu"),
    ).ticket
    assert ticket.citizen_id is None
    department = session.get(Department, ticket.department_id)
    assert department is not None
    forward_ticket(session, agent, at(2026, 11, 23, 8, 30), ticket, department)
    run_sweep(session, ticket.due_at)
    notices = _delay_notices(session, ticket)
    assert [(n.channel, n.recipient) for n in notices] == [(NotificationChannel.SMS, shared)]


def test_a_citizen_nobody_can_reach_is_noted_on_the_timeline(
    session: Session, agent: StaffUser
) -> None:
    # An anonymous call (no number, no identity): no delay notice, and the timeline says so.
    ticket = open_ticket(
        session,
        agent,
        at(2026, 11, 23, 8, 30),
        request(
            Channel.PHONE,
            ticket_type_code="yol_bozuklugu",
            first_name=None,
            last_name=None,
            social_handle=None,
        ),
    ).ticket
    assert ticket.citizen_id is None
    department = session.get(Department, ticket.department_id)
    assert department is not None
    forward_ticket(session, agent, at(2026, 11, 23, 8, 30), ticket, department)
    report = run_sweep(session, ticket.due_at)
    assert report.steps == {"superior_unit": 1} and report.citizen_notices == 0
    assert _delay_notices(session, ticket) == []
    session.flush()
    notes = list(
        session.scalars(
            select(TicketEvent.data).where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == TimelineAction.NOTE,
                TicketEvent.at == ticket.due_at,
            )
        )
    )
    assert notes == [{"template": "sla_delay_notice"}]


def test_a_department_policy_sets_its_own_percent_and_delays(
    session: Session, agent: StaffUser
) -> None:
    # cop_toplanmadi: Temizlik İşleri, 8 working hours, policy hizli_hizmet (75 %, +4 h, +8 h).
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9203, "cop_toplanmadi")
    assert ticket.due_at == at(2026, 11, 23, 17, 30)
    run_sweep(session, at(2026, 11, 23, 8, 31))
    assert ticket.next_escalation_at == at(2026, 11, 23, 15, 30)  # 6 h = 75 % of 8 h
    assert run_sweep(session, at(2026, 11, 23, 15, 30)).steps == {"reminder": 1}
    assert run_sweep(session, at(2026, 11, 23, 17, 30)).steps == {"superior_unit": 1}
    assert ticket.next_escalation_at == at(2026, 11, 24, 12, 30)  # +4 working hours
    assert run_sweep(session, at(2026, 11, 24, 12, 30)).steps == {"deputy_mayor": 1}
    assert ticket.next_escalation_at == at(2026, 11, 24, 17, 30)  # +8 working hours
    assert run_sweep(session, at(2026, 11, 24, 17, 30)).steps == {"mayor": 1}
    assert ticket.next_escalation_at is None


def test_calendar_hour_types_escalate_over_the_weekend(session: Session, agent: StaffUser) -> None:
    # cenaze_hizmetleri: Destek Hizmetleri, 4 calendar hours, policy hizli_hizmet. A funeral
    # reported on Saturday 28 Nov 2026 09:00 does not wait for Monday.
    ticket = _open(session, agent, at(2026, 11, 28, 9, 0), 9213, "cenaze_hizmetleri")
    assert ticket.due_at == at(2026, 11, 28, 13, 0)
    assert ticket.next_escalation_at == at(2026, 11, 28, 12, 0)  # 75 % of 4 h
    moments = [at(2026, 11, 28, 12, 0), at(2026, 11, 28, 13, 0)]
    moments += [at(2026, 11, 28, 17, 0), at(2026, 11, 28, 21, 0)]  # +4 h, +8 h elapsed
    for moment in moments:
        assert run_sweep(session, moment).total_steps == 1
    assert [e.at for e in _escalations(session, ticket)] == moments
    assert ticket.next_escalation_at is None


def test_a_policy_edited_in_the_database_is_used(session: Session, agent: StaffUser) -> None:
    default = session.scalar(select(EscalationPolicy).where(EscalationPolicy.code == "default"))
    assert default is not None
    default.reminder_percent = 50
    default.deputy_mayor_after_hours = None  # no deputy-mayor rung
    session.flush()
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9204, "yol_bozuklugu")
    run_sweep(session, at(2026, 11, 23, 8, 31))
    assert ticket.next_escalation_at == at(2026, 11, 25, 12, 30)  # 20 of 40 working hours
    run_sweep(session, ticket.due_at + timedelta(days=10))
    assert [e.data["step"] for e in _escalations(session, ticket)] == ["superior_unit", "mayor"]


def test_an_office_under_the_mayor_skips_the_deputy_rung(
    session: Session, agent: StaffUser
) -> None:
    # genel: Açık Kapı (an office directly under the mayor), 8 working hours.
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9205, "genel")
    run_sweep(session, ticket.due_at)
    supervisor = _staff(session, "merve.ozdemir")
    chief = _staff(session, "mehmet.yildiz")
    assert _console_recipients(_step_rows(session, ticket, "superior_unit")) == {
        supervisor.id,
        chief.id,
    }
    assert ticket.next_escalation_at == get_calendar(session).add_working_time(
        ticket.due_at, timedelta(hours=16)
    )
    run_sweep(session, ticket.next_escalation_at)
    assert [e.data["step"] for e in _escalations(session, ticket)] == ["superior_unit", "mayor"]


def test_a_unit_without_a_chief_is_told_through_its_mailbox(
    session: Session, agent: StaffUser
) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9206, "park_bakimi")
    run_sweep(session, ticket.due_at)
    park = session.scalar(select(Department).where(Department.code == "PARK_BAHCELER"))
    assert park is not None and park.email
    rows = _step_rows(session, ticket, "superior_unit")
    mailbox = [n for n in rows if n.idempotency_key.endswith(f":unit{park.id}:email")]
    assert [n.recipient for n in mailbox] == [park.email]


def test_a_late_first_look_takes_every_due_step_in_order_and_skips_the_reminder(
    session: Session, agent: StaffUser
) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9207, "yol_bozuklugu")
    report = run_sweep(session, at(2026, 12, 31, 12, 0))  # the sweep was down for weeks
    assert report.skipped_reminders == 1
    assert report.steps == {"superior_unit": 1, "deputy_mayor": 1, "mayor": 1}
    assert ticket.escalation_level == 4
    assert [e.data["step"] for e in _escalations(session, ticket)] == [
        "superior_unit",
        "deputy_mayor",
        "mayor",
    ]


def test_running_the_sweep_twice_at_the_same_moment_does_nothing_the_second_time(
    session: Session, agent: StaffUser
) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9208, "yol_bozuklugu")
    moment = ticket.due_at
    first = run_sweep(session, moment)
    rows = session.scalar(select(func.count()).select_from(Notification))
    events = session.scalar(select(func.count()).select_from(TicketEvent))
    second = run_sweep(session, moment)
    assert first.total_steps == 1 and first.examined == 1
    assert second.examined == 0 and second.total_steps == 0
    assert session.scalar(select(func.count()).select_from(Notification)) == rows
    assert session.scalar(select(func.count()).select_from(TicketEvent)) == events


def test_a_step_cannot_be_recorded_twice(session: Session, agent: StaffUser) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9209, "yol_bozuklugu")
    run_sweep(session, ticket.due_at)
    assert ticket.escalation_level == 2
    # A stale read (or a bug) that lowers the level cannot make the step happen again: the
    # step's timeline key is unique, so the whole attempt fails and nothing is sent twice.
    savepoint = session.begin_nested()
    ticket.escalation_level = 1
    ticket.next_escalation_at = ticket.due_at
    with pytest.raises(IntegrityError):
        run_sweep(session, ticket.due_at)
    savepoint.rollback()
    assert len(_escalations(session, ticket)) == 1


def test_a_paused_ticket_is_not_escalated_and_its_due_date_moves(
    session: Session, agent: StaffUser
) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9210, "yol_bozuklugu")
    due = ticket.due_at  # Friday 27 Nov 17:30
    change_status(session, agent, at(2026, 11, 24, 8, 30), ticket, TicketStatus.WAITING_ON_CITIZEN)
    report = run_sweep(session, due + timedelta(days=10))
    assert report.examined == 0
    assert _escalations(session, ticket) == []
    # Resumed Monday 7 Dec 08:30: 9 working days paused, so due moves to 10 Dec 17:30.
    change_status(session, agent, at(2026, 12, 7, 8, 30), ticket, TicketStatus.IN_PROGRESS)
    assert ticket.due_at == at(2026, 12, 10, 17, 30)
    assert run_sweep(session, at(2026, 12, 10, 17, 29)).total_steps == 1  # the 80 % reminder
    assert ticket.escalation_level == 1
    assert run_sweep(session, at(2026, 12, 10, 17, 30)).steps == {"superior_unit": 1}


def test_resolved_tickets_are_never_escalated(session: Session, agent: StaffUser) -> None:
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9211, "yol_bozuklugu")
    resolve_ticket(session, agent, at(2026, 11, 24, 9, 0), ticket, "Onarıldı.")
    assert ticket.next_escalation_at is None
    assert run_sweep(session, ticket.due_at + timedelta(days=30)).examined == 0
    # Even a stale index entry is only cleared, never acted on.
    ticket.next_escalation_at = ticket.due_at
    report = run_sweep(session, ticket.due_at + timedelta(days=30))
    assert report.examined == 1 and report.disarmed == 1 and report.total_steps == 0
    assert ticket.next_escalation_at is None
    assert _escalations(session, ticket) == []


def test_the_legal_deadline_is_reported_with_every_step(session: Session, agent: StaffUser) -> None:
    # Right to information (Law 4982): 80 working hours internal, 15 working days legal.
    ticket = _open(session, agent, at(2026, 11, 23, 8, 30), 9212, "bilgi_edinme_hakki")
    legal = ticket.legal_due_at
    assert legal is not None and ticket.due_at <= legal
    report = run_sweep(session, legal + timedelta(hours=1))
    assert report.legal_overdue == 1
    for event in _escalations(session, ticket):
        assert event.data["legal_due_at"] == legal.isoformat()
    rows = _step_rows(session, ticket, "superior_unit")
    assert rows
    for row in rows:
        assert row.payload["legal_due_at_local"] == local_text(legal)
        text = render(row.template, row.language.value, {**CONTEXT, **row.payload})
        assert local_text(legal) in text
        assert ticket.reference_code is not None and ticket.reference_code in text


def test_the_sweep_reports_more_when_the_batch_is_full(session: Session, agent: StaffUser) -> None:
    tickets = [
        _open(session, agent, at(2026, 11, 23, 8, 30), 9220 + i, "yol_bozuklugu") for i in range(3)
    ]
    due = tickets[0].due_at
    first = run_sweep(session, due, batch_size=2)
    assert first.examined == 2 and first.more
    second = run_sweep(session, due, batch_size=2)
    assert second.examined == 1 and not second.more
    assert all(t.escalation_level == 2 for t in tickets)


def test_the_sweep_query_uses_the_partial_index(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("plan check on PostgreSQL")
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        row[0]
        for row in session.execute(
            text(
                "EXPLAIN SELECT id FROM tickets WHERE next_escalation_at <= now() "
                "ORDER BY next_escalation_at, id LIMIT 500 FOR UPDATE SKIP LOCKED"
            )
        )
    )
    assert "ix_tickets_next_escalation_at" in plan


# --------------------------------------------------------------------- two sweeps at once


INTERLEAVED_AT = at(2025, 4, 30, 12, 0)  # when the interleaved sweeps run


@pytest.fixture
def committed_ticket(postgresql_engine: Engine) -> Iterator[tuple[Engine, int]]:
    """A committed, overdue ticket (and the sweep's system user) on PostgreSQL, the only
    ticket due at :data:`INTERLEAVED_AT`; removed afterwards, so the shared test database
    is left as it was."""
    # 2025: earlier than the tickets other tests commit. Any of theirs due by then anyway
    # leaves the sweep's index until this test is over, so the sweeps see this one only.
    with postgresql_engine.begin() as conn:
        parked = conn.execute(
            select(Ticket.id, Ticket.next_escalation_at).where(
                Ticket.next_escalation_at <= INTERLEAVED_AT
            )
        ).all()
        conn.execute(
            update(Ticket)
            .where(Ticket.id.in_([row.id for row in parked]))
            .values(next_escalation_at=None)
        )
    now = at(2025, 3, 10, 12, 0)
    with Session(postgresql_engine) as setup:
        had_actor = setup.scalar(select(StaffUser).where(StaffUser.username == "system.sla"))
        system_actor(setup, "sla", now)
        road = setup.scalar(select(TicketType).where(TicketType.code == "yol_bozuklugu"))
        assert road is not None and road.department_id is not None
        received = at(2025, 3, 3, 8, 30)
        deadlines = deadlines_for(get_calendar(setup), road, received)
        receiver = setup.scalars(select(StaffUser).order_by(StaffUser.id)).first()
        assert receiver is not None
        ticket = Ticket(
            kind=TicketKind.COMPLAINT,
            channel=Channel.PHONE,
            status=TicketStatus.FORWARDED,
            ticket_type_id=road.id,
            department_id=road.department_id,
            description="Eşzamanlı tarama testi",
            received_at=received,
            received_by_id=receiver.id,
            due_at=deadlines.due_at,
            updated_at=received,
        )
        setup.add(ticket)
        setup.flush()
        ticket.reference_code = f"TST{ticket.id}"
        setup.commit()
        ticket_id = ticket.id
    yield postgresql_engine, ticket_id
    with postgresql_engine.begin() as conn:
        conn.execute(delete(Notification).where(Notification.ticket_id == ticket_id))
        conn.execute(delete(TicketEvent).where(TicketEvent.ticket_id == ticket_id))
        conn.execute(delete(Ticket).where(Ticket.id == ticket_id))
        if had_actor is None:
            conn.execute(delete(StaffUser).where(StaffUser.username == "system.sla"))
        for row in parked:
            conn.execute(
                update(Ticket)
                .where(Ticket.id == row.id)
                .values(next_escalation_at=row.next_escalation_at)
            )


@pytest.mark.postgres
def test_two_interleaved_sweeps_take_each_step_once(
    committed_ticket: tuple[Engine, int],
) -> None:
    engine, ticket_id = committed_ticket
    now = INTERLEAVED_AT  # every post-breach step is due
    with Session(engine) as first, Session(engine) as second:
        # Were the rows locked without SKIP LOCKED, the second sweep would wait: fail instead.
        second.execute(text("SET lock_timeout = '2s'"))
        report_a = run_sweep(first, now)  # holds the row lock until it commits
        report_b = run_sweep(second, now)  # skips the locked row instead of waiting
        assert report_a.examined == 1 and report_a.total_steps == 3
        assert report_b.examined == 0 and report_b.total_steps == 0
        first.commit()
        second.rollback()
        report_c = run_sweep(second, now)  # after the commit: nothing left to do
        assert report_c.examined == 0
        second.commit()
    with Session(engine) as check:
        keys = list(
            check.scalars(
                select(TicketEvent.step_key)
                .where(
                    TicketEvent.ticket_id == ticket_id,
                    TicketEvent.action == TimelineAction.ESCALATED,
                )
                .order_by(TicketEvent.id)
            )
        )
        assert keys == [
            f"esc:{ticket_id}:0:superior_unit",
            f"esc:{ticket_id}:0:deputy_mayor",
            f"esc:{ticket_id}:0:mayor",
        ]
        ticket = check.get(Ticket, ticket_id)
        assert ticket is not None and ticket.escalation_level == 4


# --------------------------------------------------------------------- migration with data


def test_the_migration_arms_open_tickets_and_pauses_waiting_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    upgrade(url, "7ed3c8658ce9")  # the schema before issue 5
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO departments (id, code, name_tr, name_en, level, is_active) "
                "VALUES (1, 'D', 'd', 'd', 'directorate', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO staff_users (id, username, full_name, staff_code, role, "
                "languages, is_active, created_at) "
                "VALUES (1, 'u', 'u', 'U1', 'agent', '[]', 1, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO ticket_types (id, code, name_tr, name_en, default_kind, "
                "department_id, sla_hours, sla_unit, legal_clock, is_active) "
                "VALUES (1, 't', 't', 't', 'request', 1, 8, 'working_hours', 'none', 1)"
            )
        )
        for ticket_id, status in enumerate(
            ("new", "waiting_on_citizen", "resolved", "reopened"), start=1
        ):
            conn.execute(
                text(
                    "INSERT INTO tickets (id, kind, channel, status, language, ticket_type_id, "
                    "department_id, description, received_at, received_by_id, due_at, "
                    "escalation_level, resolved_at_first_contact, updated_at) VALUES "
                    f"({ticket_id}, 'request', 'desk', '{status}', 'tr', 1, 1, '', "
                    f"'2026-01-0{ticket_id} 08:00:00', 1, '2026-01-09 00:00:00', 0, 0, "
                    "'2026-01-03 09:00:00')"
                )
            )
        conn.execute(
            text(
                "INSERT INTO ticket_events (ticket_id, at, actor_id, action, data) "
                "VALUES (4, '2026-01-04 10:00:00', 1, 'reopened', '{}')"
            )
        )
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        rows = {t.id: t for t in session.scalars(select(Ticket))}
        assert rows[1].next_escalation_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
        assert rows[1].sla_paused_at is None and rows[1].sla_cycle == 0
        assert rows[2].sla_paused_at == datetime(2026, 1, 3, 9, 0, tzinfo=UTC)
        assert rows[2].next_escalation_at is None
        assert rows[3].next_escalation_at is None and rows[3].sla_paused_at is None
        assert rows[4].sla_started_at == datetime(2026, 1, 4, 10, 0, tzinfo=UTC)
        assert rows[4].next_escalation_at is not None
    engine.dispose()
