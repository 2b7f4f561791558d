"""IVR survey questions and answers on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import StaffUser, SurveyAnswer, SurveyQuestion
from services.errors import InvalidField, MissingField, UnknownEntity
from services.intake import open_ticket
from services.surveys import active_questions, ensure_default_questions, record_answer
from tests.factories import request


def test_default_questions_are_seeded_once(session: Session) -> None:
    first = ensure_default_questions(session)
    assert ensure_default_questions(session) == 0
    codes = [q.code for q in active_questions(session)]
    assert codes[:3] == ["satisfaction", "solved", "courtesy"] or first == 0
    solved = session.scalar(select(SurveyQuestion).where(SurveyQuestion.code == "solved"))
    assert solved is not None and (solved.min_answer, solved.max_answer) == (1, 2)
    assert "çözüldü" in solved.text_tr and "solved" in solved.text_en


def test_inactive_questions_are_not_asked(session: Session) -> None:
    ensure_default_questions(session)
    courtesy = session.scalar(select(SurveyQuestion).where(SurveyQuestion.code == "courtesy"))
    assert courtesy is not None
    courtesy.is_active = False
    session.flush()
    assert "courtesy" not in [q.code for q in active_questions(session)]


def test_answer_is_stored_with_ticket_and_citizen(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ensure_default_questions(session)
    ticket = open_ticket(session, agent, now, request(phone="0505 361 88 77")).ticket
    answer = record_answer(
        session,
        now,
        call_id="sv-d-1",
        question_code="satisfaction",
        digit="4",
        ticket_id=ticket.id,
        citizen_id=ticket.citizen_id,
    )
    assert answer.id is not None and answer.answer == 4 and answer.answered_at == now
    assert answer.ticket_id == ticket.id and answer.citizen_id == ticket.citizen_id


@pytest.mark.parametrize(
    ("code", "digit"),
    [
        ("satisfaction", "6"),
        ("satisfaction", "0"),
        ("satisfaction", ""),
        ("satisfaction", None),
        ("satisfaction", "*"),
        ("satisfaction", "#"),
        ("satisfaction", "12"),
        ("satisfaction", "٣"),  # an Arabic-Indic digit is not a keypad key
        ("satisfaction", True),
        ("solved", "3"),
        ("solved", 0),
    ],
)
def test_invalid_keys_are_refused_before_writing(
    session: Session, now: datetime, code: str, digit: str | int | None
) -> None:
    ensure_default_questions(session)
    with pytest.raises(InvalidField) as refused:
        record_answer(
            session,
            now,
            call_id="sv-bad",
            question_code=code,
            digit=digit,
            ticket_id=None,
            citizen_id=None,
        )
    assert "tuş" in refused.value.message("tr")
    assert session.scalar(select(SurveyAnswer).where(SurveyAnswer.call_id == "sv-bad")) is None


def test_first_answer_wins(session: Session, now: datetime) -> None:
    ensure_default_questions(session)
    first = record_answer(
        session,
        now,
        call_id="sv-d-2",
        question_code="solved",
        digit="1",
        ticket_id=None,
        citizen_id=None,
    )
    again = record_answer(
        session,
        now + timedelta(minutes=1),
        call_id="sv-d-2",
        question_code="solved",
        digit=2,
        ticket_id=None,
        citizen_id=None,
    )
    assert again.id == first.id and again.answer == 1 and again.answered_at == now


def test_unknown_question_ticket_or_empty_call(session: Session, now: datetime) -> None:
    ensure_default_questions(session)
    with pytest.raises(UnknownEntity):
        record_answer(
            session,
            now,
            call_id="sv-x",
            question_code="nope",
            digit="1",
            ticket_id=None,
            citizen_id=None,
        )
    with pytest.raises(UnknownEntity):
        record_answer(
            session,
            now,
            call_id="sv-x",
            question_code="solved",
            digit="1",
            ticket_id=10**9,
            citizen_id=None,
        )
    with pytest.raises(MissingField):
        record_answer(
            session,
            now,
            call_id="",
            question_code="solved",
            digit="1",
            ticket_id=None,
            citizen_id=None,
        )
