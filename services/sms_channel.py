"""The inbound SMS channel (R1.4, R2.2): ``<TC number> <message>`` to the short number.

:func:`handle_inbound_sms` decides what one citizen SMS means and does it inside the
caller's transaction:

- ``<TC number> <message>`` → a ticket through the one intake path
  (:func:`services.intake.open_ticket`, channel SMS, unclassified type ``genel`` for the
  coordination desk to classify); the acknowledgement SMS with the reference code is queued
  by the intake path itself;
- a reference code (optionally after ``durum``/``sorgu``/``status``) → the ticket's status,
  told only to a phone that reported the ticket or belongs to its citizen; anyone else gets
  the same neutral answer as for an unknown code, so nothing about other citizens leaks;
- a single digit from a number with an open SMS survey request → the survey answer
  (services.survey_sms.match_survey_reply: the first reply is stored and thanked, a later
  one ignored without a reply); from any other number it is handled as below;
- a missing or invalid TC number, or no message after it → a polite reply explaining the
  format.

Every reply is an SMS in the outbox with the key ``sms:reply:<provider message id>``; a
repeated provider message id (the SMSC re-delivering, a retried request) changes nothing.
Texts are Turkish unless the sender is known to prefer English or writes from a foreign
number. See docs/decisions/0015-sms-channel.md.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import (
    Channel,
    CitizenPhone,
    Language,
    Notification,
    NotificationChannel,
    Ticket,
    TicketContact,
    TicketStatus,
    TimelineAction,
)
from services import outbox, reference_code, timeline
from services.actors import system_actor
from services.citizens import citizens_by_phone
from services.errors import InvalidField, InvalidPhoneNumber, InvalidReferenceCode, InvalidTcNumber
from services.identity import normalise_phone, normalise_tc_number
from services.intake import IntakeResult, open_ticket
from services.intake_request import IntakeRequest
from services.survey_sms import match_survey_reply
from services.ticket_contacts import live_ticket
from services.ticket_states import STATUS_NAMES_TR

ACTOR_NAME = "sms"
MAX_PROVIDER_ID = 120  # TicketContact.external_ref

STATUS_NAMES_EN = {
    TicketStatus.NEW: "received",
    TicketStatus.FORWARDED: "forwarded to the department",
    TicketStatus.IN_PROGRESS: "in progress",
    TicketStatus.WAITING_ON_CITIZEN: "waiting for information from you",
    TicketStatus.REFERRED_EXTERNALLY: "referred to the responsible institution",
    TicketStatus.RESOLVED: "resolved",
    TicketStatus.CLOSED: "closed",
    TicketStatus.REOPENED: "reopened",
    TicketStatus.MERGED: "merged",
}


@dataclass(frozen=True)
class InboundSms:
    """One message a citizen sent to the short number, as the gateway received it."""

    sender: str  # as the provider gave it: "+905321234567", "905321234567", "0532 ..."
    text: str
    provider_message_id: str  # unique per message at the provider (prefixed by gateway)
    received_at: datetime


class InboundSmsResult(enum.StrEnum):
    TICKET_OPENED = "ticket_opened"
    CONTACT_ADDED = "contact_added"  # an open ticket of the citizen received the message
    STATUS_SENT = "status_sent"
    CODE_NOT_FOUND = "code_not_found"  # neutral reply: unknown code or not the sender's
    FORMAT_HELP_SENT = "format_help_sent"  # missing/invalid TC number or empty message
    DUPLICATE = "duplicate"  # provider message id seen before: nothing written
    UNREACHABLE_SENDER = "unreachable_sender"  # no phone number to answer: nothing written
    SURVEY_REPLY = "survey_reply"  # a digit answering an SMS survey (services.survey_sms)


@dataclass(frozen=True)
class InboundSmsOutcome:
    result: InboundSmsResult
    ticket: Ticket | None = None
    reply: Notification | None = None  # the reply or acknowledgement queued, if any
    reason: str | None = None  # internal detail (never sent): missing_tc, not_authorised...
    intake: IntakeResult | None = None


class SmsIntent(enum.StrEnum):
    REPORT = "report"
    STATUS_QUERY = "status_query"
    MISSING_TC = "missing_tc"
    INVALID_TC = "invalid_tc"
    MISSING_MESSAGE = "missing_message"


@dataclass(frozen=True)
class ParsedSms:
    intent: SmsIntent
    tc_number: str | None = None
    message: str = ""
    reference_code: str | None = None


_SPACES = re.compile(r"\s+")
_LEADING_NOISE = re.compile(r"^[^\w]+")
_TC_LABEL = re.compile(
    r"^(?:t\.?\s*c\.?(?:\s*k[iıİI]ml[iıİI]k)?(?:\s*no\.?|\s*numaras[ıiIİ]m?)?|tckn"
    r"|k[iıİI]ml[iıİI]k(?:\s*no\.?|\s*numaras[ıiIİ]m?)?)(?=[\s:=\-.#]|\d)\s*[:=\-#]?\s*",
    re.IGNORECASE,
)
_STATUS_WORD = re.compile(
    r"^(?:durum(?:u)?|sorgu(?:la)?|status|kod|ba[sş]vuru(?:\s*kodu)?)\b\s*[:=\-]?\s*",
    re.IGNORECASE,
)
_DIGIT_GROUP = re.compile(r"[0-9]+")
_NEXT_GROUP = re.compile(r"[ .\-]([0-9]+)")
_ANYWHERE_TC = re.compile(r"(?<![0-9])[0-9]{11}(?![0-9])")
_MESSAGE_LEAD = re.compile(r"^[\s:;,.\-–—=#/]+")
_CODE_CHARS = re.compile(r"^[0-9A-Za-z][0-9A-Za-z \-]{6,12}[0-9A-Za-z]$")
ATTEMPTED_TC_DIGITS = 7  # a leading number this long is a TC number typed wrong
# "... TC: " left at the end of a message once the number after it is taken out.
_TC_LABEL_TAIL = re.compile(
    r"[\s,;]*(?:t\.?\s*c\.?(?:\s*k[iıİI]ml[iıİI]k)?(?:\s*no\.?)?|tckn)\s*[:=\-#]?\s*$",
    re.IGNORECASE,
)


def _clean(text: str) -> str:
    normal = unicodedata.normalize("NFC", text or "")
    printable = "".join(ch if ch.isprintable() else " " for ch in normal)
    return _SPACES.sub(" ", printable).strip()


def _as_reference_code(text: str) -> str | None:
    candidate = _STATUS_WORD.sub("", text, count=1).strip().rstrip(".!?")
    if not _CODE_CHARS.match(candidate):
        return None
    try:
        return reference_code.normalise(candidate)
    except InvalidReferenceCode:
        return None


def _leading_digits(text: str) -> tuple[str, int] | None:
    """Digits of the number at the start of ``text`` (groups separated by one space, dot or
    dash, read until 11 digits), and where the rest begins."""
    first = _DIGIT_GROUP.match(text)
    if first is None:
        return None
    digits, end = first.group(), first.end()
    while len(digits) < 11:
        following = _NEXT_GROUP.match(text, end)
        if following is None:
            break
        digits += following.group(1)
        end = following.end()
    return digits, end


def _valid_tc(digits: str) -> str | None:
    try:
        return normalise_tc_number(digits)
    except InvalidTcNumber:
        return None


def _report(tc: str, message: str) -> ParsedSms:
    text = _MESSAGE_LEAD.sub("", message).strip()
    if not text:
        return ParsedSms(SmsIntent.MISSING_MESSAGE, tc_number=tc)
    return ParsedSms(SmsIntent.REPORT, tc_number=tc, message=text)


def parse_sms_text(text: str) -> ParsedSms:
    """What a citizen's SMS asks for. Pure: no database.

    Accepts ``12345678901 mesaj``, ``TC: 123 456 789 01 - mesaj``, ``"T.C. No 12345678901,
    mesaj"``, a message followed by the TC number, and a reference code alone (with or
    without ``durum``/``status`` before it). A leading number of 7 or more digits that is
    not a valid TC number, or an 11-digit number failing the checksum, is an invalid TC
    number (unless a valid one appears elsewhere in the text).
    """
    body = _LEADING_NOISE.sub("", _clean(text))
    code = _as_reference_code(body)
    if code is not None:
        return ParsedSms(SmsIntent.STATUS_QUERY, reference_code=code)
    after_label = _TC_LABEL.sub("", body, count=1)
    leading = _leading_digits(after_label)
    attempted = False
    if leading is not None and len(leading[0]) >= ATTEMPTED_TC_DIGITS:
        digits, end = leading
        tc = _valid_tc(digits)
        if tc is not None:
            return _report(tc, after_label[end:])
        attempted = True
    for found in _ANYWHERE_TC.finditer(body):  # tolerated: the TC number after the message
        tc = _valid_tc(found.group())
        if tc is not None:
            before = _TC_LABEL_TAIL.sub("", body[: found.start()])
            return _report(tc, f"{before} {body[found.end() :]}".strip())
        attempted = True
    if attempted:
        return ParsedSms(SmsIntent.INVALID_TC)
    return ParsedSms(SmsIntent.MISSING_TC, message=body)


def _reply_language(session: Session, e164: str) -> Language:
    holders = citizens_by_phone(session, e164)
    if len(holders) == 1:
        return holders[0].preferred_language
    return Language.TR if e164.startswith("+90") else Language.EN


def _may_see(session: Session, ticket: Ticket, e164: str) -> bool:
    """True when ``e164`` reported ``ticket`` or is a phone of the ticket's citizen."""
    reported = session.scalar(
        select(TicketContact.id)
        .where(
            or_(
                TicketContact.ticket_id == ticket.id, TicketContact.original_ticket_id == ticket.id
            ),
            TicketContact.phone_e164 == e164,
        )
        .limit(1)
    )
    if reported is not None:
        return True
    if ticket.citizen_id is None:
        return False
    owned = session.scalar(
        select(CitizenPhone.id)
        .where(CitizenPhone.citizen_id == ticket.citizen_id, CitizenPhone.e164 == e164)
        .limit(1)
    )
    return owned is not None


def handle_inbound_sms(session: Session, now: datetime, sms: InboundSms) -> InboundSmsOutcome:
    """Handle one SMS to the short number; see the module docstring.

    Guarantees (nothing is committed here): a provider message id seen before writes nothing
    and returns ``DUPLICATE``; a sender without a usable phone number writes nothing; every
    other message leads to exactly one ticket contact or exactly one reply in the outbox;
    ticket data is told only to the ticket's own phones. Raises :class:`InvalidField` for an
    empty or over-long provider message id and ``ValueError`` for a naive ``received_at``.
    """
    if now.tzinfo is None or sms.received_at.tzinfo is None:
        raise ValueError("now and received_at must be timezone-aware")
    provider_id = (sms.provider_message_id or "").strip()
    if not provider_id or len(provider_id) > MAX_PROVIDER_ID:
        raise InvalidField(
            "SMS sağlayıcı mesaj numarası boş ya da çok uzun.",
            "The provider message id is empty or too long.",
            field="provider_message_id",
        )
    reply_key = f"sms:reply:{provider_id}"
    seen_reply = session.scalar(
        select(Notification).where(Notification.idempotency_key == reply_key)
    )
    if seen_reply is not None:
        return InboundSmsOutcome(
            InboundSmsResult.DUPLICATE, ticket=seen_reply.ticket, reply=seen_reply
        )
    seen_contact = session.scalar(
        select(TicketContact).where(
            TicketContact.channel == Channel.SMS, TicketContact.external_ref == provider_id
        )
    )
    if seen_contact is not None:
        return InboundSmsOutcome(InboundSmsResult.DUPLICATE, ticket=seen_contact.ticket)
    try:
        phone = normalise_phone(sms.sender)
    except InvalidPhoneNumber:
        return InboundSmsOutcome(InboundSmsResult.UNREACHABLE_SENDER, reason="sender")

    parsed = parse_sms_text(sms.text)
    if parsed.intent is SmsIntent.REPORT:
        actor = system_actor(session, ACTOR_NAME, now)
        assert parsed.tc_number is not None
        result = open_ticket(
            session,
            actor,
            now,
            IntakeRequest(
                channel=Channel.SMS,
                tc_number=parsed.tc_number,
                phone=sms.sender,
                description=parsed.message,
                external_ref=provider_id,
                received_at=min(sms.received_at, now),
            ),
        )
        if result.replayed:  # a concurrent delivery of the same message won the race
            return InboundSmsOutcome(InboundSmsResult.DUPLICATE, ticket=result.ticket)
        return InboundSmsOutcome(
            InboundSmsResult.TICKET_OPENED if result.created else InboundSmsResult.CONTACT_ADDED,
            ticket=result.ticket,
            reply=result.acknowledgement,
            intake=result,
        )

    if parsed.intent is SmsIntent.MISSING_TC:  # a lone digit may answer an SMS survey (R5.2)
        survey = match_survey_reply(
            session, now=now, phone_e164=phone.e164, text=sms.text, reply_ref=provider_id
        )
        if survey is not None:
            return InboundSmsOutcome(
                InboundSmsResult.SURVEY_REPLY,
                ticket=survey.ticket,
                reply=survey.reply,
                reason=survey.status.value,
            )
    language = _reply_language(session, phone.e164)
    if parsed.intent is SmsIntent.STATUS_QUERY:
        assert parsed.reference_code is not None
        return _status_reply(session, now, phone.e164, parsed.reference_code, reply_key, language)
    template = (
        "sms_reply_invalid_tc" if parsed.intent is SmsIntent.INVALID_TC else "sms_reply_format"
    )
    reply = _reply(session, now, reply_key, phone.e164, template, language, {})
    return InboundSmsOutcome(
        InboundSmsResult.FORMAT_HELP_SENT, reply=reply, reason=parsed.intent.value
    )


def _reply(
    session: Session,
    now: datetime,
    key: str,
    e164: str,
    template: str,
    language: Language,
    payload: dict[str, Any],
    ticket: Ticket | None = None,
) -> Notification:
    return outbox.enqueue(
        session,
        now,
        key=key,
        channel=NotificationChannel.SMS,
        recipient=e164,
        template=template,
        language=language,
        payload=payload,
        ticket=ticket,
    )


def _status_reply(
    session: Session, now: datetime, e164: str, code: str, key: str, language: Language
) -> InboundSmsOutcome:
    ticket = session.scalar(select(Ticket).where(Ticket.reference_code == code))
    current = live_ticket(session, ticket) if ticket is not None else None
    if (
        ticket is None
        or current is None
        or not (
            _may_see(session, ticket, e164)
            or (current is not ticket and _may_see(session, current, e164))
        )
    ):
        reply = _reply(
            session, now, key, e164, "sms_reply_code_unknown", language, {"reference_code": code}
        )
        reason = "not_found" if ticket is None else "not_authorised"
        return InboundSmsOutcome(InboundSmsResult.CODE_NOT_FOUND, reply=reply, reason=reason)
    payload: dict[str, Any] = {
        "reference_code": code,
        "status": STATUS_NAMES_TR[current.status],
        "status_en": STATUS_NAMES_EN[current.status],
    }
    template = "sms_reply_status"
    if current.id != ticket.id:
        template = "sms_reply_status_merged"
        payload["merged_into"] = current.reference_code
    reply = _reply(session, now, key, e164, template, language, payload, ticket=current)
    timeline.record(
        session,
        current,
        system_actor(session, ACTOR_NAME, now),
        now,
        TimelineAction.NOTIFICATION_QUEUED,
        note="Vatandaş başvuru durumunu SMS ile sordu.",
        template=template,
        channel=NotificationChannel.SMS.value,
        key=key,
    )
    return InboundSmsOutcome(InboundSmsResult.STATUS_SENT, ticket=current, reply=reply)
