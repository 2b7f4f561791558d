"""Outbound call attempts in the AMI stream: events → dialer outcomes (R5.6, decision 0021).

The dialer originates with ``ChannelId`` = the attempt id (a UUID) and the variable
``AK_ATTEMPT_ID`` (telephony/channel_vars.py), so an event belongs to an attempt when its
``Uniqueid`` is a UUID, its ``ActionID`` carries one (``OriginateResponse``), or it is the
dialplan's ``UserEvent: AkAttemptResult`` (header ``Attempt``). :func:`parse_event` turns
such an event into an :class:`AttemptEvent`; everything else is ignored at once. It runs
on the listener's loop and is cheap (a dict lookup and a regex); the database work happens
in :class:`OutboundStage`, a batch stage like the call-record writer (its own queue, one
short transaction per batch in a worker thread), so the loop never blocks.

What each event means:

- ``Newchannel`` of the attempt's channel → :func:`services.dialer.mark_originated`: the
  Originate reached Asterisk even if the worker died before it could say so.
- ``Newstate`` Up, or ``OriginateResponse`` with ``Reason: 4`` → the call was answered
  (:func:`services.dialer.attempt_answered`, not an outcome yet).
- ``UserEvent: AkAttemptResult`` (``Outcome`` answered|no_answer|busy|failed, optional
  ``Result``) → the outcome. It is authoritative: the dialplan knows ``DIALSTATUS`` (the
  originated leg may be an agent, helper dialplans emit it too) and the survey result.
- ``OriginateResponse: Failure`` → ``Reason`` (Asterisk's control frame) 3 ringing →
  no answer, 5 → busy, 0/8/other → failed; 1 (hung up) says nothing about why, so it
  waits for the ``Hangup`` or user event that follows.
- ``Hangup`` of the attempt's channel → answered when it had been answered (the survey
  result from ``ChanVariable(AK_SURVEY_RESULT)``), else by ``Cause``: 17 busy, 18/19 no
  answer, 16 (cancelled while ringing) no answer, anything else failed.

:func:`services.dialer.record_outcome` keeps the **first** terminal outcome, so replays and
the several events of one call are harmless. The dialplan's user event is authoritative and
applied at once; the fallbacks (``OriginateResponse`` failures and ``Hangup`` causes) are
held for a short grace period (3 s, a timer on the loop) so that the user event wins when
present: with a Local channel, Asterisk may report ``OriginateResponse`` ``Reason: 0``
(hung up, cause unknown) before the dialling half has emitted its ``busy``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ami_listener.batching import EventStage, EventStats, Offload, Transaction, run_in_thread
from ami_listener.framing import AmiEvent
from models import AttemptStatus, CallAttempt
from services import dialer
from telephony import channel_vars as cv

log = logging.getLogger(__name__)

RESULT_EVENT = "AkAttemptResult"  # UserEvent name emitted by the dialplan
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

OUTCOMES = {
    "answered": AttemptStatus.ANSWERED,
    "no_answer": AttemptStatus.NO_ANSWER,
    "busy": AttemptStatus.BUSY,
    "failed": AttemptStatus.FAILED,
}
# OriginateResponse Reason = Asterisk's AST_CONTROL_* value of the last state seen.
REASON_OUTCOMES = {
    0: AttemptStatus.FAILED,  # no channel / nothing happened
    3: AttemptStatus.NO_ANSWER,  # AST_CONTROL_RINGING: rang until the Originate timeout
    5: AttemptStatus.BUSY,  # AST_CONTROL_BUSY
    8: AttemptStatus.FAILED,  # AST_CONTROL_CONGESTION
}
REASON_HANGUP, REASON_ANSWERED = 1, 4
CAUSE_OUTCOMES = {
    16: AttemptStatus.NO_ANSWER,  # normal clearing before answer: cancelled while ringing
    17: AttemptStatus.BUSY,  # user busy
    18: AttemptStatus.NO_ANSWER,  # no user responding
    19: AttemptStatus.NO_ANSWER,  # no answer
}


@dataclass(frozen=True)
class AttemptEvent:
    """What one AMI event says about one attempt.

    ``step`` is ``originated``, ``answered``, ``outcome`` (``outcome`` set) or ``hangup``
    (outcome decided when applied, from ``cause`` and whether the call was answered).
    """

    attempt_id: str
    step: str
    outcome: AttemptStatus | None = None
    # A fallback outcome (OriginateResponse failure, Hangup cause) waits for the dialplan's
    # authoritative user event before it is applied (see OutboundStage.grace).
    fallback: bool = False
    cause: int | None = None
    reason: str | None = None
    result: str | None = None


def _attempt_uid(value: str | None) -> str | None:
    """``value`` when it is exactly a UUID (an attempt's channel), else None."""
    if value and len(value) == 36 and _UUID.fullmatch(value):
        return value.lower()
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_event(event: AmiEvent) -> AttemptEvent | None:
    """The attempt event ``event`` carries, or None (cheap: called for every AMI event)."""
    name = event.get("Event")
    if name == "UserEvent":
        if event.get("UserEvent") != RESULT_EVENT:
            return None
        found = _UUID.search(event.get("Attempt", ""))
        outcome = OUTCOMES.get(event.get("Outcome", "").strip().lower())
        if found is None or outcome is None:
            log.warning("malformed %s event ignored: %r", RESULT_EVENT, dict(event))
            return None
        result = event.get("Result", "").strip() or None
        return AttemptEvent(
            found.group(0).lower(),
            "outcome",
            outcome,
            reason=f"dialplan: {event.get('Outcome', '').strip()}",
            result=result[:32] if result else None,
        )
    if name == "Newchannel":
        uid = _attempt_uid(event.get("Uniqueid"))
        return AttemptEvent(uid, "originated") if uid else None
    if name == "Newstate":
        uid = _attempt_uid(event.get("Uniqueid"))
        if uid and event.get("ChannelState") == "6":
            return AttemptEvent(uid, "answered")
        return None
    if name == "OriginateResponse":
        uid = _attempt_uid(event.get("Uniqueid"))
        if uid is None:
            found = _UUID.search(event.get("ActionID", ""))
            uid = found.group(0).lower() if found else None
        if uid is None:
            return None
        reason = _int(event.get("Reason")) or 0
        if event.get("Response") == "Success" or reason == REASON_ANSWERED:
            return AttemptEvent(uid, "answered")
        if reason == REASON_HANGUP:
            return None  # the Hangup (with its cause) or the dialplan's event says why
        outcome = REASON_OUTCOMES.get(reason, AttemptStatus.FAILED)
        return AttemptEvent(
            uid, "outcome", outcome, reason=f"originate reason {reason}", fallback=True
        )
    if name == "Hangup":
        uid = _attempt_uid(event.get("Uniqueid"))
        if uid is None:
            return None
        result = event.get(f"ChanVariable({cv.SURVEY_RESULT})")
        return AttemptEvent(
            uid,
            "hangup",
            cause=_int(event.get("Cause")),
            reason=f"hangup cause {event.get('Cause', '?')}",
            result=(result or None),
            fallback=True,
        )
    return None


def hangup_outcome(answered: bool, cause: int | None) -> AttemptStatus:
    """The outcome of an attempt whose channel hung up with ``cause`` (see module doc)."""
    if answered:
        return AttemptStatus.ANSWERED
    return CAUSE_OUTCOMES.get(cause or 0, AttemptStatus.FAILED)


def apply_attempt_event(session: Session, now: datetime, item: AttemptEvent) -> bool:
    """Apply one attempt event through :mod:`services.dialer`; True when it changed state.

    Unknown attempt ids (another system's UUID channel) change nothing.
    """
    if item.step == "originated":
        return dialer.mark_originated(session, now=now, attempt_id=item.attempt_id)
    if item.step == "answered":
        return dialer.attempt_answered(session, now=now, attempt_id=item.attempt_id)
    if item.step == "hangup":
        attempt = session.get(CallAttempt, item.attempt_id)
        if attempt is None:
            return False
        outcome = hangup_outcome(attempt.answered_at is not None, item.cause)
        return dialer.record_outcome(
            session,
            now=now,
            attempt_id=item.attempt_id,
            outcome=outcome,
            hangup_cause=item.cause,
            reason=item.reason,
            result=item.result,
        )
    assert item.outcome is not None
    return dialer.record_outcome(
        session,
        now=now,
        attempt_id=item.attempt_id,
        outcome=item.outcome,
        hangup_cause=item.cause,
        reason=item.reason,
        result=item.result,
    )


@dataclass
class OutboundStats(EventStats):
    applied: int = 0


class OutboundStage(EventStage[AttemptEvent]):
    """Attempt events → dialer services, in arrival order, off the event loop."""

    log = log
    name = "outbound"
    queue_full = "outbound queue full: %d attempt events dropped so far"
    stats: OutboundStats

    def __init__(
        self,
        transaction: Transaction,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offload: Offload = run_in_thread,
        batch_max: int = 200,
        queue_max: int = 50_000,
        retry_cap: float = 30.0,
        grace: float = 3.0,
    ) -> None:
        super().__init__(
            transaction,
            None,
            clock=clock,
            offload=offload,
            batch_max=batch_max,
            queue_max=queue_max,
            flush_interval=5.0,
            retry_cap=retry_cap,
        )
        self.stats = OutboundStats()
        self.grace = grace
        self._held: dict[asyncio.TimerHandle, AttemptEvent] = {}

    def parse(self, event: AmiEvent) -> AttemptEvent | None:
        return parse_event(event)

    def _accept(self, item: AttemptEvent) -> None:
        """A fallback outcome is held for ``grace`` seconds, anything else queued at once."""
        if item.fallback and self.grace > 0:
            self._hold(item)
        else:
            self.submit(item)

    def _hold(self, item: AttemptEvent) -> None:
        """Submit ``item`` after ``grace`` seconds (the loop's timer: never blocks)."""

        def release() -> None:
            self._held.pop(handle, None)
            self.submit(item)

        handle = asyncio.get_running_loop().call_later(self.grace, release)
        self._held[handle] = item

    def release_held(self) -> None:
        """Submit every held fallback now (shutdown: nothing is left behind)."""
        for handle, item in list(self._held.items()):
            handle.cancel()
            self.submit(item)
        self._held.clear()

    def _busy(self) -> bool:
        return super()._busy() or bool(self._held)

    def _stopping(self) -> None:
        self.release_held()

    async def _process(self, batch: list[AttemptEvent]) -> None:
        await self._retrying(
            lambda: self.offload(lambda: self._apply(batch)),
            OperationalError,
            lambda: self.offload(lambda: self._apply_one_by_one(batch)),
            len(batch),
        )
        self.stats.batches += 1

    def _apply(self, batch: list[AttemptEvent]) -> None:
        now = self.clock()
        with self.transaction() as session:
            for item in batch:
                if apply_attempt_event(session, now, item):
                    self.stats.applied += 1
                    log.info("attempt %s: %s %s", item.attempt_id, item.step, item.outcome or "")

    def _apply_one_by_one(self, batch: list[AttemptEvent]) -> None:
        self._each_alone(batch, self._apply, "outbound event")
