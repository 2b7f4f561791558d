"""The wallboard's view of Asterisk: ``QueueStatus`` of every queue -> :class:`LiveQueues`.

Agent states use the agent screen's rules (:func:`agent_console.ami.summarise`:
signed out, paused with a reason, wrap-up, in a call, phone offline, ready), so the wallboard
and the agent's own screen never disagree. Callers are the ``QueueEntry`` events (queue,
position, seconds waited); their caller IDs stay off the wallboard.

One ``QueueStatus`` round trip serves every wallboard of the process for :data:`TTL`
seconds, so ten wall screens polling cost the PBX what one does.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from agent_console.ami import MemberState, Message, int_field, member_interface, summarise
from agent_console.context import console
from services.errors import DomainError
from services.wallboard import LiveCaller, LiveMember, LiveQueues

TTL = 2.0  # seconds a QueueStatus answer is reused (app.config["WALLBOARD_PBX_TTL"] overrides)
_CACHE_KEY = "acikkapi.wallboard_pbx"


def live_queues(events: Iterable[Message], at: datetime) -> LiveQueues:
    """Parse the events of one ``QueueStatus`` (all queues)."""
    members: dict[str, list[MemberState]] = defaultdict(list)
    names: dict[str, str] = {}
    callers: list[LiveCaller] = []
    for event in events:
        kind = event.get("Event")
        if kind == "QueueMember":
            interface = member_interface(event)
            if not interface:
                continue
            members[interface].append(MemberState.from_event(event))
            names.setdefault(interface, event.get("Name") or event.get("MemberName") or "")
        elif kind == "QueueEntry":
            callers.append(
                LiveCaller(
                    queue=event.get("Queue", ""),
                    position=int_field(event.get("Position")),
                    wait_seconds=int_field(event.get("Wait")),
                )
            )
    live_members = []
    for interface, states in sorted(members.items()):
        state = summarise(states)
        live_members.append(
            LiveMember(
                interface=interface,
                name=names.get(interface, ""),
                state=state.code,
                reason=state.reason,
                queues=state.queues,
            )
        )
    callers.sort(key=lambda c: (c.queue, c.position))
    return LiveQueues(at=at, callers=tuple(callers), members=tuple(live_members))


@dataclass
class _Cached:
    fetched: float  # time.monotonic()
    live: LiveQueues | None
    error: DomainError | None


def _cache() -> tuple[threading.Lock, dict[str, _Cached]]:
    found = current_app.extensions.get(_CACHE_KEY)
    if found is None:
        found = current_app.extensions.setdefault(_CACHE_KEY, (threading.Lock(), {}))
    assert isinstance(found, tuple)
    return found


def fetch(now: datetime, *, clock: Callable[[], float] = time.monotonic) -> _Cached:
    """Asterisk's queue state (cached :data:`TTL` s per application); ``live`` is ``None``
    and ``error`` says why when the PBX does not answer."""
    lock, entries = _cache()
    ttl = float(current_app.config.get("WALLBOARD_PBX_TTL", TTL))
    with lock:  # one QueueStatus at a time; the others wait and reuse its answer
        cached = entries.get("live")
        if cached is not None and clock() - cached.fetched < ttl:
            return cached
        try:
            with console().pbx() as pbx:
                fresh = _Cached(clock(), live_queues(pbx.queue_overview(), now), None)
        except DomainError as exc:
            fresh = _Cached(clock(), None, exc)
        entries["live"] = fresh
        return fresh
