"""Agent-first callbacks in the AMI stream: the citizen card pop and the task sync (R5.3).

The dialplan context ``acikkapi-callback-agent-first`` (outbound/callback_dial.py) emits

- ``UserEvent: AkCallbackAnswered`` (``Attempt``, ``Agent: PJSIP/<endpoint>``) as soon as the
  agent answers → :func:`services.callback_pop.callback_agent_answered` writes the call record
  of the callback and the screen pop (with the citizen's card) is published after the commit,
  exactly as for a queue call (ami_listener/screenpop.py);
- ``UserEvent: AkAttemptResult`` when the agent's leg hangs up. The outcome itself is
  recorded by :class:`ami_listener.outbound_events.OutboundStage`; this stage then brings the
  callback task in step (:func:`services.callback_campaign.complete_callback`, idempotent).
  The stages run independently, so the sync may see the attempt before its outcome: the
  periodic :func:`services.callback_campaign.sync_callback_tasks` is the safety net.

Wiring (ami_listener/daemon.py): ``self.callbacks = CallbackStage(lambda: unit_of_work(factory),
self.publisher)``, ``self.callbacks.feed(event)`` in ``on_event`` and
``asyncio.create_task(self.callbacks.run(stop))`` beside the outbound stage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from ami_listener.batching import EventStage, EventStats, Offload, Transaction, run_in_thread
from ami_listener.framing import AmiEvent
from ami_listener.screenpop import ScreenPopPublisher
from services.call_records import ScreenPop
from services.callback_campaign import complete_callback
from services.callback_pop import callback_agent_answered

log = logging.getLogger(__name__)

ANSWERED_EVENT = "AkCallbackAnswered"
RESULT_EVENT = "AkAttemptResult"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_AGENT = re.compile(r"PJSIP/[A-Za-z0-9._-]{1,80}")


@dataclass(frozen=True)
class CallbackEvent:
    """``answered`` (with the agent's interface) or ``result`` of one callback attempt."""

    attempt_id: str
    step: str
    agent_interface: str | None = None


def parse_callback_event(event: AmiEvent) -> CallbackEvent | None:
    """The callback event ``event`` carries, or ``None`` (cheap: called for every event)."""
    if event.get("Event") != "UserEvent":
        return None
    name = event.get("UserEvent")
    if name not in (ANSWERED_EVENT, RESULT_EVENT):
        return None
    found = _UUID.fullmatch(event.get("Attempt", "").strip())
    if found is None:
        if name == ANSWERED_EVENT:
            log.warning("malformed %s event ignored: %r", name, dict(event))
        return None
    attempt_id = found.group(0).lower()
    if name == RESULT_EVENT:
        return CallbackEvent(attempt_id, "result")
    agent = _AGENT.fullmatch(event.get("Agent", "").strip())
    if agent is None:
        log.warning("%s without a PJSIP agent ignored: %r", name, dict(event))
        return None
    return CallbackEvent(attempt_id, "answered", agent.group(0))


@dataclass
class CallbackStats(EventStats):
    synced: int = 0


class CallbackStage(EventStage[CallbackEvent]):
    """Callback events → call record, screen pop and task sync, off the event loop."""

    log = log
    name = "callbacks"
    queue_full = "callback queue full: %d callback events dropped so far"
    stats: CallbackStats

    def __init__(
        self,
        transaction: Transaction,
        publisher: ScreenPopPublisher | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offload: Offload = run_in_thread,
        batch_max: int = 100,
        queue_max: int = 10_000,
        retry_cap: float = 30.0,
    ) -> None:
        super().__init__(
            transaction,
            publisher,
            clock=clock,
            offload=offload,
            batch_max=batch_max,
            queue_max=queue_max,
            flush_interval=5.0,
            retry_cap=retry_cap,
        )
        self.stats = CallbackStats()

    def parse(self, event: AmiEvent) -> CallbackEvent | None:
        return parse_callback_event(event)

    async def _process(self, batch: list[CallbackEvent]) -> None:
        pops = await self._retrying(
            lambda: self.offload(lambda: self._apply(batch)),
            OperationalError,
            lambda: self.offload(lambda: self._apply_one_by_one(batch)),
            len(batch),
        )
        self.stats.batches += 1
        await self._publish(pops)

    def _apply(self, batch: list[CallbackEvent]) -> list[ScreenPop]:
        now = self.clock()
        pops: list[ScreenPop] = []
        with self.transaction() as session:
            for item in batch:
                if item.step == "answered" and item.agent_interface is not None:
                    pop = callback_agent_answered(
                        session,
                        now=now,
                        attempt_id=item.attempt_id,
                        agent_interface=item.agent_interface,
                    )
                    if pop is not None:
                        pops.append(pop)
                        log.info("callback %s: card popped for %s", item.attempt_id, pop.agent_id)
                elif complete_callback(session, now=now, attempt_id=item.attempt_id) is not None:
                    self.stats.synced += 1
        return pops

    def _apply_one_by_one(self, batch: list[CallbackEvent]) -> list[ScreenPop]:
        alone = self._each_alone(batch, self._apply, "callback event")
        return [pop for pops in alone for pop in pops]
