"""Call records from normalised call facts (R1.2, R4.2, R4.3, R4.4, R4.6, R5.3).

The AMI listener turns Asterisk events into the small *facts* defined here (one inbound
conversation = one ``call_id``) and applies them with :func:`apply_fact` inside a transaction
it owns. This module knows nothing about AMI, asyncio or Redis.

Guarantees of :func:`apply_fact` (all within the caller's transaction; nothing is committed):

- **Idempotent**: applying a fact stream a second time leaves every row as it was. Times move
  only monotonically (``started_at``/``entered_at``/``answered_at`` keep the earliest value,
  ``ended_at`` the latest), the outcome only moves up :data:`OUTCOME_RANK`, transfer-chain
  entries are de-duplicated, ``updated_at`` is the latest event time (never the wall clock)
  and callback tasks are unique per ``(call_id, reason)``.
- **Order tolerant**: facts that arrive late (``queue_log`` reconciliation after a restart)
  complete a record without undoing what live events already wrote.
- **Durable first for tickets**: an answer (:class:`AgentAnswered`) is written to the record
  (``answered_at``, agent) and :func:`apply_fact` returns a :class:`TicketDue`; the ticket
  is opened by :func:`open_call_tickets`, in the same transaction or a later one. Until then
  the record itself (answered, no ticket, no refusal) is the durable "ticket to open":
  :func:`calls_awaiting_ticket` finds it again after a crash.
- An abandoned call becomes one :class:`~models.CallbackTask` (reason ``abandoned``) when the
  caller's number is usable; a withheld or invalid number gets no task and the record's
  ``note`` says why.

Guarantees of :func:`open_call_tickets`: the ticket of an answered call is opened or
attached through the one intake path, :func:`services.intake.open_ticket` (channel phone, or
switchboard for calls that came through the switchboard; received by the agent whose
``sip_extension`` matches the agent interface, else by ``system.ami``; ``external_ref`` = call
id, so a repeat changes nothing); the record is linked to the ticket and its citizen. A
ticket that intake refuses leaves the record intact with the reason in ``ticket_refusal``
(and a ``no ticket: …`` note for people) and is not tried again. The screen pop of a first
answer carries the ticket and the citizen card.

For speed, a writer applying a batch calls :func:`preload_batch` first (one query each for
the batch's records, agents, citizens and callback tasks) and applies the facts under
``Session.no_autoflush``, so a batch costs a handful of statements plus one flush.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
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
    TicketType,
)
from services.actors import system_actor
from services.caller_lookup import open_ticket_count
from services.errors import DomainError
from services.identity import NormalisedPhone, normalise_phone
from services.intake import open_ticket
from services.intake_request import IntakeRequest

log = logging.getLogger(__name__)

CALLBACK_DELAY = timedelta(minutes=15)  # an abandoned caller is called back within this
# How long the acknowledgement of an answered call's placeholder ticket waits for the
# agent's ticket to replace it (decision 0023).
PLACEHOLDER_ACK_HOLD = timedelta(minutes=10)
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
class TicketDue:
    """An answered call whose ticket is still to be opened (see :func:`open_call_tickets`).

    The record itself is the durable form of this value; the object only carries what the
    screen pop needs: ``screen_pop`` is true for the first answer of a call that had not
    ended when the answer was applied (a replay or a late reconciliation pops no screen).
    """

    call_id: str
    screen_pop: bool = False
    agent_interface: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class RecentTicket:
    reference_code: str | None
    ticket_type: str
    status: str
    received_at: datetime

    def as_message(self) -> dict[str, Any]:
        return {
            "reference_code": self.reference_code,
            "ticket_type": self.ticket_type,
            "status": self.status,
            "received_at": self.received_at.isoformat(),
        }


@dataclass(frozen=True)
class CitizenCard:
    """The citizen as the agent sees them on answer (R4.3): no TC number on the wire."""

    citizen_id: int
    name: str | None
    language: str
    special_groups: tuple[str, ...]
    open_tickets: int
    recent_tickets: tuple[RecentTicket, ...]

    def as_message(self) -> dict[str, Any]:
        return {
            "citizen_id": self.citizen_id,
            "name": self.name,
            "language": self.language,
            "special_groups": list(self.special_groups),
            "open_tickets": self.open_tickets,
            "recent_tickets": [t.as_message() for t in self.recent_tickets],
        }


RECENT_TICKETS = 5  # tickets on the citizen card, newest first


@dataclass(frozen=True)
class ScreenPop:
    """What the agent console needs when an agent answers (published after the ticket commit)."""

    call_id: str
    agent_id: int | None
    agent_interface: str
    caller_e164: str | None
    caller_raw: str | None
    citizen_id: int | None
    ticket_id: int | None
    reference_code: str | None
    at: datetime
    citizen: CitizenCard | None = None

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
            "citizen": self.citizen.as_message() if self.citizen is not None else None,
        }


@dataclass
class ApplyResult:
    record: CallRecord
    ticket_due: TicketDue | None = None
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


NO_TICKET = "no ticket: "  # prefix of the note left when intake refused the call's ticket


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


# --- per-batch preload ---------------------------------------------------------------------

_BATCH = "acikkapi.call_records"


@dataclass
class _BatchCache:
    """What this session already knows; a key that is present needs no query."""

    records: dict[str, CallRecord | None] = field(default_factory=dict)  # None: not there yet
    staff: dict[str, int | None] = field(default_factory=dict)  # extension -> active staff id
    citizens: dict[int, bool] = field(default_factory=dict)  # citizen id -> exists
    callbacks: dict[str, bool] = field(default_factory=dict)  # call id -> abandoned task exists


def _cache(session: Session) -> _BatchCache:
    cache = session.info.get(_BATCH)
    if cache is None:
        cache = session.info[_BATCH] = _BatchCache()
    assert isinstance(cache, _BatchCache)
    return cache


def preload_batch(session: Session, facts: Iterable[CallFact]) -> None:
    """Load what applying ``facts`` will need in one query per kind: the call records, the
    agents answering (by extension), the citizens named by caller-lookup hints and the
    existing callback tasks of abandoned calls. Nothing is flushed. Optional: without it
    :func:`apply_fact` looks each of these up when it needs it."""
    cache = _cache(session)
    call_ids: set[str] = set()
    extensions: set[str] = set()
    citizens: set[int] = set()
    abandoned: set[str] = set()
    for fact in facts:
        call_ids.add(fact.call_id)
        if isinstance(fact, AgentAnswered):
            if (extension := extension_of(fact.agent_interface)) is not None:
                extensions.add(extension)
        elif isinstance(fact, CallDetails):
            if fact.citizen_hint and fact.citizen_hint.isdigit():
                citizens.add(int(fact.citizen_hint))
        elif isinstance(fact, Abandoned):
            abandoned.add(fact.call_id)
    with session.no_autoflush:
        if missing := call_ids - cache.records.keys():
            rows = session.scalars(select(CallRecord).where(CallRecord.call_id.in_(missing)))
            for record in rows:
                cache.records[record.call_id] = record
            for call_id in missing:
                cache.records.setdefault(call_id, None)
        if missing_ext := extensions - cache.staff.keys():
            found = session.execute(
                select(StaffUser.sip_extension, StaffUser.id).where(
                    StaffUser.sip_extension.in_(missing_ext), StaffUser.is_active
                )
            )
            for extension, staff_id in found:
                if extension is not None:
                    cache.staff[extension] = staff_id
            for extension in missing_ext:
                cache.staff.setdefault(extension, None)
        if missing_citizens := citizens - cache.citizens.keys():
            there = set(session.scalars(select(Citizen.id).where(Citizen.id.in_(missing_citizens))))
            for citizen_id in missing_citizens:
                cache.citizens[citizen_id] = citizen_id in there
        if missing_tasks := abandoned - cache.callbacks.keys():
            have = set(
                session.scalars(
                    select(CallbackTask.call_id).where(
                        CallbackTask.call_id.in_(missing_tasks),
                        CallbackTask.reason == CallbackReason.ABANDONED,
                    )
                )
            )
            for call_id in missing_tasks:
                cache.callbacks[call_id] = call_id in have


def _record(session: Session, call_id: str, at: datetime) -> CallRecord:
    records = _cache(session).records
    if call_id in records:
        record = records[call_id]
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
    records[call_id] = record
    record.started_at = _min(record.started_at, at)
    record.updated_at = _max(record.updated_at, at)
    return record


def _staff_id(session: Session, interface: str | None) -> int | None:
    extension = extension_of(interface)
    if extension is None:
        return None
    staff = _cache(session).staff
    if extension not in staff:
        found = staff_for_interface(session, interface)
        staff[extension] = found.id if found is not None else None
    return staff[extension]


def _citizen_exists(session: Session, citizen_id: int) -> bool:
    citizens = _cache(session).citizens
    if citizen_id not in citizens:
        citizens[citizen_id] = session.get(Citizen, citizen_id) is not None
    return citizens[citizen_id]


def _set_caller(record: CallRecord, raw: str | None) -> None:
    """The only writer of ``caller_raw``/``caller_e164``: the E.164 form is set with the raw
    number, ``None`` when that is withheld or unusable."""
    if raw is None or record.caller_raw is not None:
        return
    record.caller_raw = raw[:64]
    phone = usable_phone(raw)
    record.caller_e164 = phone.e164 if phone else None


# --- apply -------------------------------------------------------------------------------


def apply_fact(session: Session, now: datetime, fact: CallFact) -> ApplyResult:
    """Apply one fact to the call record (creating it on first sight). See module doc.

    ``now`` is accepted for symmetry with the other services; every time written comes from
    the fact itself, so replays agree.
    """
    del now
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
        result.ticket_due = _apply_answer(session, record, fact)
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
    hint = fact.citizen_hint or ""
    if hint.isdigit() and record.citizen_id is None and _citizen_exists(session, int(hint)):
        record.citizen_id = int(hint)


def _apply_transfer(record: CallRecord, fact: Transferred) -> None:
    entry = {"kind": fact.kind, "from": fact.from_, "to": fact.to, "at": fact.at.isoformat()}
    chain = list(record.transfer_chain or [])
    if entry not in chain and len(chain) < MAX_CHAIN:
        chain.append(entry)
        chain.sort(key=lambda e: str(e.get("at")))
        record.transfer_chain = chain  # a new list: JSON columns track assignment, not mutation
    if record.agent_interface is not None and fact.from_ == record.agent_interface:
        _raise_outcome(record, CallOutcome.TRANSFERRED)


def _apply_answer(session: Session, record: CallRecord, fact: AgentAnswered) -> TicketDue | None:
    first_answer = record.answered_at is None or fact.at < record.answered_at
    if first_answer:
        record.answered_at = fact.at
        record.agent_interface = fact.agent_interface[:120]
        record.agent_id = _staff_id(session, fact.agent_interface)
        if fact.hold_seconds is not None:
            record.wait_seconds = fact.hold_seconds
    if fact.queue and record.queue is None:
        record.queue = fact.queue
    _raise_outcome(record, CallOutcome.ANSWERED)
    pop = first_answer and record.ended_at is None  # a replay or a finished call: no pop
    if not pop and (record.ticket_id is not None or record.ticket_refusal is not None):
        return None
    return TicketDue(record.call_id, pop, fact.agent_interface, fact.at)


def _callback_for_abandoned(session: Session, record: CallRecord, fact: Abandoned) -> bool:
    e164 = record.caller_e164  # usable number, set with caller_raw by _set_caller
    if e164 is None:
        why = "withheld caller ID" if record.caller_raw else "no caller ID"
        _add_note(record, f"no callback: {why}")
        return False
    known = _cache(session).callbacks
    if record.call_id not in known:
        with session.no_autoflush:
            existing = session.scalar(
                select(CallbackTask.id).where(
                    CallbackTask.call_id == record.call_id,
                    CallbackTask.reason == CallbackReason.ABANDONED,
                )
            )
        known[record.call_id] = existing is not None
    if known[record.call_id]:
        return False
    known[record.call_id] = True  # one task per call, even within an unflushed batch
    session.add(
        CallbackTask(
            call_id=record.call_id,
            reason=CallbackReason.ABANDONED,
            status=CallbackStatus.PENDING,
            phone_e164=e164,
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


# --- tickets of answered calls -----------------------------------------------------------


def awaiting_ticket_clause() -> Any:
    """SQL condition: answered, no ticket yet, and intake did not refuse one (the
    predicate of the partial index ``ix_call_records_awaiting_ticket``)."""
    return (
        CallRecord.answered_at.is_not(None)
        & CallRecord.ticket_id.is_(None)
        & CallRecord.ticket_refusal.is_(None)
    )


def calls_awaiting_ticket(session: Session, limit: int = 500) -> list[str]:
    """Call ids of answered calls whose ticket is still to be opened, oldest first.

    This is how work handed over in memory is found again after a crash: the answer and the
    absence of a ticket were committed together, before anything else was attempted.
    """
    return list(
        session.scalars(
            select(CallRecord.call_id)
            .where(awaiting_ticket_clause())
            .order_by(CallRecord.id)
            .limit(limit)
        )
    )


@dataclass
class CallTickets:
    """What :func:`open_call_tickets` did, by call id."""

    opened: list[str] = field(default_factory=list)  # opened or attached through intake now
    refused: list[str] = field(default_factory=list)  # intake said no (note on the record)
    screen_pops: list[ScreenPop] = field(default_factory=list)


def open_call_tickets(
    session: Session,
    now: datetime,
    dues: Sequence[TicketDue],
    *,
    citizen_cards: bool = False,
    savepoints: bool = True,
) -> CallTickets:
    """Open (or attach) the ticket of each answered call in ``dues``; return the screen pops.

    Guarantees (see the module doc), within the caller's transaction: one
    :func:`~services.intake.open_ticket` per call that is answered, has no ticket and no
    refusal (each in a savepoint, so a refusal undoes nothing else); calls already done are
    skipped, so repeating a due changes nothing. The records are updated after every ticket
    of the batch is open, so their rows are locked only for the end of the transaction.
    A :class:`ScreenPop` is returned for each due with ``screen_pop`` (the first answer of a
    live call), also when the ticket was refused or opened earlier; with ``citizen_cards``
    it carries the citizen's card (two more reads per pop).

    ``savepoints=False`` saves the two statements of a savepoint per call for callers that
    can redo a batch: a refusal then raises :class:`TicketRefusedInBatch` and the caller
    must roll the whole transaction back and run the batch again with savepoints.
    """
    done = CallTickets()
    if not dues:
        return done
    order: list[str] = []
    pop_due: dict[str, TicketDue] = {}
    for due in dues:
        if due.call_id not in order:
            order.append(due.call_id)
        if due.screen_pop and due.call_id not in pop_due:
            pop_due[due.call_id] = due
    cache = _cache(session)
    missing = [c for c in order if cache.records.get(c) is None]
    if missing:
        for row in session.scalars(select(CallRecord).where(CallRecord.call_id.in_(missing))):
            cache.records[row.call_id] = row
    opened: list[tuple[CallRecord, int, int | None, str | None]] = []
    refused: list[tuple[CallRecord, str]] = []
    actors: dict[int | None, StaffUser] = {}  # strong references: the identity map is weak
    for call_id in order:
        todo = cache.records.get(call_id)
        if todo is None or todo.answered_at is None:
            continue
        if todo.ticket_id is not None or todo.ticket_refusal is not None:
            continue
        try:
            ticket = _open_ticket(session, now, todo, actors, savepoints)
        except DomainError as exc:
            if not savepoints:
                raise TicketRefusedInBatch(call_id) from exc
            log.warning("call %s: intake refused the ticket: %s", call_id, exc)
            refused.append((todo, f"{NO_TICKET}{exc}"[:120]))
            done.refused.append(call_id)
            continue
        opened.append((todo, ticket.id, ticket.citizen_id, ticket.reference_code))
        done.opened.append(call_id)
    codes: dict[str, str | None] = {}
    for record, ticket_id, citizen_id, code in opened:
        record.ticket_id = ticket_id
        record.citizen_id = citizen_id or record.citizen_id
        codes[record.call_id] = code
    for record, note in refused:
        record.ticket_refusal = note[len(NO_TICKET) :][:160]
        _add_note(record, note)
    for call_id, due in pop_due.items():
        popped = cache.records.get(call_id)
        if popped is not None:
            done.screen_pops.append(_screen_pop(session, popped, due, codes, citizen_cards))
    return done


class TicketRefusedInBatch(Exception):
    """Intake refused a call's ticket in a batch run without savepoints (see
    :func:`open_call_tickets`): roll back and run the batch again with savepoints."""


def _open_ticket(
    session: Session,
    now: datetime,
    record: CallRecord,
    actors: dict[int | None, StaffUser],
    savepoint: bool,
) -> Ticket:
    actor = actors.get(record.agent_id)
    if actor is None:
        found = session.get(StaffUser, record.agent_id) if record.agent_id else None
        actor = found if found is not None else system_actor(session, "ami", now)
        actors[record.agent_id] = actor
    answered_at = record.answered_at or now
    request = IntakeRequest(
        channel=Channel.SWITCHBOARD if record.via_switchboard else Channel.PHONE,
        phone=record.caller_raw if record.caller_e164 is not None else None,
        language=record.language,
        citizen_id=record.citizen_id,
        external_ref=record.call_id,
        received_at=min(answered_at, now),
        place_of_application=record.queue,
        # The agent's own ticket normally absorbs this placeholder within minutes and
        # withdraws its acknowledgement: the caller gets one SMS with one code (0023).
        acknowledge_at=now + PLACEHOLDER_ACK_HOLD,
    )
    if not savepoint:
        return open_ticket(session, actor, now, request).ticket
    with session.begin_nested():
        return open_ticket(session, actor, now, request).ticket


def _screen_pop(
    session: Session,
    record: CallRecord,
    due: TicketDue,
    codes: dict[str, str | None],
    citizen_cards: bool,
) -> ScreenPop:
    if record.call_id in codes:
        code = codes[record.call_id]
    elif record.ticket_id is not None:
        code = session.scalar(select(Ticket.reference_code).where(Ticket.id == record.ticket_id))
    else:
        code = None
    card = (
        citizen_card(session, record.citizen_id)
        if citizen_cards and record.citizen_id is not None
        else None
    )
    return ScreenPop(
        call_id=record.call_id,
        agent_id=record.agent_id,
        agent_interface=due.agent_interface or record.agent_interface or "",
        caller_e164=record.caller_e164,
        caller_raw=record.caller_raw,
        citizen_id=record.citizen_id,
        ticket_id=record.ticket_id,
        reference_code=code,
        at=due.at or record.answered_at or record.started_at,
        citizen=card,
    )


def citizen_card(session: Session, citizen_id: int) -> CitizenCard | None:
    """The citizen's card for a screen pop: name, language, special groups, how many tickets
    are open and the latest :data:`RECENT_TICKETS` (reference, type, status, received).
    Two indexed reads; nothing is written. ``None`` when the citizen does not exist."""
    row = session.execute(
        select(
            Citizen.first_name,
            Citizen.last_name,
            Citizen.preferred_language,
            Citizen.special_groups,
            open_ticket_count(),
        ).where(Citizen.id == citizen_id)
    ).first()
    if row is None:
        return None
    first, last, language, groups, open_tickets = row
    recent = session.execute(
        select(Ticket.reference_code, TicketType.code, Ticket.status, Ticket.received_at)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .where(Ticket.citizen_id == citizen_id)
        .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        .limit(RECENT_TICKETS)
    )
    name = " ".join(p for p in (first, last) if p) or None
    return CitizenCard(
        citizen_id=citizen_id,
        name=name,
        language=Language(language).value if language else Language.TR.value,
        special_groups=tuple(g for g in (groups or []) if isinstance(g, str)),
        open_tickets=int(open_tickets or 0),
        recent_tickets=tuple(
            RecentTicket(code, type_code, str(status), received_at)
            for code, type_code, status, received_at in recent
        ),
    )


VANISHED_NOTE = "ended while the listener was disconnected; end time approximate"


def close_vanished_calls(
    session: Session, live_call_ids: frozenset[str], at: datetime, window: timedelta | None = None
) -> int:
    """Close open records whose call is no longer live on the PBX (reconciliation).

    Records started within ``window`` (default one day) before ``at`` with no ``ended_at``
    whose ``call_id`` is not in ``live_call_ids`` get ``ended_at`` = their last known event
    time and a note. Idempotent: closed records are not touched again. Returns how many.
    Pending changes of the session are flushed first, so records created earlier in the
    same transaction (an unflushed batch) are candidates too.
    """
    session.flush()
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
