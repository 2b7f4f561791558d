"""IVR satisfaction survey: questions and keypad answers (R5.2).

The FastAGI ``survey`` route asks :func:`active_questions` in order and stores each keypad
answer with :func:`record_answer`. **The first answer wins**: an answer already stored for
``(call_id, question)`` is returned unchanged, never overwritten. The IVR asks each question
once per call, so a second answer for the same pair can only be a replay (an AGI retry, a
re-run of the route after a network error) and must not change what the citizen said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import CallAttempt, Citizen, SurveyAnswer, SurveyQuestion, Ticket
from services.errors import InvalidField, MissingField, UnknownEntity

ANSWER_CHANNELS = frozenset({"ivr", "sms", "agent"})
"""How an answer came (``SurveyAnswer.channel``, decision 0021)."""


@dataclass(frozen=True)
class DefaultQuestion:
    code: str
    position: int
    text_tr: str
    text_en: str
    prompt: str
    min_answer: int
    max_answer: int


DEFAULT_QUESTIONS: tuple[DefaultQuestion, ...] = (
    DefaultQuestion(
        "satisfaction",
        1,
        "Aldığınız hizmetten ne kadar memnun kaldınız? 1 (hiç memnun değilim) ile "
        "5 (çok memnunum) arasında bir tuşa basınız.",
        "How satisfied are you with the service you received? Press a key from 1 "
        "(not at all satisfied) to 5 (very satisfied).",
        "survey-satisfaction",
        1,
        5,
    ),
    DefaultQuestion(
        "solved",
        2,
        "Sorununuz çözüldü mü? Evet için 1, hayır için 2'ye basınız.",
        "Was your issue solved? Press 1 for yes, 2 for no.",
        "survey-solved",
        1,
        2,
    ),
    DefaultQuestion(
        "courtesy",
        3,
        "Görüştüğünüz personelin nezaketini 1 ile 5 arasında değerlendiriniz.",
        "Please rate the courtesy of the staff member you spoke to from 1 to 5.",
        "survey-courtesy",
        1,
        5,
    ),
)
"""The bundled questions; audio prompts ``acikkapi/<prompt>`` are rendered from these texts."""


def ensure_default_questions(session: Session) -> int:
    """Insert the :data:`DEFAULT_QUESTIONS` that are missing (by code); return how many.

    Insert-missing only (staff edits to existing questions are kept), idempotent,
    flushed, never committed.
    """
    known = set(session.scalars(select(SurveyQuestion.code)))
    added = 0
    for q in DEFAULT_QUESTIONS:
        if q.code in known:
            continue
        session.add(
            SurveyQuestion(
                code=q.code,
                position=q.position,
                text_tr=q.text_tr,
                text_en=q.text_en,
                prompt=q.prompt,
                min_answer=q.min_answer,
                max_answer=q.max_answer,
                is_active=True,
            )
        )
        added += 1
    session.flush()
    return added


def active_questions(session: Session) -> list[SurveyQuestion]:
    """Active questions in the order they are asked (position, then id)."""
    return list(
        session.scalars(
            select(SurveyQuestion)
            .where(SurveyQuestion.is_active.is_(True))
            .order_by(SurveyQuestion.position, SurveyQuestion.id)
        )
    )


def parse_digit(question: SurveyQuestion, digit: str | int | None) -> int:
    """The answer as an int in ``[min_answer, max_answer]``, or :class:`InvalidField`.

    Accepts exactly one ASCII digit (keypad input) or an int; anything else — empty (timeout),
    ``*``, ``#``, several digits, out of range — is refused.
    """
    if isinstance(digit, bool):
        value = None
    elif isinstance(digit, int):
        value = digit
    elif isinstance(digit, str) and len(digit) == 1 and digit.isascii() and digit.isdigit():
        value = int(digit)
    else:
        value = None
    if value is None or not question.min_answer <= value <= question.max_answer:
        raise InvalidField(
            f"Geçersiz tuş: {digit!r}; {question.min_answer} ile {question.max_answer} arasında "
            "bir tuşa basınız.",
            f"Invalid key {digit!r}: press a key from {question.min_answer} to "
            f"{question.max_answer}.",
            field="digit",
            question=question.code,
        )
    return value


def _existing(session: Session, call_id: str, question_id: int) -> SurveyAnswer | None:
    return session.scalar(
        select(SurveyAnswer).where(
            SurveyAnswer.call_id == call_id, SurveyAnswer.question_id == question_id
        )
    )


def record_answer(
    session: Session,
    now: datetime,
    *,
    call_id: str,
    question_code: str,
    digit: str | int | None,
    ticket_id: int | None,
    citizen_id: int | None,
    attempt_id: str | None = None,
    channel: str = "ivr",
) -> SurveyAnswer:
    """Store the keypad answer to ``question_code`` given during ``call_id``.

    Guarantees:
    - the digit is validated against the question's range before anything is written
      (:class:`~services.errors.InvalidField`); an unknown question code raises
      :class:`~services.errors.UnknownEntity` (so do an unknown ticket or citizen id), an
      empty call id :class:`MissingField`;
    - **first answer wins**: if ``(call_id, question)`` already has an answer it is returned
      unchanged (also when two requests race: the unique constraint decides);
    - ``attempt_id`` (the campaign call that asked, decision 0021) and ``channel``
      (:data:`ANSWER_CHANNELS`: ``ivr`` keypad, ``sms`` digit reply, ``agent``) are stored
      with the answer; an unknown channel raises :class:`InvalidField`, an unknown attempt
      :class:`UnknownEntity`;
    - flushed (id available), never committed.
    """
    if not call_id or not call_id.strip():
        raise MissingField(
            "Çağrı kimliği yok; anket cevabı kaydedilemez.",
            "No call id: the survey answer cannot be recorded.",
            field="call_id",
        )
    call_id = call_id.strip()[:64]
    question = session.scalar(select(SurveyQuestion).where(SurveyQuestion.code == question_code))
    if question is None:
        raise UnknownEntity(
            f"Anket sorusu bulunamadı: {question_code}", f"No survey question {question_code!r}."
        )
    value = parse_digit(question, digit)
    if channel not in ANSWER_CHANNELS:
        raise InvalidField(
            f"Geçersiz anket kanalı: {channel!r}",
            f"Invalid survey channel {channel!r}.",
            field="channel",
        )
    if attempt_id is not None and session.get(CallAttempt, attempt_id) is None:
        raise UnknownEntity(
            f"Arama denemesi bulunamadı: {attempt_id}", f"No call attempt {attempt_id!r}."
        )
    for model, key in ((Ticket, ticket_id), (Citizen, citizen_id)):
        if key is not None and session.get(model, key) is None:
            raise UnknownEntity(
                f"Kayıt bulunamadı: {model.__tablename__} #{key}",
                f"No {model.__tablename__} record #{key}.",
            )
    existing = _existing(session, call_id, question.id)
    if existing is not None:
        return existing
    answer = SurveyAnswer(
        call_id=call_id,
        question_id=question.id,
        ticket_id=ticket_id,
        citizen_id=citizen_id,
        answer=value,
        answered_at=now,
        attempt_id=attempt_id,
        channel=channel,
    )
    try:
        with session.begin_nested():
            session.add(answer)
            session.flush()
    except IntegrityError:
        winner = _existing(session, call_id, question.id)
        if winner is None:
            raise
        return winner
    return answer
