"""Call records from normalised call facts (R1.2, R4.2, R4.4, R4.6, R5.3).

The AMI listener turns Asterisk events into the small *facts* defined here (one inbound
conversation = one ``call_id``) and applies them with :func:`apply_fact` inside a transaction
it owns. This module knows nothing about AMI, asyncio or Redis.

Guarantees of :func:`apply_fact` (all within the caller's transaction; nothing is committed):

- **Idempotent**: applying a fact stream a second time leaves every row as it was. Times move
  only monotonically (``started_at``/``entered_at``/``answered_at`` keep the earliest value,
  ``ended_at`` the latest), the outcome only moves up :data:`OUTCOME_RANK`, transfer-chain
  entries are de-duplicated, ``updated_at`` is the latest event time (never the wall clock),
  tickets go through the idempotent ``(channel, external_ref)`` of the one intake path and
  callback tasks are unique per ``(call_id, reason)``.
- **Order tolerant**: facts that arrive late (``queue_log`` reconciliation after a restart)
  complete a record without undoing what live events already wrote.
- When an agent answers (:class:`AgentAnswered`) the ticket is opened or attached through
  :func:`services.intake.open_ticket` (channel phone, or switchboard for calls that came
  through the switchboard; received by the agent whose ``sip_extension`` matches the agent
  interface, else by ``system.ami``; ``external_ref`` = call id) and the record is linked to
  the ticket and its citizen. A ticket that intake refuses leaves the record intact with a note.
- An abandoned call becomes one :class:`~models.CallbackTask` (reason ``abandoned``) when the
  caller's number is usable; a withheld or invalid number gets no task and the record's
  ``note`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    CallbackReason,
    CallbackStatus,
    CallbackTask,
    CallOutcome,
    CallRecord,
    Channel,
    Citizen,
    Language,
    StaffUser,
    Ticket,
)
from services.actors import system_actor
from services.errors import DomainError
from services.identity import NormalisedPhone, normalise_phone
from services.intake import open_ticket
from services.intake_request import IntakeRequest

log = logging.getLogger(__name__)

CALLBACK_DELAY = timedelta(minutes=15)  # an abandoned caller is called back within this
MAX_CHAIN = 20  # transfer-chain entries kept per call (loops must not grow a row forever)

# Higher rank wins; equal rank keeps the first. Replays and late facts cannot regress a call.
OUTCOME_RANK: dict[CallOutcome, int] = {
    CallOutcome.IN_PROGRESS: 0,
    CallOutcome.ABANDONED: 1,
    CallOutcome.OVERFLOW: 1,
    CallOutcome.OUT_OF_HOURS: 1,
    # What the caller chose after nobody could answer says more than why nobody could.
    CallOutcome.VOICEMAIL: 2,
    CallOutcome.CALLBACK_REQUESTED: 2,
    CallOutcome.ANSWERED: 3,
    CallOutcome.TRANSFERRED: 4,
}


# --- facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStarted:
    """The citizen's inbound leg exists (first sight of the call)."""

    call_id: str
    at: datetime
    caller_raw: str | None
    caller_name: str | None = None
    channel: str | None = None
    linked_id: str | None = None
    dialled: str | None = None
    language: str | None = None
    via_switchboard: bool = False


@dataclass(frozen=True)
class CallDetails:
    """Channel variables of the inbound leg changed (IVR language, dialled number, AGI)."""

    call_id: str
    at: datetime
    dialled: str | None = None
    language: str | None = None
    via_switchboard: bool | None = None
    citizen_hint: str | None = None  # AK_CITIZEN_ID set by the FastAGI caller lookup
    nobody_reason: str | None = None  # AK_NOBODY_REASON: out_of_hours / ivr_request
    message_path: str | None = None  # AK_MESSAGE: voice message, relative to the spool
    callback_id: str | None = None  # AK_CALLBACK_ID: callback task created by the IVR


@dataclass(frozen=True)
class QueueJoined:
    call_id: str
    at: datetime
    queue: str
    position: int | None = None


@dataclass(frozen=True)
class AgentAnswered:
    call_id: str
    at: datetime
    agent_interface: str
    hold_seconds: int | None = None
    queue: str | None = None
    member_name: str | None = None


@dataclass(frozen=True)
class AgentCompleted:
    """The queue agent's part ended (AgentComplete / COMPLETEAGENT / COMPLETECALLER)."""

    call_id: str
    at: datetime
    talk_seconds: int | None
    hold_seconds: int | None = None
    reason: str | None = None  # caller / agent / transfer


@dataclass(frozen=True)
class Transferred:
    call_id: str
    at: datetime
    kind: str  # "blind" | "attended"
    from_: str | None
    to: str | None


@dataclass(frozen=True)
class Abandoned:
    """The caller hung up while waiting in the queue."""

    call_id: str
    at: datetime
    hold_seconds: int | None = None
    queue: str | None = None
    position: int | None = None


@dataclass(frozen=True)
class QueueExited:
    """The caller left the queue without an agent (timeout, empty queue): overflow."""

    call_id: str
    at: datetime
    reason: str
    hold_seconds: int | None = None
    queue: str | None = None


@dataclass(frozen=True)
class RecordingStarted:
    call_id: str
    at: datetime
    path: str


@dataclass(frozen=True)
class CallEnded:
    """The citizen's leg hung up."""

    call_id: str
    at: datetime
    cause: str | None = None


CallFact = (
    CallStarted
    | CallDetails
    | QueueJoined
    | AgentAnswered
    | AgentCompleted
    | Transferred
    | Abandoned
    | QueueExited
    | RecordingStarted
    | CallEnded
)


@dataclass(frozen=True)
class ScreenPop:
    """What the agent console needs the moment an agent answers (published after commit)."""

    call_id: str
    agent_id: int | None
    agent_interface: str
    caller_e164: str | None
    caller_raw: str | None
    citizen_id: int | None
    ticket_id: int | None
    reference_code: str | None
    at: datetime

    def as_message(self) -> dict[str, Any]:
        return {
            "type": "screen_pop",
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "agent_interface": self.agent_interface,
            "caller_e164": self.caller_e164,
            "caller_raw": self.caller_raw,
            "citizen_id": self.citizen_id,
            "ticket_id": self.ticket_id,
            "reference_code": self.reference_code,
            "at": self.at.isoformat(),
        }


@dataclass
class ApplyResult:
    record: CallRecord
    screen_pop: ScreenPop | None = None
    callback_created: bool = False
    notes: list[str] = field(default_factory=list)


# --- helpers -----------------------------------------------------------------------------


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def usable_phone(raw: str | None) -> NormalisedPhone | None:
    """The caller's number in E.164, or ``None`` when withheld or not a valid number."""
    if raw is None:
        return None
    try:
        return normalise_phone(raw)
    except DomainError:
        return None


def extension_of(interface: str | None) -> str | None:
    """``PJSIP/1001`` or ``PJSIP/1001-0000000a`` -> ``1001``."""
    if not interface or "/" not in interface:
        return None
    tail = interface.split("/", 1)[1]
    return tail.split("-", 1)[0].split("@", 1)[0] or None


def staff_for_interface(session: Session, interface: str | None) -> StaffUser | None:
    extension = extension_of(interface)
    if extension is None:
        return None
    return session.scalar(
        select(StaffUser).where(StaffUser.sip_extension == extension, StaffUser.is_active)
    )


def _language(value: str | None) -> Language | None:
    try:
        return Language(value.strip().lower()) if value else None
    except ValueError:
        return None


def _add_note(record: CallRecord, text: str) -> None:
    notes = [n for n in (record.note or "").split("; ") if n]
    if text not in notes:
        notes.append(text)
    record.note = "; ".join(notes)[:300]


def _raise_outcome(record: CallRecord, outcome: CallOutcome) -> None:
    if OUTCOME_RANK[outcome] > OUTCOME_RANK[record.outcome]:
        record.outcome = outcome


def get_record(session: Session, call_id: str) -> CallRecord | None:
    return session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))


_RECORDS = "acikkapi.call_records"


def _records(session: Session) -> dict[str, CallRecord | None]:
    """Records this session already knows by call id (None: known not to exist yet)."""
    cache: dict[str, CallRecord | None] = session.info.setdefault(_RECORDS, {})
    return cache


def preload_records(session: Session, call_ids: Iterable[str]) -> None:
    """Load the records of ``call_ids`` in one query, so applying a batch of facts costs no
    per-fact look-up (the writer calls this at the start of each batch)."""
    cache = _records(session)
    missing = {c for c in call_ids if c not in cache}
    if not missing:
        return
    with session.no_autoflush:
        for record in session.scalars(select(CallRecord).where(CallRecord.call_id.in_(missing))):
            cache[record.call_id] = record
    for call_id in missing:
        cache.setdefault(call_id, None)


def _record(session: Session, call_id: str, at: datetime) -> CallRecord:
    cache = _records(session)
    if call_id in cache:
        record = cache[call_id]
    else:
        with session.no_autoflush:
            record = get_record(session, call_id)
    if record is None:
        record = CallRecord(
            call_id=call_id,
            started_at=at,
            outcome=CallOutcome.IN_PROGRESS,
            via_switchboard=False,
            transfer_chain=[],
            updated_at=at,
        )
        session.add(record)  # flushed with the batch; the cache keeps call ids unique
    cache[call_id] = record
    record.started_at = _min(record.started_at, at)
    record.updated_at = _max(record.updated_at, at)
    return record


def _set_caller(record: CallRecord, raw: str | None) -> None:
    if raw is None or record.caller_raw is not None:
        return
    record.caller_raw = raw[:64]
    phone = usable_phone(raw)
    record.caller_e164 = phone.e164 if phone else None


# --- apply -------------------------------------------------------------------------------


def apply_fact(session: Session, now: datetime, fact: CallFact) -> ApplyResult:
    """Apply one fact to the call record (creating it on first sight). See module doc."""
    record = _record(session, fact.call_id, fact.at)
    result = ApplyResult(record=record)
    if isinstance(fact, CallStarted):
        _set_caller(record, fact.caller_raw)
        record.caller_name = record.caller_name or fact.caller_name
        record.channel = record.channel or fact.channel
        record.linked_id = record.linked_id or fact.linked_id
        record.dialled_number = record.dialled_number or fact.dialled
        record.language = record.language or _language(fact.language)
        record.via_switchboard = record.via_switchboard or fact.via_switchboard
    elif isinstance(fact, CallDetails):
        _apply_details(session, record, fact)
    elif isinstance(fact, QueueJoined):
        if record.entered_at is None or fact.at <= record.entered_at:
            record.entered_at = fact.at
            record.queue = fact.queue
    elif isinstance(fact, AgentAnswered):
        result.screen_pop = _apply_answer(session, now, record, fact)
    elif isinstance(fact, AgentCompleted):
        if record.talk_seconds is None and fact.talk_seconds is not None:
            record.talk_seconds = fact.talk_seconds
        if record.wait_seconds is None and fact.hold_seconds is not None:
            record.wait_seconds = fact.hold_seconds
        _raise_outcome(record, CallOutcome.ANSWERED)
    elif isinstance(fact, Transferred):
        _apply_transfer(record, fact)
    elif isinstance(fact, Abandoned):
        record.queue = record.queue or fact.queue
        if record.wait_seconds is None and fact.hold_seconds is not None:
            record.wait_seconds = fact.hold_seconds
        record.ended_at = _max(record.ended_at, fact.at)
        _raise_outcome(record, CallOutcome.ABANDONED)
        result.callback_created = _callback_for_abandoned(session, record, fact)
    elif isinstance(fact, QueueExited):
        record.queue = record.queue or fact.queue
        if record.wait_seconds is None and fact.hold_seconds is not None:
            record.wait_seconds = fact.hold_seconds
        _raise_outcome(record, CallOutcome.OVERFLOW)
        _add_note(record, f"left queue: {fact.reason.lower()}")
    elif isinstance(fact, RecordingStarted):
        record.recording_path = record.recording_path or fact.path[:300]
    elif isinstance(fact, CallEnded):
        record.ended_at = _max(record.ended_at, fact.at)
        record.end_cause = record.end_cause or (fact.cause[:60] if fact.cause else None)
    _finish(record)
    return result


def _finish(record: CallRecord) -> None:
    """Derived values that depend only on the row itself (so replays agree)."""
    if record.wait_seconds is None and record.entered_at and record.answered_at:
        record.wait_seconds = max(0, int((record.answered_at - record.entered_at).total_seconds()))
    talked = record.outcome in (CallOutcome.ANSWERED, CallOutcome.TRANSFERRED)
    if record.talk_seconds is None and talked and record.answered_at and record.ended_at:
        record.talk_seconds = max(0, int((record.ended_at - record.answered_at).total_seconds()))


def _apply_details(session: Session, record: CallRecord, fact: CallDetails) -> None:
    if fact.dialled:
        record.dialled_number = fact.dialled[:40]
    if (language := _language(fact.language)) is not None:
        record.language = language
    if fact.via_switchboard:
        record.via_switchboard = True
    if fact.nobody_reason == "out_of_hours":
        _raise_outcome(record, CallOutcome.OUT_OF_HOURS)
    if fact.callback_id:
        _raise_outcome(record, CallOutcome.CALLBACK_REQUESTED)
        _add_note(record, f"callback task {fact.callback_id[:20]}")
    if fact.message_path:
        _raise_outcome(record, CallOutcome.VOICEMAIL)
        _add_note(record, f"voice message {fact.message_path[:120]}")
    if fact.citizen_hint and record.citizen_id is None and fact.citizen_hint.isdigit():
        citizen = session.get(Citizen, int(fact.citizen_hint))
        if citizen is not None:
            record.citizen_id = citizen.id


def _apply_transfer(record: CallRecord, fact: Transferred) -> None:
    entry = {"kind": fact.kind, "from": fact.from_, "to": fact.to, "at": fact.at.isoformat()}
    chain = list(record.transfer_chain or [])
    if entry not in chain and len(chain) < MAX_CHAIN:
        chain.append(entry)
        chain.sort(key=lambda e: str(e.get("at")))
        record.transfer_chain = chain  # a new list: JSON columns track assignment, not mutation
    if record.agent_interface is not None and fact.from_ == record.agent_interface:
        _raise_outcome(record, CallOutcome.TRANSFERRED)


def _apply_answer(
    session: Session, now: datetime, record: CallRecord, fact: AgentAnswered
) -> ScreenPop | None:
    first_answer = record.answered_at is None or fact.at < record.answered_at
    if first_answer:
        record.answered_at = fact.at
        record.agent_interface = fact.agent_interface[:120]
        staff = staff_for_interface(session, fact.agent_interface)
        record.agent_id = staff.id if staff else None
        if fact.hold_seconds is not None:
            record.wait_seconds = fact.hold_seconds
    if fact.queue and record.queue is None:
        record.queue = fact.queue
    _raise_outcome(record, CallOutcome.ANSWERED)
    if record.ticket_id is None:
        _open_ticket(session, now, record, fact)
    if not first_answer or record.ended_at is not None:
        return None  # replay, or a call reconciled after it ended: nobody to pop a screen for
    ticket = session.get(Ticket, record.ticket_id) if record.ticket_id else None
    return ScreenPop(
        call_id=record.call_id,
        agent_id=record.agent_id,
        agent_interface=fact.agent_interface,
        caller_e164=record.caller_e164,
        caller_raw=record.caller_raw,
        citizen_id=record.citizen_id,
        ticket_id=record.ticket_id,
        reference_code=ticket.reference_code if ticket is not None else None,
        at=fact.at,
    )


def _open_ticket(session: Session, now: datetime, record: CallRecord, fact: AgentAnswered) -> None:
    actor = session.get(StaffUser, record.agent_id) if record.agent_id else None
    if actor is None:
        actor = system_actor(session, "ami", now)
    phone = usable_phone(record.caller_raw)
    request = IntakeRequest(
        channel=Channel.SWITCHBOARD if record.via_switchboard else Channel.PHONE,
        phone=phone.raw if phone else None,
        language=record.language,
        citizen_id=record.citizen_id,
        external_ref=record.call_id,
        received_at=min(fact.at, now),
        place_of_application=record.queue,
    )
    try:
        with session.begin_nested():
            result = open_ticket(session, actor, now, request)
    except DomainError as exc:
        log.warning("call %s: intake refused the ticket: %s", record.call_id, exc)
        _add_note(record, f"no ticket: {exc}"[:120])
        return
    record.ticket_id = result.ticket.id
    record.citizen_id = result.ticket.citizen_id or record.citizen_id


def _callback_for_abandoned(session: Session, record: CallRecord, fact: Abandoned) -> bool:
    phone = usable_phone(record.caller_raw)
    if phone is None:
        why = "withheld caller ID" if record.caller_raw else "no caller ID"
        _add_note(record, f"no callback: {why}")
        return False
    existing = session.scalar(
        select(CallbackTask).where(
            CallbackTask.call_id == record.call_id,
            CallbackTask.reason == CallbackReason.ABANDONED,
        )
    )
    if existing is not None:
        return False
    with session.begin_nested():
        session.add(
            CallbackTask(
                call_id=record.call_id,
                reason=CallbackReason.ABANDONED,
                status=CallbackStatus.PENDING,
                phone_e164=phone.e164,
                phone_raw=record.caller_raw,
                citizen_id=record.citizen_id,
                ticket_id=record.ticket_id,
                language=record.language or Language.TR,
                queue=record.queue or fact.queue,
                requested_at=fact.at,
                due_at=fact.at + CALLBACK_DELAY,
                attempts=0,
            )
        )
    return True


VANISHED_NOTE = "ended while the listener was disconnected; end time approximate"


def close_vanished_calls(
    session: Session, live_call_ids: frozenset[str], at: datetime, window: timedelta | None = None
) -> int:
    """Close open records whose call is no longer live on the PBX (reconciliation).

    Records started within ``window`` (default one day) before ``at`` with no ``ended_at``
    whose ``call_id`` is not in ``live_call_ids`` get ``ended_at`` = their last known event
    time and a note. Idempotent: closed records are not touched again. Returns how many.
    """
    since = at - (window or timedelta(days=1))
    open_records = session.scalars(
        select(CallRecord).where(
            CallRecord.ended_at.is_(None),
            CallRecord.started_at >= since,
            CallRecord.started_at <= at,
        )
    )
    closed = 0
    for record in open_records:
        if record.call_id in live_call_ids:
            continue
        record.ended_at = record.updated_at
        _add_note(record, VANISHED_NOTE)
        _finish(record)
        closed += 1
    return closed
