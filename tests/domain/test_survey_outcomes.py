"""What survey answers set in motion (R5.2, R3.3): reopen + escalate once, low-score
follow-ups once — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    CampaignTargetStatus,
    Department,
    Notification,
    NotificationChannel,
    Role,
    StaffUser,
    SurveyAnswer,
    SurveyFollowUp,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services.errors import InvalidField, NotPermitted, UnknownEntity
from services.escalation import run_sweep
from services.intake import open_ticket
from services.message_templates import render
from services.sla_policy import Step, ladder_for
from services.survey_outcomes import (
    LOW_SCORE_MAX,
    apply_survey_answers,
    attempt_id_for_call,
    close_follow_up,
    open_follow_ups,
)
from services.surveys import ensure_default_questions, record_answer
from tests.factories import mobile, request, valid_tc
from tests.outbound_factories import add_attempt, add_campaign, add_target, resolved_ticket

CONTEXT = {"municipality": "Açık Kapı Belediyesi", "call_centre": "444 80 07"}


def _resolved(session: Session, agent: StaffUser, now: datetime, seed: int) -> Ticket:
    ensure_default_questions(session)
    return resolved_ticket(session, agent, now, seed)


def _answer(session: Session, now: datetime, call_id: str, ticket: Ticket, **answers: int) -> None:
    for code, digit in answers.items():
        record_answer(
            session,
            now,
            call_id=call_id,
            question_code=code,
            digit=digit,
            ticket_id=ticket.id,
            citizen_id=ticket.citizen_id,
        )


def _events(session: Session, ticket: Ticket, action: TimelineAction) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
            .order_by(TicketEvent.id)
        )
    )


def _count(session: Session, model: type) -> int:
    session.flush()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_not_solved_reopens_and_escalates_once_even_when_replayed(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """R5.2: "not solved" reopens the ticket and escalates it one step, exactly once."""
    ticket = _resolved(session, agent, now, 9101)
    assert ticket.escalation_level == 0 and ticket.department_id is not None
    later = now + timedelta(days=1)
    _answer(session, later, "sv-ns-1", ticket, satisfaction=4, solved=2)

    outcome = apply_survey_answers(session, now=later, survey_key="sv-ns-1")

    assert outcome.ticket_id == ticket.id and outcome.solved == 2
    assert outcome.reopened and outcome.escalation_step == Step.SUPERIOR_UNIT.value
    assert outcome.follow_up_id is None and not outcome.replayed
    assert ticket.status is TicketStatus.REOPENED
    assert ticket.escalation_level == Step.SUPERIOR_UNIT.level
    [reopened] = _events(session, ticket, TimelineAction.REOPENED)
    assert "çözülmediğini" in (reopened.note or "")
    [escalated] = _events(session, ticket, TimelineAction.ESCALATED)
    assert escalated.step_key == f"esc:{ticket.id}:{ticket.sla_cycle}:superior_unit"
    assert escalated.data["reason"] == "survey_not_solved"
    staff = list(
        session.scalars(
            select(Notification).where(
                Notification.ticket_id == ticket.id,
                Notification.template == "survey_not_solved_escalation",
            )
        )
    )
    assert staff and {n.idempotency_key for n in staff} == set(escalated.data["notifications"])
    assert any(n.channel is NotificationChannel.CONSOLE for n in staff)
    text = render(staff[0].template, "tr", {**CONTEXT, **staff[0].payload})
    assert ticket.reference_code is not None and ticket.reference_code in text
    citizen = session.scalar(
        select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.template == "ticket_reopened"
        )
    )
    assert citizen is not None  # the citizen is told their application was reopened

    counts = (_count(session, TicketEvent), _count(session, Notification))
    # A replayed answer changes nothing (first answer wins) and applying again does nothing.
    _answer(session, later + timedelta(minutes=1), "sv-ns-1", ticket, solved=1)
    again = apply_survey_answers(
        session, now=later + timedelta(minutes=2), survey_key="sv-ns-1", ticket_id=ticket.id
    )
    assert again.replayed and not again.reopened and again.escalation_step is None
    assert (_count(session, TicketEvent), _count(session, Notification)) == counts
    assert ticket.escalation_level == Step.SUPERIOR_UNIT.level
    # The sweep never takes the same step again in this cycle.
    run_sweep(session, later + timedelta(minutes=3))
    session.flush()
    assert len(_events(session, ticket, TimelineAction.ESCALATED)) == 1
    [row] = session.scalars(select(SurveyFollowUp).where(SurveyFollowUp.ticket_id == ticket.id))
    assert (row.kind, row.reopened, row.escalation_step) == ("not_solved", True, "superior_unit")


def test_not_solved_climbs_one_step_above_the_level_reached_before(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """R3.3: the survey escalation is one step above the level the ticket had reached."""
    ticket = _resolved(session, agent, now, 9102)
    assert ticket.department_id is not None
    ladder = ladder_for(session, session.get(Department, ticket.department_id))  # type: ignore[arg-type]
    above = [r for r in ladder.rungs if r.step.level > Step.SUPERIOR_UNIT.level]
    ticket.escalation_level = Step.SUPERIOR_UNIT.level  # it had breached before resolution
    later = now + timedelta(days=1)
    _answer(session, later, "sv-ns-2", ticket, solved=2)
    outcome = apply_survey_answers(session, now=later, survey_key="sv-ns-2")
    expected = above[0].step if above else ladder.rungs[-1].step
    assert outcome.escalation_step == expected.value
    assert ticket.escalation_level == expected.level


def test_not_solved_on_an_open_ticket_is_noted_without_reopening(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ensure_default_questions(session)
    ticket = open_ticket(
        session, agent, now, request(tc_number=valid_tc(9103), phone=mobile(9103))
    ).ticket
    _answer(session, now, "sv-ns-3", ticket, solved=2)
    outcome = apply_survey_answers(session, now=now, survey_key="sv-ns-3")
    assert not outcome.reopened and outcome.escalation_step is None
    assert outcome.notes == ("ticket_not_resolved",)
    assert ticket.status is TicketStatus.NEW
    assert _events(session, ticket, TimelineAction.ESCALATED) == []
    [note] = [
        e
        for e in _events(session, ticket, TimelineAction.NOTE)
        if e.data.get("survey_outcome") == "not_solved"
    ]
    assert "çözülmediğini" in (note.note or "")


def test_low_score_creates_one_supervisor_follow_up(
    session: Session, agent: StaffUser, supervisor: StaffUser, now: datetime
) -> None:
    """R5.2: a low score creates one supervisor follow-up (timeline, console, list)."""
    ticket = _resolved(session, agent, now, 9104)
    later = now + timedelta(days=1)
    _answer(session, later, "sv-low-1", ticket, satisfaction=LOW_SCORE_MAX, solved=1)
    outcome = apply_survey_answers(session, now=later, survey_key="sv-low-1")
    assert outcome.follow_up_id is not None and not outcome.reopened
    assert ticket.status is TicketStatus.RESOLVED
    follow_up = session.get(SurveyFollowUp, outcome.follow_up_id)
    assert follow_up is not None
    assert (follow_up.kind, follow_up.status, follow_up.score, follow_up.channel) == (
        "low_score",
        "open",
        LOW_SCORE_MAX,
        "ivr",
    )
    assert follow_up.department_id == ticket.department_id
    assert follow_up.neighbourhood_id == ticket.neighbourhood_id
    notes = [
        e
        for e in _events(session, ticket, TimelineAction.NOTE)
        if e.data.get("follow_up_id") == follow_up.id
    ]
    assert len(notes) == 1
    told = list(
        session.scalars(
            select(Notification).where(Notification.template == "survey_low_score_follow_up")
        )
    )
    supervisors = set(
        session.scalars(
            select(StaffUser.id).where(
                StaffUser.role == Role.SUPERVISOR, StaffUser.is_active.is_(True)
            )
        )
    )
    consoles = {n.recipient for n in told if n.channel is NotificationChannel.CONSOLE}
    assert consoles == {str(i) for i in supervisors} and str(supervisor.id) in consoles
    assert "2/5" in render(told[0].template, "tr", {**CONTEXT, **told[0].payload})
    assert follow_up in open_follow_ups(session)
    assert follow_up in open_follow_ups(session, department_id=ticket.department_id)

    counts = (_count(session, SurveyFollowUp), _count(session, Notification))
    again = apply_survey_answers(session, now=later, survey_key="sv-low-1")
    assert again.replayed and again.follow_up_id == follow_up.id
    assert (_count(session, SurveyFollowUp), _count(session, Notification)) == counts

    with pytest.raises(NotPermitted):
        close_follow_up(session, now=later, actor=agent, follow_up_id=follow_up.id, note="x")
    closed = close_follow_up(
        session, now=later, actor=supervisor, follow_up_id=follow_up.id, note="Arandı."
    )
    assert (closed.status, closed.closed_by_id, closed.note) == ("done", supervisor.id, "Arandı.")
    assert follow_up not in open_follow_ups(session)


@pytest.mark.parametrize("score", [3, 4, 5])
def test_good_scores_and_solved_change_nothing(
    session: Session, agent: StaffUser, now: datetime, score: int
) -> None:
    ticket = _resolved(session, agent, now, 9105)
    _answer(session, now, f"sv-ok-{score}", ticket, satisfaction=score, solved=1, courtesy=1)
    events = _count(session, TicketEvent)
    outcome = apply_survey_answers(session, now=now, survey_key=f"sv-ok-{score}")
    assert outcome.satisfaction == score and outcome.follow_up_id is None
    assert not outcome.reopened and ticket.status is TicketStatus.RESOLVED
    assert _count(session, TicketEvent) == events
    empty = apply_survey_answers(session, now=now, survey_key="sv-nothing")
    assert empty.notes == ("no_answers",)


def test_answers_carry_the_attempt_and_the_channel(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """Decision 0021: SurveyAnswer.attempt_id / channel."""
    ticket = _resolved(session, agent, now, 9106)
    campaign = add_campaign(session, now)
    target = add_target(
        session, now, campaign.id, ticket, "+905320009106", CampaignTargetStatus.DONE
    )
    attempt = add_attempt(session, now, target, AttemptStatus.ANSWERED)
    assert attempt_id_for_call(session, attempt.id) == attempt.id
    assert attempt_id_for_call(session, "1764300000.1") is None
    assert attempt_id_for_call(session, "") is None
    stored = record_answer(
        session,
        now,
        call_id=attempt.id,
        question_code="satisfaction",
        digit="5",
        ticket_id=ticket.id,
        citizen_id=ticket.citizen_id,
        attempt_id=attempt.id,
    )
    assert (stored.attempt_id, stored.channel) == (attempt.id, "ivr")
    with pytest.raises(UnknownEntity):
        record_answer(
            session,
            now,
            call_id="sv-x",
            question_code="satisfaction",
            digit="5",
            ticket_id=None,
            citizen_id=None,
            attempt_id="no-such-attempt",
        )
    with pytest.raises(InvalidField):
        record_answer(
            session,
            now,
            call_id="sv-x",
            question_code="satisfaction",
            digit="5",
            ticket_id=None,
            citizen_id=None,
            channel="fax",
        )
    assert _count(session, SurveyAnswer) >= 1
