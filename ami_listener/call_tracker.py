"""A pure, synchronous state machine: AMI events in, call facts out.

:class:`CallTracker` consumes parsed AMI events (header -> value, as produced by
:mod:`ami_listener.framing`) and returns the :mod:`services.call_records` facts they imply,
keyed by the ``CALL_ID`` channel variable (the Uniqueid of the citizen's inbound leg, inherited
by every leg as ``__CALL_ID``). No I/O, no clock reads except through the injected ``clock``
for events without a ``Timestamp`` header, so recorded transcripts replay deterministically.

Keying rules (engineering.md §3):

- ``ChanVariable(CALL_ID)`` of the event's channel snapshot wins; a ``VarSet`` of
  ``__CALL_ID`` is honoured immediately. The leg whose ``Uniqueid`` equals its ``CALL_ID`` is
  the inbound leg: its caller ID is the citizen's.
- Without ``CALL_ID`` the Uniqueid -> call mapping learnt earlier is used, then the Linkedid of
  a known inbound leg; a ``QueueCallerJoin`` of an unknown channel starts a call keyed on its
  Linkedid (streams from a dialplan that never set ``CALL_ID`` still give one record per call).
- A blind transfer keeps the caller's channel, so the call id stays. After an attended transfer
  the queue saw the transferring operator's consultation leg as the "caller": the tracker moves
  that leg's queue join and agent answer onto the citizen's call (``Transferee*`` = citizen,
  ``TransferTarget*`` = the agent).
- Calls whose inbound leg has an internal caller ID (a staff extension, e.g. an operator's
  consultation call) produce no facts of their own: their facts are held back and only used
  when an attended transfer moves them onto a citizen's call.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ami_listener.framing import AmiEvent
from ami_listener.framing import chanvar_key as _chanvar_key
from services.call_records import (
    Abandoned,
    AgentAnswered,
    AgentCompleted,
    CallDetails,
    CallEnded,
    CallFact,
    CallStarted,
    QueueExited,
    QueueJoined,
    RecordingStarted,
    Transferred,
)
from telephony import channel_vars as cv

UNKNOWN = "<unknown>"
OVERFLOW_STATUSES = frozenset(
    {"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"}
)
DETAIL_VARS = (
    cv.DIALLED_NUMBER,
    cv.CALLER_LANGUAGE,
    cv.VIA_SWITCHBOARD,
    cv.CITIZEN_ID,
    cv.NOBODY_REASON,
    cv.MESSAGE_PATH,
    cv.CALLBACK_ID,
)


# Keys of the channel variables the tracker reads, per header prefix ("", "Transferee", ...):
# built once instead of formatted for every event.
chanvar_key = functools.cache(_chanvar_key)


@functools.cache
def _detail_keys(prefix: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, chanvar_key(name, prefix)) for name in DETAIL_VARS)


@dataclass(frozen=True)
class TrackerConfig:
    # Caller IDs of staff extensions (consultation legs, internal calls), not citizens.
    internal_caller: re.Pattern[str] = re.compile(r"^\d{2,6}$")
    max_calls: int = 20_000  # calls kept in memory; the oldest finished ones go first
    max_held_facts: int = 50  # per internal call
    # A call's Linkedid stays mapped this many hang-ups after its inbound leg hung up (events
    # of its other legs that carry no CALL_ID may still follow), then it is dropped.
    linked_linger: int = 500


@dataclass
class TrackerStats:
    events: int = 0
    facts: int = 0
    unkeyed: int = 0  # call-related events that could not be tied to a call
    internal_calls: int = 0
    attended_rekeys: int = 0


@dataclass
class _Call:
    call_id: str
    internal: bool = False
    caller_seen: bool = False
    ended: bool = False
    merged_into: str | None = None
    queue: str | None = None
    agent_interface: str | None = None
    recording: str | None = None
    overflowed: bool = False
    details: dict[str, str] = field(default_factory=dict)
    join: QueueJoined | None = None
    answer: AgentAnswered | None = None
    held: list[CallFact] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)  # Linkedids mapped to this call


def interface_of(channel: str | None) -> str | None:
    """``PJSIP/1001-0000000a`` -> ``PJSIP/1001`` (the queue member / device interface)."""
    if not channel:
        return None
    base = channel.split(";", 1)[0]  # Local/...;1
    head, sep, tail = base.rpartition("-")
    if sep and tail and all(c in "0123456789abcdef" for c in tail.lower()):
        return head
    return base


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() else None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return None if not text or text == UNKNOWN else text


class CallTracker:
    """Turns AMI events into call facts. Feed events in the order Asterisk sent them."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.stats = TrackerStats()
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._uid_call: dict[str, str] = {}
        self._linked_call: dict[str, str] = {}
        self._born: dict[str, datetime] = {}
        self._hung_up: deque[str] = deque()  # calls whose inbound leg hung up, oldest first

    # -- public -----------------------------------------------------------------------------

    def feed(self, event: AmiEvent) -> list[CallFact]:
        """Consume one event; return the facts it implies (possibly none)."""
        self.stats.events += 1
        name = event.get("Event", "")
        handler = _HANDLERS.get(name)
        out: list[CallFact] = []
        at = self._time(event)
        uid = event.get("Uniqueid")
        if uid and uid not in self._born and len(self._born) < self.config.max_calls * 4:
            if name == "Newchannel":
                self._born[uid] = at
            elif name == "CoreShowChannel" and (age := _hms(event.get("Duration"))) is not None:
                self._born[uid] = at - age  # reconciliation listing: started Duration ago
        call = self._observe(event, "", at, out)
        if handler is not None:
            handler(self, event, at, call, out)
        self.stats.facts += len(out)
        return out

    def call_id_for(self, uniqueid: str) -> str | None:
        return self._uid_call.get(uniqueid)

    def synthetic_answer(
        self, call_id: str, interface: str, at: datetime, queue: str | None = None
    ) -> list[CallFact]:
        """An answer seen only in a channel listing (reconciliation after a restart)."""
        out: list[CallFact] = []
        call = self._calls.get(call_id)
        if call is None or call.answer is not None:
            return out
        fact = AgentAnswered(call_id, at, interface, None, queue or call.queue)
        call.answer = fact
        call.agent_interface = interface
        self._emit(call, fact, out)
        return out

    # -- keying -----------------------------------------------------------------------------

    def _time(self, event: AmiEvent) -> datetime:
        stamp = event.get("Timestamp")
        if stamp:
            try:
                return datetime.fromtimestamp(float(stamp), UTC)
            except (ValueError, OverflowError, OSError):
                pass
        return self._clock()

    def _resolve(self, event: AmiEvent, prefix: str) -> str | None:
        uid = event.get(f"{prefix}Uniqueid")
        call_id = _clean(event.get(chanvar_key(cv.CALL_ID, prefix)))
        if call_id:
            if uid:
                self._uid_call[uid] = call_id
            return call_id
        if uid and uid in self._uid_call:
            return self._uid_call[uid]
        linked = event.get(f"{prefix}Linkedid")
        if linked and linked in self._linked_call:
            if uid:
                self._uid_call[uid] = self._linked_call[linked]
            return self._linked_call[linked]
        return None

    def _observe(
        self, event: AmiEvent, prefix: str, at: datetime, out: list[CallFact]
    ) -> _Call | None:
        """Key the main channel snapshot; start the call on first sight of its inbound leg."""
        call_id = self._resolve(event, prefix)
        if call_id is None:
            return None
        call = self._call(call_id)
        uid = event.get(f"{prefix}Uniqueid")
        if uid == call_id:
            self._inbound_leg(call, event, prefix, at, out)
        return call

    def _call(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            call = _Call(call_id)
            self._calls[call_id] = call
            self._evict()
        return call

    def _evict(self) -> None:
        while len(self._calls) > self.config.max_calls:
            victim = next((cid for cid, c in self._calls.items() if c.ended), None)
            victim = victim or next(iter(self._calls))
            self._forget_links(self._calls.pop(victim))

    def _forget_links(self, call: _Call) -> None:
        for linked in call.linked:
            if self._linked_call.get(linked) == call.call_id:
                del self._linked_call[linked]
        call.linked.clear()

    def _linger(self, call: _Call) -> None:
        """The inbound leg hung up: its Linkedid goes after ``linked_linger`` more hang-ups."""
        self._hung_up.append(call.call_id)
        while len(self._hung_up) > self.config.linked_linger:
            old = self._calls.get(self._hung_up.popleft())
            if old is not None and old.ended:
                self._forget_links(old)

    def _inbound_leg(
        self, call: _Call, event: AmiEvent, prefix: str, at: datetime, out: list[CallFact]
    ) -> None:
        linked = event.get(f"{prefix}Linkedid")
        if linked and linked not in self._linked_call:
            self._linked_call[linked] = call.call_id
            call.linked.append(linked)
        if not call.caller_seen:
            call.caller_seen = True
            caller = _clean(event.get(f"{prefix}CallerIDNum"))
            if caller and self.config.internal_caller.match(caller):
                call.internal = True
                self.stats.internal_calls += 1
            self._emit(
                call,
                CallStarted(
                    call_id=call.call_id,
                    at=self._born.get(call.call_id, at),
                    caller_raw=caller or event.get(f"{prefix}CallerIDNum"),
                    caller_name=_clean(event.get(f"{prefix}CallerIDName")),
                    channel=event.get(f"{prefix}Channel"),
                    linked_id=event.get(f"{prefix}Linkedid"),
                    dialled=_clean(event.get(chanvar_key(cv.DIALLED_NUMBER, prefix))),
                    language=_clean(event.get(chanvar_key(cv.CALLER_LANGUAGE, prefix))),
                    via_switchboard=event.get(chanvar_key(cv.VIA_SWITCHBOARD, prefix)) == "1",
                ),
                out,
            )
        changed = {}
        for name, key in _detail_keys(prefix):
            value = event.get(key)
            if value and (value := _clean(value)) and call.details.get(name) != value:
                changed[name] = value
        if recording := _clean(event.get(chanvar_key(cv.RECORDING_PATH, prefix))):
            call.recording = recording
        status = event.get(chanvar_key(cv.QUEUE_STATUS, prefix))
        if status in OVERFLOW_STATUSES and not call.overflowed:  # when listed in channelvars
            call.overflowed = True
            self._emit(call, QueueExited(call.call_id, at, status, None, call.queue), out)
        if changed:
            self._details(call, changed, at, out)

    def _details(
        self, call: _Call, changed: dict[str, str], at: datetime, out: list[CallFact]
    ) -> None:
        call.details.update(changed)
        self._emit(
            call,
            CallDetails(
                call_id=call.call_id,
                at=at,
                dialled=changed.get(cv.DIALLED_NUMBER),
                language=changed.get(cv.CALLER_LANGUAGE),
                via_switchboard=True if changed.get(cv.VIA_SWITCHBOARD) == "1" else None,
                citizen_hint=changed.get(cv.CITIZEN_ID),
                nobody_reason=changed.get(cv.NOBODY_REASON),
                message_path=changed.get(cv.MESSAGE_PATH),
                callback_id=changed.get(cv.CALLBACK_ID),
            ),
            out,
        )

    def _emit(self, call: _Call, fact: CallFact, out: list[CallFact]) -> None:
        if call.merged_into is not None:
            return  # a consultation leg already folded into the citizen's call
        if call.internal:
            if len(call.held) < self.config.max_held_facts:
                call.held.append(fact)
            return
        out.append(fact)

    # -- handlers ---------------------------------------------------------------------------

    def _on_varset(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        variable = event.get("Variable", "").lstrip("_")
        value = event.get("Value", "")
        uid = event.get("Uniqueid")
        if variable == cv.CALL_ID and value and uid:
            self._uid_call[uid] = value
            call = self._call(value)
            if uid == value:
                self._inbound_leg(call, event, "", at, out)
            return
        if call is None or uid != call.call_id:
            return
        if variable in DETAIL_VARS and value and call.details.get(variable) != value:
            self._details(call, {variable: value}, at, out)
        elif variable == cv.RECORDING_PATH and value:
            call.recording = value
        elif variable == cv.QUEUE_STATUS and value in OVERFLOW_STATUSES and not call.overflowed:
            call.overflowed = True
            self._emit(call, QueueExited(call.call_id, at, value, None, call.queue), out)

    def _on_queue_join(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        if call is None:
            uid = event.get("Uniqueid")
            call_id = event.get("Linkedid") or uid
            if not call_id or not uid:
                self.stats.unkeyed += 1
                return
            self._uid_call[uid] = call_id
            call = self._call(call_id)
            if uid == call_id:
                self._inbound_leg(call, event, "", at, out)
        queue = event.get("Queue", "")
        call.queue = queue
        fact = QueueJoined(call.call_id, at, queue, _int(event.get("Position")))
        call.join = call.join or fact
        self._emit(call, fact, out)

    def _on_agent_connect(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        if call is None:
            self.stats.unkeyed += 1
            return
        if dest := event.get("DestUniqueid"):
            self._uid_call[dest] = call.call_id
        interface = event.get("Interface") or interface_of(event.get("DestChannel")) or ""
        fact = AgentAnswered(
            call.call_id,
            at,
            interface,
            _int(event.get("HoldTime")),
            event.get("Queue") or call.queue,
            _clean(event.get("MemberName")),
        )
        call.agent_interface = interface
        call.answer = call.answer or fact
        self._emit(call, fact, out)

    def _on_agent_complete(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        if call is None:
            self.stats.unkeyed += 1
            return
        fact = AgentCompleted(
            call.call_id,
            at,
            _int(event.get("TalkTime")),
            _int(event.get("HoldTime")),
            event.get("Reason"),
        )
        self._emit(call, fact, out)

    def _on_abandon(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        if call is None:
            self.stats.unkeyed += 1
            return
        fact = Abandoned(
            call.call_id,
            at,
            _int(event.get("HoldTime")),
            event.get("Queue") or call.queue,
            _int(event.get("OriginalPosition") or event.get("Position")),
        )
        self._emit(call, fact, out)

    def _on_blind_transfer(
        self, event: AmiEvent, at: datetime, _call: _Call | None, out: list[CallFact]
    ) -> None:
        if event.get("Result", "Success") != "Success":
            return
        call_id = self._resolve(event, "Transferee") or self._resolve(event, "Transferer")
        if call_id is None:
            self.stats.unkeyed += 1
            return
        call = self._call(call_id)
        exten, context = event.get("Extension"), event.get("Context")
        target = f"{exten}@{context}" if exten and context else exten
        fact = Transferred(
            call_id, at, "blind", interface_of(event.get("TransfererChannel")), target
        )
        self._emit(call, fact, out)

    def _on_attended_transfer(
        self, event: AmiEvent, at: datetime, _call: _Call | None, out: list[CallFact]
    ) -> None:
        if event.get("Result", "Success") != "Success":
            return
        citizen_id = self._resolve(event, "Transferee") or self._resolve(event, "OrigTransferer")
        consult_id = self._resolve(event, "TransferTarget") or self._resolve(
            event, "SecondTransferer"
        )
        if citizen_id is None:
            self.stats.unkeyed += 1
            return
        call = self._call(citizen_id)
        target_interface = interface_of(event.get("TransferTargetChannel"))
        if consult_id is not None and consult_id != citizen_id:
            consult = self._calls.get(consult_id)
            if consult is not None and consult.merged_into is None:
                self.stats.attended_rekeys += 1
                if consult.join is not None and call.join is None:
                    call.join = replace(consult.join, call_id=citizen_id)
                    call.queue = call.join.queue
                    self._emit(call, call.join, out)
                if consult.answer is not None and call.answer is None:
                    call.answer = replace(consult.answer, call_id=citizen_id)
                    call.agent_interface = call.answer.agent_interface
                    self._emit(call, call.answer, out)
                elif call.answer is None and target_interface:
                    # An attended transfer straight to an agent phone (not through the queue).
                    call.answer = AgentAnswered(citizen_id, at, target_interface)
                    call.agent_interface = target_interface
                    self._emit(call, call.answer, out)
                if consult.recording and call.recording is None:
                    call.recording = consult.recording
                    self._emit(call, RecordingStarted(citizen_id, at, consult.recording), out)
                consult.merged_into = citizen_id
                consult.held.clear()
            if tuid := event.get("TransferTargetUniqueid"):
                self._uid_call[tuid] = citizen_id
        fact = Transferred(
            citizen_id,
            at,
            "attended",
            interface_of(event.get("OrigTransfererChannel")),
            target_interface,
        )
        self._emit(call, fact, out)

    def _on_mixmonitor(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        if call is None:
            return
        path = _clean(event.get(chanvar_key(cv.RECORDING_PATH))) or call.recording
        if path:
            call.recording = path
            self._emit(call, RecordingStarted(call.call_id, at, path), out)

    def _on_hangup(
        self, event: AmiEvent, at: datetime, call: _Call | None, out: list[CallFact]
    ) -> None:
        uid = event.get("Uniqueid", "")
        self._born.pop(uid, None)
        if call is None or uid != call.call_id:
            self._uid_call.pop(uid, None)
            return
        self._emit(call, CallEnded(call.call_id, at, _clean(event.get("Cause-txt"))), out)
        if not call.ended:
            call.ended = True
            self._linger(call)
        call.held.clear()
        self._calls.move_to_end(call.call_id, last=False)  # first in line for eviction
        self._uid_call.pop(uid, None)


def _hms(value: str | None) -> timedelta | None:
    parts = (value or "").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    return timedelta(hours=h, minutes=m, seconds=s)


_Handler = Callable[[CallTracker, AmiEvent, datetime, "_Call | None", list[CallFact]], None]

_HANDLERS: dict[str, _Handler] = {
    "VarSet": CallTracker._on_varset,
    "QueueCallerJoin": CallTracker._on_queue_join,
    "AgentConnect": CallTracker._on_agent_connect,
    "AgentComplete": CallTracker._on_agent_complete,
    "QueueCallerAbandon": CallTracker._on_abandon,
    "BlindTransfer": CallTracker._on_blind_transfer,
    "AttendedTransfer": CallTracker._on_attended_transfer,
    "MixMonitorStart": CallTracker._on_mixmonitor,
    "Hangup": CallTracker._on_hangup,
}
