"""The survey's SMS fallback: "reply with a digit" (R5.2), on SQLite and PostgreSQL.

A survey target the dialer gave up on gets one SMS; the first digit reply from that number
within 7 days is the satisfaction answer (channel ``sms``); everything else an SMS can mean
(R1.4: ``<TC> <message>``, status by reference code, the format help) keeps working.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from messaging.sms_encoding import encode_sms
from models import (
    AttemptStatus,
    Campaign,
    CampaignKind,
    CampaignTarget,
    CampaignTargetStatus,
    Citizen,
    Language,
    Notification,
    NotificationChannel,
    StaffUser,
    SurveyAnswer,
    SurveyFollowUp,
    SurveyQuestion,
    SurveySmsRequest,
    Ticket,
    TicketStatus,
)
from services import outbox
from services.dialer import record_outcome
from services.intake import open_ticket
from services.message_templates import render
from services.sms_channel import InboundSms, InboundSmsResult, handle_inbound_sms
from services.survey_sms import (
    REPLY_WINDOW,
    SurveyReplyStatus,
    match_survey_reply,
    on_survey_target_exhausted,
    parse_digit_reply,
    request_key,
    request_sms_survey,
    send_missing_fallbacks,
)
from tests.factories import mobile, mobile_e164, request, valid_tc
from tests.outbound_factories import add_attempt, add_campaign, add_target, resolved_ticket

CONTEXT = {"municipality": "Açık Kapı Belediyesi", "call_centre": "444 80 07"}


def _resolved(session: Session, agent: StaffUser, now: datetime, seed: int) -> Ticket:
    return resolved_ticket(session, agent, now, seed, resolved_after=timedelta(hours=1))


def _campaign(session: Session, now: datetime, kind: CampaignKind) -> Campaign:
    return add_campaign(session, now, kind, name=f"Kampanya {kind.value}")


def _target(
    session: Session,
    now: datetime,
    campaign: Campaign,
    ticket: Ticket,
    seed: int,
    status: CampaignTargetStatus = CampaignTargetStatus.EXHAUSTED,
) -> CampaignTarget:
    return add_target(
        session,
        now,
        campaign.id,
        ticket,
        mobile_e164(seed),
        status,
        citizen_id=ticket.citizen_id,
        language=Language.TR,
        attempts=3,
        completed_at=now if status is CampaignTargetStatus.EXHAUSTED else None,
    )


def _sms(text: str, pid: str, now: datetime, seed: int) -> InboundSms:
    return InboundSms(sender=mobile(seed), text=text, provider_message_id=pid, received_at=now)


def _count(session: Session, model: type) -> int:
    session.flush()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _satisfaction(session: Session, key: str) -> list[SurveyAnswer]:
    return list(
        session.scalars(
            select(SurveyAnswer)
            .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
            .where(SurveyAnswer.call_id == key, SurveyQuestion.code == "satisfaction")
        )
    )


@pytest.mark.parametrize(
    ("text", "digit"),
    [("4", 4), (" 4 ", 4), ("\n1\t", 1), ("0", 0), ("45", None), ("4 5", None), ("", None)],
)
def test_a_reply_is_one_digit_with_optional_spaces(text: str, digit: int | None) -> None:
    assert parse_digit_reply(text) == digit


def test_an_exhausted_survey_target_is_asked_once_by_sms(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """R5.2 SMS fallback: the request SMS, once per ticket and SLA cycle."""
    ticket = _resolved(session, agent, now, 9201)
    survey = _campaign(session, now, CampaignKind.SURVEY)
    target = _target(session, now, survey, ticket, 9201)
    assert on_survey_target_exhausted(session, now=now, target=target)
    key = request_key(ticket)
    assert key == f"survey-sms:{ticket.id}:{ticket.sla_cycle}"
    sms = session.scalar(select(Notification).where(Notification.idempotency_key == key))
    assert sms is not None
    assert (sms.channel, sms.recipient, sms.template, sms.ticket_id) == (
        NotificationChannel.SMS,
        mobile_e164(9201),
        "survey_sms_request",
        ticket.id,
    )
    for language in ("tr", "en"):
        text = render(sms.template, language, {**CONTEXT, **sms.payload})
        assert ticket.reference_code is not None and ticket.reference_code in text
        assert "1" in text and "5" in text
        assert len(encode_sms(text).parts) <= 2  # Turkish text is UCS-2: two parts at most
    request_row = session.scalar(
        select(SurveySmsRequest).where(SurveySmsRequest.request_key == key)
    )
    assert request_row is not None and request_row.target_id == target.id
    assert request_row.expires_at == now + REPLY_WINDOW and request_row.notification_id == sms.id
    # Again (the dialer's hook and the safety net both fire): nothing new.
    notifications = _count(session, Notification)
    assert not on_survey_target_exhausted(session, now=now, target=target)
    assert not request_sms_survey(session, now=now, ticket=ticket)
    assert send_missing_fallbacks(session, now=now).written == 0
    assert _count(session, Notification) == notifications


def test_only_exhausted_survey_targets_of_resolved_tickets_with_consent_are_asked(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _resolved(session, agent, now, 9202)
    callback = _campaign(session, now, CampaignKind.CALLBACK)
    assert not on_survey_target_exhausted(
        session, now=now, target=_target(session, now, callback, ticket, 9202)
    )
    survey = _campaign(session, now, CampaignKind.SURVEY)
    pending = _target(session, now, survey, ticket, 9202, CampaignTargetStatus.PENDING)
    assert not on_survey_target_exhausted(session, now=now, target=pending)
    citizen = session.get(Citizen, ticket.citizen_id)
    assert citizen is not None
    citizen.consent_sms = False
    assert not request_sms_survey(session, now=now, ticket=ticket)
    citizen.consent_sms = True
    open_one = open_ticket(
        session, agent, now, request(tc_number=valid_tc(9203), phone=mobile(9203))
    ).ticket
    assert not request_sms_survey(session, now=now, ticket=open_one)  # not resolved
    assert not request_sms_survey(session, now=now, ticket=ticket, phone_e164="+902164386293")
    assert _count(session, SurveySmsRequest) == 0


def test_the_safety_net_asks_exhausted_targets_the_dialer_did_not(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    survey = _campaign(session, now, CampaignKind.SURVEY)
    recent = _resolved(session, agent, now, 9204)
    _target(session, now, survey, recent, 9204)
    old = _resolved(session, agent, now, 9205)
    stale = _target(session, now, survey, old, 9205)
    stale.completed_at = now - REPLY_WINDOW - timedelta(days=1)  # too late to ask
    batch = send_missing_fallbacks(session, now=now)
    assert batch.written == 1
    asked = set(session.scalars(select(SurveySmsRequest.ticket_id)))
    assert recent.id in asked and old.id not in asked
    assert send_missing_fallbacks(session, now=now).written == 0  # idempotent


def _asked(session: Session, agent: StaffUser, now: datetime, seed: int) -> Ticket:
    ticket = _resolved(session, agent, now, seed)
    assert request_sms_survey(session, now=now, ticket=ticket)
    return ticket


def test_a_digit_reply_is_the_satisfaction_answer_and_the_first_one_wins(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """R5.2: "reply with a digit" → stored with channel sms; a second reply is ignored."""
    ticket = _asked(session, agent, now, 9206)
    key = request_key(ticket)
    later = now + timedelta(hours=3)
    outcome = handle_inbound_sms(session, later, _sms(" 4 ", "sv-sms-1", later, 9206))
    assert outcome.result is InboundSmsResult.SURVEY_REPLY
    assert outcome.reason == SurveyReplyStatus.RECORDED.value
    assert outcome.ticket is not None and outcome.ticket.id == ticket.id
    [answer] = _satisfaction(session, key)
    assert (answer.answer, answer.channel, answer.ticket_id, answer.attempt_id) == (
        4,
        "sms",
        ticket.id,
        None,
    )
    thanks = outcome.reply
    assert thanks is not None and thanks.idempotency_key == "sms:reply:sv-sms-1"
    assert thanks.template == "survey_sms_thanks" and thanks.recipient == mobile_e164(9206)
    for language in ("tr", "en"):
        text = render(thanks.template, language, {**CONTEXT, **thanks.payload})
        assert len(encode_sms(text).parts) == 1
    assert ticket.status is TicketStatus.RESOLVED  # a good score changes nothing else
    notifications = _count(session, Notification)
    # The provider re-delivers the same message: a duplicate.
    again = handle_inbound_sms(session, later, _sms(" 4 ", "sv-sms-1", later, 9206))
    assert again.result is InboundSmsResult.DUPLICATE
    # A second reply: ignored, no answer changed, nothing sent.
    second = handle_inbound_sms(session, later, _sms("1", "sv-sms-2", later, 9206))
    assert second.result is InboundSmsResult.SURVEY_REPLY and second.reply is None
    assert second.reason == SurveyReplyStatus.IGNORED.value
    assert [a.answer for a in _satisfaction(session, key)] == [4]
    assert _count(session, Notification) == notifications
    assert _count(session, SurveyFollowUp) == 0


def test_a_low_digit_reply_opens_a_supervisor_follow_up(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _asked(session, agent, now, 9207)
    reply = match_survey_reply(
        session, now=now, phone_e164=mobile_e164(9207), text="1", reply_ref="sv-sms-3"
    )
    assert reply is not None and reply.status is SurveyReplyStatus.RECORDED
    assert reply.outcome is not None and reply.outcome.follow_up_id is not None
    follow_up = session.get(SurveyFollowUp, reply.outcome.follow_up_id)
    assert follow_up is not None
    assert (follow_up.ticket_id, follow_up.score, follow_up.channel, follow_up.kind) == (
        ticket.id,
        1,
        "sms",
        "low_score",
    )


def test_tc_and_message_and_status_queries_still_work_for_an_asked_number(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """R1.4 is untouched: only a lone digit is a survey reply."""
    ticket = _asked(session, agent, now, 9208)
    report = handle_inbound_sms(
        session, now, _sms(f"{valid_tc(9290)} Parkta lamba yanmıyor", "sv-sms-4", now, 9208)
    )
    assert report.result is InboundSmsResult.TICKET_OPENED
    assert report.ticket is not None and report.ticket.id != ticket.id
    assert ticket.reference_code is not None
    status = handle_inbound_sms(session, now, _sms(ticket.reference_code, "sv-sms-5", now, 9208))
    assert status.result is InboundSmsResult.STATUS_SENT
    assert _satisfaction(session, request_key(ticket)) == []
    out_of_range = handle_inbound_sms(session, now, _sms("9", "sv-sms-6", now, 9208))
    assert out_of_range.result is InboundSmsResult.FORMAT_HELP_SENT


def test_a_digit_from_an_unknown_number_or_too_late_gets_the_format_reply(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    stranger = handle_inbound_sms(session, now, _sms("3", "sv-sms-7", now, 9299))
    assert stranger.result is InboundSmsResult.FORMAT_HELP_SENT
    assert stranger.reply is not None and stranger.reply.template == "sms_reply_format"
    ticket = _asked(session, agent, now, 9209)
    too_late = now + REPLY_WINDOW + timedelta(minutes=1)
    late = handle_inbound_sms(session, too_late, _sms("3", "sv-sms-8", too_late, 9209))
    assert late.result is InboundSmsResult.FORMAT_HELP_SENT
    assert _satisfaction(session, request_key(ticket)) == []


def test_the_dialer_exhausting_a_survey_target_leads_to_the_sms(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """With the dialer's own outcome (decision 0021): the last unanswered attempt leaves the
    target exhausted, and the hook the dialer calls then asks by SMS."""
    ticket = _resolved(session, agent, now, 9210)
    survey = _campaign(session, now, CampaignKind.SURVEY)
    survey.max_attempts = 1
    target = _target(session, now, survey, ticket, 9210, CampaignTargetStatus.DIALING)
    target.attempts = 1
    attempt = add_attempt(session, now, target)
    assert record_outcome(session, now=now, attempt_id=attempt.id, outcome=AttemptStatus.NO_ANSWER)
    session.refresh(target)
    assert target.status is CampaignTargetStatus.EXHAUSTED and target.completed_at == now
    # record_outcome called the hook itself: the SMS is queued, and asking again adds nothing.
    assert outbox.queued(session, request_key(ticket)) is not None
    assert not on_survey_target_exhausted(session, now=now, target=target)
    assert send_missing_fallbacks(session, now=now).written == 0
