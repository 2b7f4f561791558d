"""The inbound SMS channel (R1.4, R2.2) and SMS delivery receipts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Citizen,
    CitizenPhone,
    Language,
    Notification,
    NotificationChannel,
    OutboxStatus,
    PhoneType,
    StaffUser,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services import reference_code
from services.errors import InvalidField
from services.intake import open_ticket
from services.message_templates import render
from services.sms_channel import (
    InboundSms,
    InboundSmsResult,
    SmsIntent,
    handle_inbound_sms,
    parse_sms_text,
)
from services.sms_delivery_reports import ReportOutcome, record_delivery_report
from services.ticket_workflow import merge_tickets
from tests.factories import add_citizen, mobile, mobile_e164, request, valid_tc

TC = valid_tc(7001)
CONTEXT = {"municipality": "Açık Kapı Belediyesi", "call_centre": "444 80 07"}


def _bad_tc(tc: str) -> str:
    return tc[:-1] + str((int(tc[-1]) + 1) % 10)


# --- parsing (pure) ---


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{TC} Sokak lambası yanmıyor", "Sokak lambası yanmıyor"),
        (f"  {TC}   Sokak   lambası\nyanmıyor.  ", "Sokak lambası yanmıyor."),
        (f"TC: {TC[:3]} {TC[3:6]} {TC[6:9]} {TC[9:]} - Çöpler alınmadı", "Çöpler alınmadı"),
        (f'"T.C. Kimlik No: {TC}, Parkta ışık yok"', 'Parkta ışık yok"'),
        (f"TC KİMLİK NO {TC} İmar durumu", "İmar durumu"),
        (f"tckn:{TC} gürültü şikayeti", "gürültü şikayeti"),
        (f"{TC}Çukur var", "Çukur var"),
        (f"Sokak lambası yanmıyor {TC}", "Sokak lambası yanmıyor"),
        (f"Sokak lambası yanmıyor, TC: {TC}", "Sokak lambası yanmıyor"),
        (f"{TC} 23 numaralı evin önü", "23 numaralı evin önü"),
        (f"0532 123 45 67 numaradan aradım {TC}", "0532 123 45 67 numaradan aradım"),
    ],
)
def test_a_tc_number_and_a_message_is_a_report(text: str, message: str) -> None:
    parsed = parse_sms_text(text)
    assert (parsed.intent, parsed.tc_number, parsed.message) == (SmsIntent.REPORT, TC, message)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Sokak lambası yanmıyor", SmsIntent.MISSING_TC),
        ("5 gündür çöpler alınmıyor", SmsIntent.MISSING_TC),
        ("", SmsIntent.MISSING_TC),
        ("   ...   ", SmsIntent.MISSING_TC),
        (f"{_bad_tc(TC)} Sokak lambası yanmıyor", SmsIntent.INVALID_TC),
        (f"{TC[:10]} Sokak lambası yanmıyor", SmsIntent.INVALID_TC),
        (f"{TC}9 Sokak lambası yanmıyor", SmsIntent.INVALID_TC),
        ("0532 123 45 67 Sokak lambası yanmıyor", SmsIntent.INVALID_TC),
        (f"Lamba yanmıyor {_bad_tc(TC)}", SmsIntent.INVALID_TC),
        (TC, SmsIntent.MISSING_MESSAGE),
        (f"TC: {TC} .", SmsIntent.MISSING_MESSAGE),
    ],
)
def test_what_is_not_a_report(text: str, intent: SmsIntent) -> None:
    assert parse_sms_text(text).intent is intent


@pytest.mark.parametrize("form", ["{c}", "{l}", "durum {l}", "Durum: {n}", "STATUS {c}."])
def test_a_reference_code_asks_for_the_status(form: str) -> None:
    code = reference_code.encode(4242)
    text = form.format(c=code, l=code.lower(), n=code.replace("-", ""))
    parsed = parse_sms_text(text)
    assert (parsed.intent, parsed.reference_code) == (SmsIntent.STATUS_QUERY, code)


def test_a_mistyped_reference_code_is_not_a_status_query() -> None:
    code = reference_code.encode(4242)
    wrong = code[:-1] + ("2" if code[-1] != "2" else "3")
    assert parse_sms_text(wrong).intent is SmsIntent.MISSING_TC


@given(
    st.integers(1, 899_999_999),
    st.text(
        alphabet="abcçdefgğhıijklmnoöprsştuüvyzABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZ .,!?'", max_size=200
    ),
)
def test_any_turkish_message_after_a_valid_tc_is_kept(seed: int, message: str) -> None:
    tc = valid_tc(seed)
    parsed = parse_sms_text(f"{tc} {message}")
    expected = " ".join(message.split()).lstrip(" ,.")
    if expected:
        assert (parsed.intent, parsed.tc_number, parsed.message) == (
            SmsIntent.REPORT,
            tc,
            expected,
        )
    else:
        assert parsed.intent is SmsIntent.MISSING_MESSAGE


# --- the channel (database) ---


def _counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Ticket, TicketContact, Notification, TicketEvent, Citizen, CitizenPhone)
    }


def _inbound(text: str, pid: str, now: datetime, sender: str = mobile(7001)) -> InboundSms:
    return InboundSms(
        sender=sender, text=text, provider_message_id=pid, received_at=now - timedelta(seconds=5)
    )


def test_tc_and_message_open_a_ticket_acknowledged_by_sms(session: Session, now: datetime) -> None:
    outcome = handle_inbound_sms(
        session, now, _inbound(f"{TC} Sokağımızdaki lamba yanmıyor", "smpp-1", now)
    )
    assert outcome.result is InboundSmsResult.TICKET_OPENED
    ticket = outcome.ticket
    assert ticket is not None and ticket.reference_code is not None
    assert ticket.channel is Channel.SMS
    assert ticket.ticket_type.code == "genel"  # unclassified: the coordination desk decides
    assert ticket.description == "Sokağımızdaki lamba yanmıyor"
    assert ticket.received_by.username == "system.sms"
    assert ticket.received_at == now - timedelta(seconds=5)
    assert ticket.citizen is not None and ticket.citizen.tc_number == TC
    [contact] = ticket.contacts
    assert (contact.channel, contact.external_ref, contact.phone_e164) == (
        Channel.SMS,
        "smpp-1",
        mobile_e164(7001),
    )
    ack = outcome.reply
    assert ack is not None
    assert (ack.channel, ack.recipient, ack.template) == (
        NotificationChannel.SMS,
        mobile_e164(7001),
        "ticket_opened",
    )
    assert ack.payload["reference_code"] == ticket.reference_code
    assert ticket.reference_code in render(ack.template, "tr", {**CONTEXT, **ack.payload})


def test_a_repeated_provider_message_id_changes_nothing(session: Session, now: datetime) -> None:
    first = handle_inbound_sms(session, now, _inbound(f"{TC} Lamba yanmıyor", "smpp-2", now))
    session.flush()
    before = _counts(session)
    for text in (f"{TC} Lamba yanmıyor", "bambaşka bir metin"):
        again = handle_inbound_sms(
            session, now + timedelta(minutes=1), _inbound(text, "smpp-2", now)
        )
        assert again.result is InboundSmsResult.DUPLICATE
        assert again.ticket is not None and first.ticket is not None
        assert again.ticket.id == first.ticket.id
        session.flush()
        assert _counts(session) == before


def test_a_second_message_of_the_citizen_joins_the_open_unclassified_ticket(
    session: Session, now: datetime
) -> None:
    first = handle_inbound_sms(session, now, _inbound(f"{TC} Lamba yanmıyor", "p-1", now))
    second = handle_inbound_sms(session, now, _inbound(f"{TC} Hâlâ yanmıyor", "p-2", now))
    assert second.result is InboundSmsResult.CONTACT_ADDED
    assert second.ticket is first.ticket
    assert second.reply is not None and second.reply.template == "ticket_contact_added"
    assert first.ticket is not None and len(first.ticket.contacts) == 2


@pytest.mark.parametrize(
    ("text", "template", "reason"),
    [
        ("Lamba yanmıyor", "sms_reply_format", "missing_tc"),
        (f"{_bad_tc(TC)} Lamba yanmıyor", "sms_reply_invalid_tc", "invalid_tc"),
        (TC, "sms_reply_format", "missing_message"),
    ],
)
def test_a_message_without_a_usable_tc_gets_a_polite_format_reply_once(
    session: Session, now: datetime, text: str, template: str, reason: str
) -> None:
    before = _counts(session)
    outcome = handle_inbound_sms(session, now, _inbound(text, "p-fmt", now))
    assert (outcome.result, outcome.reason, outcome.ticket) == (
        InboundSmsResult.FORMAT_HELP_SENT,
        reason,
        None,
    )
    reply = outcome.reply
    assert reply is not None
    assert (reply.idempotency_key, reply.recipient, reply.template, reply.language) == (
        "sms:reply:p-fmt",
        mobile_e164(7001),
        template,
        Language.TR,
    )
    assert reply.status is OutboxStatus.PENDING and reply.ticket_id is None
    text_tr = render(reply.template, "tr", {**CONTEXT, **reply.payload})
    assert "TC kimlik numaranızı" in text_tr and "Örnek" in text_tr
    session.flush()
    after = _counts(session)
    assert after == {**before, "notifications": before["notifications"] + 1}
    again = handle_inbound_sms(session, now, _inbound(text, "p-fmt", now))
    assert again.result is InboundSmsResult.DUPLICATE
    session.flush()
    assert _counts(session) == after


def test_foreign_numbers_and_english_speakers_are_answered_in_english(
    session: Session, now: datetime
) -> None:
    foreign = handle_inbound_sms(session, now, _inbound("hello", "p-en1", now, "+44 7911 123456"))
    assert foreign.reply is not None and foreign.reply.language is Language.EN
    add_citizen(session, now, mobile_e164(7002), preferred_language=Language.EN)
    known = handle_inbound_sms(session, now, _inbound("hello", "p-en2", now, mobile(7002)))
    assert known.reply is not None and known.reply.language is Language.EN
    local = handle_inbound_sms(session, now, _inbound("merhaba", "p-tr", now, mobile(7003)))
    assert local.reply is not None and local.reply.language is Language.TR


def _reported_ticket(session: Session, agent: StaffUser, now: datetime, seed: int) -> Ticket:
    result = open_ticket(
        session,
        agent,
        now,
        request(Channel.PHONE, tc_number=valid_tc(seed), phone=mobile(seed)),
    )
    return result.ticket


def test_texting_a_reference_code_returns_the_status_to_the_reporter(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _reported_ticket(session, agent, now, 7100)
    code = ticket.reference_code
    assert code is not None
    outcome = handle_inbound_sms(
        session, now, _inbound(f"durum {code.lower()}", "p-st", now, mobile(7100))
    )
    assert outcome.result is InboundSmsResult.STATUS_SENT and outcome.ticket is ticket
    reply = outcome.reply
    assert reply is not None and reply.template == "sms_reply_status"
    assert reply.ticket_id == ticket.id and reply.idempotency_key == "sms:reply:p-st"
    assert reply.payload == {"reference_code": code, "status": "yeni", "status_en": "received"}
    text = render(reply.template, "tr", {**CONTEXT, **reply.payload})
    assert code in text and "yeni" in text
    events = session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == TimelineAction.NOTIFICATION_QUEUED,
        )
    ).all()
    assert any(e.data.get("key") == "sms:reply:p-st" for e in events)


def test_another_phone_of_the_same_citizen_may_ask_too(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _reported_ticket(session, agent, now, 7200)
    assert ticket.citizen_id is not None
    session.add(
        CitizenPhone(
            citizen_id=ticket.citizen_id,
            e164=mobile_e164(7201),
            raw=mobile(7201),
            phone_type=PhoneType.MOBILE,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    outcome = handle_inbound_sms(
        session, now, _inbound(str(ticket.reference_code), "p-own", now, mobile(7201))
    )
    assert outcome.result is InboundSmsResult.STATUS_SENT


def test_a_stranger_gets_the_same_neutral_answer_as_for_an_unknown_code(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _reported_ticket(session, agent, now, 7300)
    real = str(ticket.reference_code)
    unknown = reference_code.encode(27_000_000_000)
    assert session.scalar(select(Ticket).where(Ticket.reference_code == unknown)) is None
    outcomes = [
        handle_inbound_sms(session, now, _inbound(code, f"p-{i}", now, mobile(7399)))
        for i, code in enumerate((real, unknown))
    ]
    assert [o.result for o in outcomes] == [InboundSmsResult.CODE_NOT_FOUND] * 2
    assert [o.reason for o in outcomes] == ["not_authorised", "not_found"]
    replies = [o.reply for o in outcomes]
    assert all(r is not None for r in replies)
    stranger, nobody = replies  # what leaves the system differs only in the typed code
    assert stranger is not None and nobody is not None
    assert (stranger.template, stranger.ticket_id, stranger.payload) == (
        nobody.template,
        None,
        {"reference_code": real},
    )
    assert nobody.payload == {"reference_code": unknown}
    assert outcomes[0].ticket is None
    text = render(stranger.template, "tr", {**CONTEXT, **stranger.payload})
    assert "yeni" not in text and ticket.description not in text


def test_a_merged_ticket_reports_the_ticket_it_was_merged_into(
    session: Session, agent: StaffUser, supervisor: StaffUser, now: datetime
) -> None:
    duplicate = _reported_ticket(session, agent, now, 7400)
    target = open_ticket(
        session,
        agent,
        now,
        request(Channel.DESK, tc_number=valid_tc(7401), ticket_type_code="sikayet"),
    ).ticket
    merge_tickets(session, supervisor, now, duplicate, target)
    outcome = handle_inbound_sms(
        session, now, _inbound(str(duplicate.reference_code), "p-merged", now, mobile(7400))
    )
    assert outcome.result is InboundSmsResult.STATUS_SENT and outcome.ticket is target
    reply = outcome.reply
    assert reply is not None and reply.template == "sms_reply_status_merged"
    assert reply.payload["merged_into"] == target.reference_code
    assert reply.payload["reference_code"] == duplicate.reference_code
    assert duplicate.status is TicketStatus.MERGED


@pytest.mark.parametrize("sender", ["TURKCELL", "", "anonymous", "12"])
def test_a_sender_we_cannot_answer_writes_nothing(
    session: Session, now: datetime, sender: str
) -> None:
    before = _counts(session)
    outcome = handle_inbound_sms(session, now, _inbound(f"{TC} Lamba", "p-x", now, sender))
    assert outcome.result is InboundSmsResult.UNREACHABLE_SENDER
    session.flush()
    assert _counts(session) == before


def test_a_clock_ahead_of_ours_is_clamped_and_bad_ids_are_refused(
    session: Session, now: datetime
) -> None:
    ahead = InboundSms(mobile(7001), f"{TC} Lamba", "p-future", now + timedelta(hours=2))
    outcome = handle_inbound_sms(session, now, ahead)
    assert outcome.ticket is not None and outcome.ticket.received_at == now
    for pid in ("", "   ", "x" * 121):
        with pytest.raises(InvalidField):
            handle_inbound_sms(session, now, _inbound(f"{TC} Lamba", pid, now))
    with pytest.raises(ValueError):
        handle_inbound_sms(
            session, now, InboundSms(mobile(7001), "x", "p-naive", now.replace(tzinfo=None))
        )


# --- delivery receipts ---


def _sent_ack(session: Session, now: datetime, seed: int, provider_id: str) -> Notification:
    outcome = handle_inbound_sms(
        session, now, _inbound(f"{valid_tc(seed)} Lamba yanmıyor", f"p-{seed}", now, mobile(seed))
    )
    ack = outcome.reply
    assert ack is not None
    ack.status, ack.sent_at, ack.provider_message_id = OutboxStatus.SENT, now, provider_id
    session.flush()
    return ack


def _failure_notes(session: Session, ticket_id: int | None) -> int:
    return len(
        session.scalars(
            select(TicketEvent).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.action == TimelineAction.NOTE
            )
        ).all()
    )


def test_a_delivery_receipt_marks_the_sms_delivered_once(session: Session, now: datetime) -> None:
    ack = _sent_ack(session, now, 7500, "msg7500")
    done = now + timedelta(minutes=1)
    first = record_delivery_report(session, now + timedelta(minutes=2), "msg7500", "DELIVRD", done)
    assert first.outcome is ReportOutcome.RECORDED and first.notification is ack
    assert (ack.delivery_status, ack.delivered_at) == ("delivered", done)
    for state in ("DELIVRD", "ENROUTE", "UNDELIV"):  # repeats and late receipts change nothing
        later = record_delivery_report(session, now + timedelta(hours=1), "msg7500", state, None)
        assert later.outcome is ReportOutcome.UNCHANGED
    assert (ack.delivery_status, ack.delivered_at) == ("delivered", done)
    assert ack.status is OutboxStatus.SENT


def test_an_intermediate_state_gives_way_to_the_final_one(session: Session, now: datetime) -> None:
    ack = _sent_ack(session, now, 7501, "msg7501")
    assert record_delivery_report(session, now, "msg7501", "enroute", None).outcome is (
        ReportOutcome.RECORDED
    )
    assert (ack.delivery_status, ack.delivered_at) == ("enroute", None)
    record_delivery_report(session, now, "msg7501", "delivered", None)
    assert (ack.delivery_status, ack.delivered_at) == ("delivered", now)


def test_an_undelivered_sms_is_noted_on_the_ticket_once(session: Session, now: datetime) -> None:
    ack = _sent_ack(session, now, 7502, "msg7502")
    before = _failure_notes(session, ack.ticket_id)
    record_delivery_report(session, now, "msg7502", "UNDELIV", now)
    record_delivery_report(session, now, "msg7502", "UNDELIV", now)
    session.flush()
    assert (ack.delivery_status, ack.delivered_at) == ("undeliverable", None)
    assert _failure_notes(session, ack.ticket_id) == before + 1


def test_a_receipt_for_an_unknown_message_writes_nothing(session: Session, now: datetime) -> None:
    _sent_ack(session, now, 7503, "msg7503")
    session.flush()
    before = _counts(session)
    outcome = record_delivery_report(session, now, "msg-not-ours", "DELIVRD", now)
    assert outcome.outcome is ReportOutcome.UNKNOWN_MESSAGE and outcome.notification is None
    session.flush()
    assert _counts(session) == before
    with pytest.raises(InvalidField):
        record_delivery_report(session, now, "msg7503", "LOST-IN-SPACE", now)
