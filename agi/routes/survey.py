"""``survey``: the keypad satisfaction survey (skeleton completed by the Outbound issue).

``AGI(agi://127.0.0.1:4573/survey[,<ticket id>[,<citizen id>]])``. For each active question
(in order): ``GET DATA acikkapi/<prompt> 5000 1``; an invalid key or no key plays
``acikkapi/invalid-choice`` and asks again, at most :data:`MAX_RETRIES` more times; a valid
key is stored at once (its own short transaction — never one held open across keypad
input). After the questions (also after a hangup, when something was answered)
:func:`services.survey_outcomes.apply_survey_answers` runs in its own short transaction:
"not solved" reopens and escalates the ticket, a low score opens a supervisor follow-up
(R5.2). Answers of a campaign call carry its attempt id (the call's ``UNIQUEID`` is the
attempt id the dialer gave as ``ChannelId``). Sets ``AK_SURVEY_RESULT``: ``complete``
(every question answered), ``partial`` (some), ``failed`` (none, or the survey could not
run). Stops quietly on hangup; the answers given so far are kept. Prompts are
language-neutral paths: Asterisk picks the ``tr``/``en`` recording by the channel's
language.
"""

from __future__ import annotations

import logging
from functools import partial

from agi.protocol import AgiHangup, AgiRequest
from models import SurveyQuestion
from services.errors import DomainError
from services.survey_outcomes import apply_survey_answers, attempt_id_for_call
from services.surveys import active_questions, parse_digit, record_answer
from telephony import channel_vars as cv

log = logging.getLogger("acikkapi.agi.survey")

PROMPT_DIR = "acikkapi"
INVALID_PROMPT = f"{PROMPT_DIR}/invalid-choice"
DIGIT_TIMEOUT_MS = 5000
MAX_RETRIES = 2


def _int_arg(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


async def survey(request: AgiRequest) -> None:
    ctx = request.context
    ticket_id = _int_arg(request.argument(1))
    citizen_id = _int_arg(request.argument(2))
    call_id = await request.get_variable(cv.CALL_ID) or request.header("agi_uniqueid") or ""
    try:
        questions = await ctx.run_db(active_questions)
        attempt_id = await ctx.run_db(partial(attempt_id_for_call, call_id=call_id))
    except Exception as exc:
        log.error("call %s: survey questions unavailable: %r", call_id, exc)
        await request.set_variable(cv.SURVEY_RESULT, "failed")
        return
    answered = 0
    try:
        for question in questions:
            digit = await _ask(request, question)
            if digit is None:
                continue
            store = partial(
                record_answer,
                now=ctx.clock(),
                call_id=call_id,
                question_code=question.code,
                digit=digit,
                ticket_id=ticket_id,
                citizen_id=citizen_id,
                attempt_id=attempt_id,
                channel="ivr",
            )
            try:
                await ctx.run_db(store)
                answered += 1
            except DomainError as exc:
                log.warning("call %s: answer to %s refused: %s", call_id, question.code, exc)
            except Exception as exc:
                log.error("call %s: answer to %s not stored: %r", call_id, question.code, exc)
    except AgiHangup:
        log.info("call %s: hung up during the survey (%d answered)", call_id, answered)
        await _apply_outcomes(request, call_id, ticket_id, answered)
        return
    await _apply_outcomes(request, call_id, ticket_id, answered)
    if questions and answered == len(questions):
        result = "complete"
    elif answered:
        result = "partial"
    else:
        result = "failed"
    log.info("call %s: survey %s (%d/%d)", call_id, result, answered, len(questions))
    await request.set_variable(cv.SURVEY_RESULT, result)


async def _apply_outcomes(
    request: AgiRequest, call_id: str, ticket_id: int | None, answered: int
) -> None:
    """Reopen/escalate or open a follow-up from the stored answers; never fails the call."""
    if not answered or not call_id:
        return
    ctx = request.context
    work = partial(apply_survey_answers, now=ctx.clock(), survey_key=call_id, ticket_id=ticket_id)
    try:
        outcome = await ctx.run_db(work)
        log.info("call %s: survey outcome %s", call_id, outcome)
    except Exception as exc:
        log.error("call %s: survey outcome not applied: %r", call_id, exc)


async def _ask(request: AgiRequest, question: SurveyQuestion) -> int | None:
    """The valid answer to ``question``, or None after 1 + MAX_RETRIES invalid tries."""
    for attempt in range(1 + MAX_RETRIES):
        digits = await request.get_data(f"{PROMPT_DIR}/{question.prompt}", DIGIT_TIMEOUT_MS, 1)
        try:
            return parse_digit(question, digits)
        except DomainError:
            if attempt < MAX_RETRIES:
                await request.stream_file(INVALID_PROMPT)
    return None
