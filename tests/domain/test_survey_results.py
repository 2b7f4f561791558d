"""Survey results per department, neighbourhood, ticket and over time (R5.2, R8.2).

Runs on SQLite and PostgreSQL (the ``session`` fixture): the grouping, the local-time
week/month buckets and the before/after windows are the same SQL on both.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    CampaignKind,
    CampaignTargetSource,
    CampaignTargetStatus,
    Channel,
    Ticket,
)
from services.actors import system_actor
from services.campaigns import CampaignSettings, create_campaign
from services.errors import InvalidField
from services.intake import open_ticket
from services.survey_results import (
    Period,
    SurveyFilter,
    before_after,
    overall,
    results_by_department,
    results_by_neighbourhood,
    results_by_ticket,
    results_over_time,
)
from services.surveys import ensure_default_questions, record_answer
from tests.conftest import ISTANBUL
from tests.factories import request, valid_tc
from tests.outbound_factories import add_attempt, add_target

_calls = itertools.count(1)


def _ticket(session: Session, now: datetime, type_code: str, neighbourhood: str) -> Ticket:
    seed = next(_calls)
    result = open_ticket(
        session,
        system_actor(session, "tests", now),
        now,
        request(
            Channel.DESK,
            ticket_type_code=type_code,
            neighbourhood=neighbourhood,
            tc_number=valid_tc(7_300_000 + seed),
        ),
    )
    session.flush()
    return result.ticket


def _survey(
    session: Session,
    when: datetime,
    ticket: Ticket | None,
    *,
    satisfaction: int | None = None,
    solved: int | None = None,
    courtesy: int | None = None,
    attempt_id: str | None = None,
) -> str:
    """One surveyed call: the answers given, through the real survey service."""
    call_id = f"survey-{next(_calls)}"
    for code, digit in (("satisfaction", satisfaction), ("solved", solved), ("courtesy", courtesy)):
        if digit is None:
            continue
        answer = record_answer(
            session,
            when,
            call_id=call_id,
            question_code=code,
            digit=digit,
            ticket_id=ticket.id if ticket else None,
            citizen_id=None,
        )
        answer.attempt_id = attempt_id
    session.flush()
    return call_id


@pytest.fixture
def tickets(session: Session, now: datetime) -> tuple[Ticket, Ticket]:
    ensure_default_questions(session)
    road = _ticket(session, now, "yol_bozuklugu", "Yıldıztepe")
    noise = _ticket(session, now, "gurultu", "Kuzeykent")
    assert road.department_id is not None and noise.department_id is not None
    assert road.department_id != noise.department_id
    return road, noise


def test_results_per_department_neighbourhood_and_ticket(
    session: Session, now: datetime, tickets: tuple[Ticket, Ticket]
) -> None:
    """R5.2: results are kept per ticket, department and neighbourhood."""
    road, noise = tickets
    _survey(session, now, road, satisfaction=5, solved=1, courtesy=4)
    _survey(session, now, road, satisfaction=3, solved=2)
    _survey(session, now, noise, satisfaction=1, solved=2, courtesy=2)
    _survey(session, now, None, satisfaction=4)  # an inbound survey with no ticket

    by_dept = {r.key: r for r in results_by_department(session)}
    fen, zabita = by_dept[road.department_id], by_dept[noise.department_id]
    assert (fen.surveys, fen.satisfaction_mean, fen.solved_share) == (2, 4.0, 0.5)
    assert (fen.courtesy_mean, fen.courtesy_count) == (4.0, 1)
    assert (zabita.surveys, zabita.satisfaction_mean, zabita.solved_share) == (1, 1.0, 0.0)
    assert fen.label_tr and fen.label_en and fen.label_tr != zabita.label_tr
    assert by_dept[None].surveys == 1 and by_dept[None].solved_share is None
    assert list(by_dept)[-1] is None  # "no department" comes last

    by_hood = {r.label_tr: r for r in results_by_neighbourhood(session)}
    assert by_hood["Yıldıztepe"].surveys == 2
    assert by_hood["Kuzeykent"].satisfaction_mean == 1.0

    per_ticket = results_by_ticket(session)
    assert [r.key for r in per_ticket] == [noise.id, road.id]  # lowest satisfaction first
    assert per_ticket[0].label_tr == noise.reference_code

    only_fen = results_by_neighbourhood(
        session, filters=SurveyFilter(department_id=road.department_id)
    )
    assert [r.label_tr for r in only_fen] == ["Yıldıztepe"]
    total = overall(session)
    assert (total.surveys, total.satisfaction_count, total.solved_count) == (4, 4, 3)
    assert total.solved_yes == 1


def test_no_answers_give_empty_figures(session: Session) -> None:
    ensure_default_questions(session)
    assert results_by_department(session, filters=SurveyFilter(campaign_id=-1)) == []
    nothing = overall(session, filters=SurveyFilter(campaign_id=-1))
    assert nothing.surveys == 0 and nothing.satisfaction_mean is None


def test_weekly_buckets_follow_istanbul_local_time(
    session: Session, tickets: tuple[Ticket, Ticket]
) -> None:
    """R8.2: satisfaction over time. A Sunday 23:30 answer in Istanbul (20:30 UTC) belongs
    to that week; Monday 00:30 local (Sunday 21:30 UTC) to the next one."""
    road, _noise = tickets
    sunday_late = datetime(2026, 11, 29, 23, 30, tzinfo=ISTANBUL)
    monday_early = datetime(2026, 11, 30, 0, 30, tzinfo=ISTANBUL)
    _survey(session, sunday_late.astimezone(UTC), road, satisfaction=2)
    _survey(session, monday_early.astimezone(UTC), road, satisfaction=4)
    _survey(session, datetime(2026, 12, 15, 12, tzinfo=UTC), road, satisfaction=5)

    weeks = results_over_time(session, start=date(2026, 11, 25), end=date(2026, 12, 20))
    assert [r.key for r in weeks] == [
        date(2026, 11, 23),
        date(2026, 11, 30),
        date(2026, 12, 7),
        date(2026, 12, 14),
    ]
    assert [r.surveys for r in weeks] == [1, 1, 0, 1]
    assert [r.satisfaction_mean for r in weeks] == [2.0, 4.0, None, 5.0]

    months = results_over_time(
        session, start=date(2026, 11, 1), end=date(2027, 1, 1), period=Period.MONTH
    )
    assert [(r.key, r.surveys) for r in months] == [
        (date(2026, 11, 1), 2),
        (date(2026, 12, 1), 1),
    ]
    assert months[0].satisfaction_mean == 3.0

    with pytest.raises(InvalidField):
        results_over_time(session, start=date(2026, 12, 1), end=date(2026, 12, 1))
    with pytest.raises(InvalidField):
        results_over_time(session, start=date(2000, 1, 1), end=date(2026, 1, 1))


def test_before_and_after_a_policy_change(session: Session, tickets: tuple[Ticket, Ticket]) -> None:
    """R8.2: the same figures in the N days before and after a change."""
    road, noise = tickets
    pivot = datetime(2026, 12, 1, tzinfo=ISTANBUL)
    _survey(session, pivot - timedelta(days=40), road, satisfaction=1)  # outside: ignored
    _survey(session, pivot - timedelta(days=10), road, satisfaction=2, solved=2)
    _survey(session, pivot - timedelta(seconds=1), noise, satisfaction=3, solved=2)
    _survey(session, pivot, road, satisfaction=4, solved=1)  # the pivot belongs to "after"
    _survey(session, pivot + timedelta(days=29), road, satisfaction=5, solved=1)
    _survey(session, pivot + timedelta(days=30), road, satisfaction=1)  # outside: ignored

    change = before_after(session, pivot=pivot, days=30)
    assert (change.before.surveys, change.before.satisfaction_mean) == (2, 2.5)
    assert (change.after.surveys, change.after.satisfaction_mean) == (2, 4.5)
    assert change.satisfaction_change == 2.0
    assert change.before.solved_share == 0.0 and change.after.solved_share == 1.0
    assert change.solved_share_change == 1.0
    assert change.courtesy_change is None

    fen_only = before_after(
        session, pivot=pivot, days=30, filters=SurveyFilter(department_id=road.department_id)
    )
    assert fen_only.before.surveys == 1 and fen_only.after.surveys == 2
    with pytest.raises(InvalidField):
        before_after(session, pivot=pivot, days=0)


def test_results_of_one_campaign(
    session: Session, now: datetime, supervisor: object, tickets: tuple[Ticket, Ticket]
) -> None:
    """A survey campaign's page shows only the answers its own calls collected."""
    road, noise = tickets
    campaign = create_campaign(
        session,
        actor=None,
        now=now,
        settings=CampaignSettings(name="Kasım memnuniyet anketi", kind=CampaignKind.SURVEY),
        target_source=CampaignTargetSource.RESOLVED_TICKETS,
        target_criteria={},
    )
    target = add_target(session, now, campaign.id, road, "+905320000001", CampaignTargetStatus.DONE)
    attempt = add_attempt(session, now, target, AttemptStatus.ANSWERED)
    _survey(session, now, road, satisfaction=5, solved=1, attempt_id=attempt.id)
    _survey(session, now, noise, satisfaction=1, solved=2)  # inbound: not the campaign's

    mine = overall(session, filters=SurveyFilter(campaign_id=campaign.id))
    assert (mine.surveys, mine.satisfaction_mean, mine.solved_share) == (1, 5.0, 1.0)
    [row] = results_by_department(session, filters=SurveyFilter(campaign_id=campaign.id))
    assert row.key == road.department_id
