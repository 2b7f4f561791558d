"""Reconciliation after every (re)login: AMI has no replay (engineering.md §3).

0. ``QueueStatus`` (members: name -> interface for queue_log; waiting callers for step 3).
1. ``queue_log`` lines written since the last committed offset -> facts (calls that began and
   ended while the listener was down get complete records); the offset is stored only after
   the writer committed those facts (a :class:`~ami_listener.writer.Checkpoint`).
2. ``CoreShowChannels`` -> every live channel snapshot goes through the tracker (in-progress
   calls are upserted; a caller leg in ``Queue`` sharing a bridge with another channel is an
   answered call whose ``AgentConnect`` was missed).
3. ``QueueStatus`` -> callers still waiting (``QueueEntry``: queue, position, wait).
4. Open records of calls that are no longer live are closed (``CloseVanished``).

Every list action is bounded by a timeout; a failure is logged and the rest still runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ami_listener.call_tracker import CallTracker, interface_of
from ami_listener.framing import AmiEvent
from ami_listener.queue_log import QueueLogReader, facts_from_entries
from ami_listener.writer import Checkpoint, CloseVanished, FactWriter
from services.call_records import AgentAnswered, CallFact, QueueJoined, RecordingStarted

log = logging.getLogger(__name__)

ListAction = Callable[[dict[str, str]], Awaitable[list[AmiEvent]]]


@dataclass
class ReconcileReport:
    queue_log_facts: int = 0
    live_channels: int = 0
    waiting_callers: int = 0
    missed_answers: int = 0
    failures: int = 0


def member_interfaces(status: list[AmiEvent]) -> dict[str, str]:
    """Member name -> interface from ``QueueMember`` events (names used twice are left out)."""
    found: dict[str, set[str]] = defaultdict(set)
    for event in status:
        if event.get("Event") != "QueueMember":
            continue
        name = (event.get("Name") or "").strip()
        interface = (event.get("Location") or event.get("StateInterface") or "").strip()
        if name and interface and name != interface:
            found[name].add(interface)
    return {name: next(iter(ifaces)) for name, ifaces in found.items() if len(ifaces) == 1}


def _duration(value: str | None) -> timedelta | None:
    parts = (value or "").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return timedelta(hours=int(parts[0]), minutes=int(parts[1]), seconds=int(parts[2]))


def recordings_on_disk(facts: list[CallFact], monitor_dir: Path | None) -> list[CallFact]:
    """Recordings of answered calls found while the listener was away.

    The dialplan names every recording ``<CALL_ID>.wav`` in the monitor spool (the live
    ``MixMonitorStart`` event is the only other source, and it was missed); a file that
    exists under that name belongs to that call.
    """
    if monitor_dir is None:
        return []
    found: list[CallFact] = []
    for fact in facts:
        if not isinstance(fact, AgentAnswered):
            continue
        name = f"{fact.call_id}.wav"
        if "/" not in fact.call_id and (monitor_dir / name).is_file():
            found.append(RecordingStarted(call_id=fact.call_id, at=fact.at, path=name))
    return found


async def reconcile(
    list_action: ListAction,
    tracker: CallTracker,
    writer: FactWriter,
    queue_log: QueueLogReader | None,
    internal_caller: re.Pattern[str],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    monitor_dir: Path | None = None,
) -> ReconcileReport:
    report = ReconcileReport()
    answered: set[str] = set()
    # QueueStatus first: Asterisk 22 writes the member *name* (e.g. "Nihan Kurt") in the agent
    # column of queue_log call events whatever log_membername_as_agent says; its QueueMember
    # events map names back to interfaces (PJSIP/1005), which tie answers to staff users.
    status: list[AmiEvent] = []
    status_ok = False
    try:
        status = await list_action({"Action": "QueueStatus"})
        status_ok = True
    except (TimeoutError, ConnectionError) as exc:
        report.failures += 1
        log.warning("QueueStatus failed: %s", exc or type(exc).__name__)
    if queue_log is not None:
        try:
            entries = await asyncio.to_thread(queue_log.read_new)
            facts = facts_from_entries(entries, internal_caller, member_interfaces(status))
            facts += recordings_on_disk(facts, monitor_dir)
            for fact in facts:
                writer.submit(fact)
                if isinstance(fact, AgentAnswered):
                    answered.add(fact.call_id)
            writer.submit(Checkpoint(queue_log.commit))
            report.queue_log_facts = len(facts)
        except OSError as exc:
            report.failures += 1
            log.warning("queue_log not readable: %s", exc)

    now = clock()
    channels: list[AmiEvent] = []
    channels_ok = False
    try:
        channels = [
            e
            for e in await list_action({"Action": "CoreShowChannels"})
            if e.get("Event") == "CoreShowChannel"
        ]
        channels_ok = True
    except (TimeoutError, ConnectionError) as exc:
        report.failures += 1
        log.warning("CoreShowChannels failed: %s", exc or type(exc).__name__)
    report.live_channels = len(channels)
    by_bridge: dict[str, list[AmiEvent]] = defaultdict(list)
    for event in channels:
        for fact in tracker.feed(dict(event, Timestamp=str(now.timestamp()))):
            writer.submit(fact)
        if bridge := event.get("BridgeId"):
            by_bridge[bridge].append(event)
    live: set[str] = set()
    for event in channels:
        uid = event.get("Uniqueid", "")
        call_id = tracker.call_id_for(uid)
        if call_id is None:
            continue
        live.add(call_id)
        bridge = event.get("BridgeId")
        if uid != call_id or event.get("Application") != "Queue" or not bridge:
            continue
        others = [o for o in by_bridge[bridge] if o.get("Uniqueid") != uid]
        if not others or call_id in answered:
            continue
        agent = others[0]
        age = _duration(agent.get("Duration")) or timedelta(0)
        interface = interface_of(agent.get("Channel")) or ""
        for fact in tracker.synthetic_answer(call_id, interface, now - age):
            writer.submit(fact)
            report.missed_answers += 1

    for entry in status if status_ok else []:
        if entry.get("Event") != "QueueEntry":
            continue
        call_id = tracker.call_id_for(entry.get("Uniqueid", ""))
        wait = entry.get("Wait", "")
        if call_id is None or not wait.isdigit():
            continue
        position = entry.get("Position", "")
        writer.submit(
            QueueJoined(
                call_id,
                now - timedelta(seconds=int(wait)),
                entry.get("Queue", ""),
                int(position) if position.isdigit() else None,
            )
        )
        report.waiting_callers += 1

    if channels_ok:
        writer.submit(CloseVanished(frozenset(live), now))
    return report
