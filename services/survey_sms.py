"""The SMS fallback of the satisfaction survey: "reply with a digit" (R5.2, decision 0021).

When a survey campaign could not reach a citizen by phone (its target is ``exhausted``),
:func:`on_survey_target_exhausted` — called where the dialer records that outcome, and by
the periodic safety net ``jobs.surveys.send_survey_sms_fallbacks`` — asks once by SMS:
rate the service 1–5 by replying with a digit (:func:`request_sms_survey`).

The reply reaches the inbound SMS channel (services.sms_channel.handle_inbound_sms), which
asks :func:`match_survey_reply` before answering with the format help. A reply counts when
it is a single digit 1–5 (spaces around it allowed), comes from the number the request went
to, within :data:`REPLY_WINDOW` of the request: it is stored as the ``satisfaction`` answer
with channel ``sms`` (``SurveyAnswer.call_id`` = the request key), the citizen is thanked,
and services.survey_outcomes.apply_survey_answers runs (a low score opens a supervisor
follow-up). The first reply wins; a later digit from that number is ignored (nothing
written). A digit from a number with no open request is not a survey reply: the SMS
channel handles it as before.

Every write happens in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    Campaign,
    CampaignKind,
    CampaignTarget,
    CampaignTargetStatus,
    Citizen,
    CitizenPhone,
    Language,
    Notification,
    NotificationChannel,
    Ticket,
    TicketStatus,
    TimelineAction,
)
from models.survey_sms_request import SurveySmsRequest
from services import outbox, timeline
from services.actors import system_actor
from services.identity import is_mobile
from services.survey_outcomes import SATISFACTION, SurveyOutcome, apply_survey_answers
from services.surveys import ensure_default_questions, record_answer

__all__ = [
    "REPLY_WINDOW",
    "REQUEST_TEMPLATE",
    "THANKS_TEMPLATE",
    "FallbackBatch",
    "SurveyReply",
    "SurveyReplyStatus",
    "match_survey_reply",
    "on_survey_target_exhausted",
    "parse_digit_reply",
    "request_key",
    "request_sms_survey",
    "send_missing_fallbacks",
]

REPLY_WINDOW = timedelta(days=7)
"""A digit reply counts for this long after the request was written."""
REQUEST_TEMPLATE = "survey_sms_request"
THANKS_TEMPLATE = "survey_sms_thanks"
ACTOR_NAME = "survey"
SURVEYED_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
_DIGIT_REPLY = re.compile(r"^\s*([0-9])\s*$")


def request_key(ticket: Ticket) -> str:
    """``survey-sms:<ticket id>:<SLA cycle>``: one SMS survey per resolution of a ticket
    (a ticket reopened and resolved again may be asked again). Also the outbox key of the
    SMS and the ``SurveyAnswer.call_id`` of the reply."""
    return f"survey-sms:{ticket.id}:{ticket.sla_cycle}"


def parse_digit_reply(text: str | None) -> int | None:
    """The digit of a reply that is exactly one ASCII digit (spaces around it allowed)."""
    found = _DIGIT_REPLY.match(text or "")
    return int(found.group(1)) if found else None


def _mobile_of(session: Session, citizen_id: int) -> str | None:
    for e164 in session.scalars(
        select(CitizenPhone.e164)
        .where(CitizenPhone.citizen_id == citizen_id)
        .order_by(CitizenPhone.last_seen_at.desc(), CitizenPhone.id.desc())
    ):
        if is_mobile(e164):
            return e164
    return None


def request_sms_survey(
    session: Session,
    *,
    now: datetime,
    ticket: Ticket,
    phone_e164: str | None = None,
    language: Language | None = None,
    target: CampaignTarget | None = None,
) -> bool:
    """Ask the citizen of ``ticket`` by SMS to rate the service with a digit (R5.2).

    Guarantees: True only when this call wrote the request (a :class:`SurveySmsRequest`,
    the outbox SMS with key :func:`request_key`, a timeline row); False — writing nothing —
    when the ticket is not resolved or closed, no mobile number is known (``phone_e164``,
    else the target's, else the citizen's latest mobile), the citizen refused SMS
    (``consent_sms``), or the ticket was already asked in this SLA cycle (also when a
    concurrent call won: the unique key decides). Never commits.
    """
    if ticket.status not in SURVEYED_STATUSES:
        return False
    citizen = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id is not None else None
    if citizen is not None and not citizen.consent_sms:
        return False
    phone = phone_e164 or (target.phone_e164 if target is not None else None)
    if phone is None and citizen is not None:
        phone = _mobile_of(session, citizen.id)
    if phone is None or not is_mobile(phone):
        return False
    key = request_key(ticket)
    if session.scalar(select(SurveySmsRequest.id).where(SurveySmsRequest.request_key == key)):
        return False
    language = language or (citizen.preferred_language if citizen else None) or ticket.language
    request = SurveySmsRequest(
        request_key=key,
        phone_e164=phone,
        language=language,
        ticket_id=ticket.id,
        citizen_id=ticket.citizen_id,
        target_id=target.id if target is not None else None,
        requested_at=now,
        expires_at=now + REPLY_WINDOW,
    )
    try:
        with session.begin_nested():
            session.add(request)
            session.flush()
    except IntegrityError:
        return False
    ensure_default_questions(session)  # the reply is stored as the satisfaction answer
    message = outbox.enqueue(
        session,
        now,
        key=key,
        channel=NotificationChannel.SMS,
        recipient=phone,
        template=REQUEST_TEMPLATE,
        language=language,
        payload={"reference_code": ticket.reference_code},
        ticket=ticket,
    )
    request.notification_id = message.id
    timeline.record(
        session,
        ticket,
        system_actor(session, ACTOR_NAME, now),
        now,
        TimelineAction.NOTIFICATION_QUEUED,
        note="Telefonla ulaşılamadı; memnuniyet anketi SMS ile soruldu.",
        template=REQUEST_TEMPLATE,
        channel=NotificationChannel.SMS.value,
        key=key,
    )
    session.flush()
    return True


def on_survey_target_exhausted(session: Session, *, now: datetime, target: CampaignTarget) -> bool:
    """The SMS fallback for a survey target the dialer gave up on (R5.2).

    Call in the transaction that marks ``target`` exhausted (services.dialer.record_outcome)
    — or later, the safety net does. Guarantees: acts only on an ``exhausted`` target of a
    ``survey`` campaign with a ticket; then :func:`request_sms_survey` to the target's
    number in the target's language (so at most once per ticket and SLA cycle). Returns
    whether a request was written. Never commits.
    """
    if target.status is not CampaignTargetStatus.EXHAUSTED or target.ticket_id is None:
        return False
    campaign = session.get(Campaign, target.campaign_id)
    if campaign is None or campaign.kind is not CampaignKind.SURVEY:
        return False
    ticket = session.get(Ticket, target.ticket_id)
    if ticket is None:
        return False
    return request_sms_survey(
        session,
        now=now,
        ticket=ticket,
        phone_e164=target.phone_e164,
        language=target.language,
        target=target,
    )


@dataclass(frozen=True)
class FallbackBatch:
    """What one :func:`send_missing_fallbacks` call did."""

    examined: int  # targets looked at
    written: int  # SMS requests written
    last_target_id: int | None  # pass as ``after_id`` to continue


def send_missing_fallbacks(
    session: Session, *, now: datetime, limit: int = 200, after_id: int = 0
) -> FallbackBatch:
    """The safety net: :func:`on_survey_target_exhausted` for exhausted survey targets that
    ended within :data:`REPLY_WINDOW` before ``now`` (``completed_at``, or ``created_at``
    when the dialer left it empty) and whose ticket was not asked by SMS since the target was
    made; at most
    ``limit`` targets with ids above ``after_id``, in id order (targets that cannot be
    asked — ticket reopened, no mobile, no SMS consent — are passed over, so page on with
    ``last_target_id``). Idempotent: a second run writes nothing new (a ticket asked once
    is excluded; the unique request key decides a race). Never commits.
    """
    cutoff = now - REPLY_WINDOW
    # Asked since this target was made: a ticket resolved again (a new SLA cycle, a new
    # survey target) may be asked again (request_key is per cycle).
    asked = exists().where(
        SurveySmsRequest.ticket_id == CampaignTarget.ticket_id,
        SurveySmsRequest.requested_at >= CampaignTarget.created_at,
    )
    targets = session.scalars(
        select(CampaignTarget)
        .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(
            CampaignTarget.id > after_id,
            Campaign.kind == CampaignKind.SURVEY,
            CampaignTarget.status == CampaignTargetStatus.EXHAUSTED,
            CampaignTarget.ticket_id.is_not(None),
            or_(
                CampaignTarget.completed_at >= cutoff,
                and_(CampaignTarget.completed_at.is_(None), CampaignTarget.created_at >= cutoff),
            ),
            ~asked,
        )
        .order_by(CampaignTarget.id)
        .limit(limit)
    ).all()
    written = sum(1 for t in targets if on_survey_target_exhausted(session, now=now, target=t))
    return FallbackBatch(len(targets), written, targets[-1].id if targets else None)


class SurveyReplyStatus(enum.StrEnum):
    RECORDED = "recorded"  # the first reply: stored, outcomes applied, citizen thanked
    IGNORED = "ignored"  # the request was already answered: nothing written


@dataclass(frozen=True)
class SurveyReply:
    status: SurveyReplyStatus
    request: SurveySmsRequest
    ticket: Ticket | None
    reply: Notification | None = None  # the thank-you SMS
    outcome: SurveyOutcome | None = None


def match_survey_reply(
    session: Session,
    *,
    now: datetime,
    phone_e164: str,
    text: str,
    reply_ref: str | None = None,
) -> SurveyReply | None:
    """Take ``text`` from ``phone_e164`` as the answer to an open SMS survey, if it is one.

    Guarantees: None — writing nothing — unless ``text`` is a single digit 1–5 and the
    number has a request made within :data:`REPLY_WINDOW` before ``now`` (the latest one);
    then the first reply is stored as the ``satisfaction`` answer (channel ``sms``), the
    survey outcomes are applied (services.survey_outcomes) and a thank-you SMS is queued
    (key ``sms:reply:<reply_ref>`` when the provider id is given, as every SMS-channel
    reply); any later reply to the same request returns ``IGNORED`` and writes nothing
    (a conditional update decides between concurrent replies). Never commits.
    """
    digit = parse_digit_reply(text)
    if digit is None or not 1 <= digit <= 5:
        return None
    request = session.scalar(
        select(SurveySmsRequest)
        .where(
            SurveySmsRequest.phone_e164 == phone_e164,
            SurveySmsRequest.expires_at >= now,
            SurveySmsRequest.requested_at <= now,
        )
        .order_by(SurveySmsRequest.requested_at.desc(), SurveySmsRequest.id.desc())
        .limit(1)
    )
    if request is None:
        return None
    ticket = session.get(Ticket, request.ticket_id) if request.ticket_id is not None else None
    if request.answered_at is not None:
        return SurveyReply(SurveyReplyStatus.IGNORED, request, ticket)
    won = session.execute(
        update(SurveySmsRequest)
        .where(SurveySmsRequest.id == request.id, SurveySmsRequest.answered_at.is_(None))
        .values(answered_at=now, answer=digit, reply_ref=(reply_ref or None))
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    if getattr(won, "rowcount", 0) != 1:
        return SurveyReply(SurveyReplyStatus.IGNORED, request, ticket)
    record_answer(
        session,
        now,
        call_id=request.request_key,
        question_code=SATISFACTION,
        digit=digit,
        ticket_id=request.ticket_id,
        citizen_id=request.citizen_id,
        channel="sms",
    )
    outcome = apply_survey_answers(
        session, now=now, survey_key=request.request_key, ticket_id=request.ticket_id
    )
    thanks = outbox.enqueue(
        session,
        now,
        key=f"sms:reply:{reply_ref}" if reply_ref else f"{request.request_key}:thanks",
        channel=NotificationChannel.SMS,
        recipient=phone_e164,
        template=THANKS_TEMPLATE,
        language=request.language,
        payload={"reference_code": ticket.reference_code if ticket is not None else "-"},
        ticket=ticket,
    )
    return SurveyReply(SurveyReplyStatus.RECORDED, request, ticket, thanks, outcome)
