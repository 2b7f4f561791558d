"""Callbacks are dialled agent first (R5.3): a free agent's phone rings, then the citizen's.

:func:`build_callback_request` turns a claimed callback attempt into an ``Originate`` of the
agent's phone (``PJSIP/<endpoint>``, ``ChannelId`` = the attempt id) into the dialplan
context ``acikkapi-callback-agent-first`` (dialplan/extensions.conf.in). When the agent
answers, the dialplan announces the callback to the listener (``UserEvent
AkCallbackAnswered``: the citizen card is popped on the agent's screen,
:mod:`services.callback_pop`), plays a short beep, dials the citizen through
``Local/<digits>@acikkapi-outbound-dial`` (the trunk, with the call centre's number as
caller ID) and, from a hangup handler — so also when the agent hangs up first — emits
``UserEvent AkAttemptResult`` with the outcome from ``DIALSTATUS``: ``ANSWER`` → answered,
``BUSY`` → busy, ``NOANSWER`` → no_answer, anything else (agent hung up first, congestion,
no route) → failed. The AMI listener records it (ami_listener/outbound_events.py).

Only a free agent may be rung: :func:`free_agent_endpoints` reads ``QueueStatus`` and keeps
queue members that are signed in, not paused (wrap-up is a pause), not in a call and whose
phone is idle. When none is free the dialer must not claim callback attempts at all
(:func:`services.callback_campaign.limit_callbacks_to_free_agents`), so no attempt of the
citizen is spent on a missing agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from outbound.ami_client import ActionSender, OriginateRequest
from outbound.dial import action_id, dial_digits, order_variables
from services.dialer import AttemptOrder

__all__ = [
    "AGENT_FIRST_CONTEXT",
    "AGENT_RING_MS",
    "QueueMember",
    "build_callback_request",
    "choose_free_agent",
    "endpoint_of",
    "free_agent_endpoint",
    "free_agent_endpoints",
    "queue_members",
]

AGENT_FIRST_CONTEXT = "acikkapi-callback-agent-first"
AGENT_RING_MS = 20_000  # how long the agent's phone rings before the Originate gives up
_IDLE_DEVICE = frozenset({0, 1})  # AST_DEVICE_UNKNOWN (no qualify), AST_DEVICE_NOT_INUSE


def endpoint_of(agent: str) -> str:
    """``PJSIP/1001`` or ``1001`` → ``1001``; ``ValueError`` for anything but a plain
    endpoint name (letters, digits, ``-``, ``_``, ``.``)."""
    name = agent[len("PJSIP/") :] if agent.upper().startswith("PJSIP/") else agent
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise ValueError(f"not a PJSIP endpoint: {agent!r}")
    return name


def build_callback_request(
    order: AttemptOrder, agent_endpoint: str, *, ring_timeout_ms: int = AGENT_RING_MS
) -> OriginateRequest:
    """The agent-first ``Originate`` of callback attempt ``order`` (see the module doc).

    Channel ``PJSIP/<agent_endpoint>`` with ``ChannelId`` = attempt id (the listener's key
    for every event of the call), caller ID ``Geri arama <citizen's number>`` on the agent's
    phone, context ``acikkapi-callback-agent-first`` with the citizen's digits as the
    extension (the dialplan dials them through the trunk). ``AK_ATTEMPT_ID`` is set on the agent's
    channel only (not inherited): the citizen's leg must not report an outcome of its own.
    Raises ``ValueError`` for a number that is not E.164 or an endpoint that is not plain.
    """
    endpoint = endpoint_of(agent_endpoint)
    digits = dial_digits(order.phone_e164)
    return OriginateRequest(
        channel=f"PJSIP/{endpoint}",
        context=AGENT_FIRST_CONTEXT,
        exten=digits,
        priority=1,
        channel_id=order.attempt_id,
        caller_id=f'"Geri arama" <{digits}>',
        variables=order_variables(order, inherit_attempt=False),
        timeout_ms=ring_timeout_ms,
        action_id=action_id(order.attempt_id),
    )


# --- who is free ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueMember:
    """One queue membership from ``QueueStatus`` (a ``QueueMember`` event)."""

    queue: str
    interface: str  # PJSIP/1001
    paused: bool
    reason: str
    in_call: bool
    device_status: int  # 1 not in use, 2 in use, 5 unavailable, 6 ringing, ...
    last_call: int  # epoch seconds of the member's last call (0: none)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> QueueMember:
        def text(key: str) -> str:
            value = event.get(key, "")
            if isinstance(value, list):
                value = value[0] if value else ""
            return str(value)

        def number(key: str) -> int:
            try:
                return int(text(key))
            except ValueError:
                return -1

        return cls(
            queue=text("Queue"),
            interface=text("Location") or text("Interface") or text("StateInterface"),
            paused=text("Paused") == "1",
            reason=text("PausedReason"),
            in_call=text("InCall") == "1",
            device_status=number("Status"),
            last_call=max(0, number("LastCall")),
        )


def queue_members(events: Iterable[Mapping[str, Any]]) -> list[QueueMember]:
    """The ``QueueMember`` events of a ``QueueStatus`` answer."""
    return [QueueMember.from_event(e) for e in events if str(e.get("Event", "")) == "QueueMember"]


def choose_free_agent(
    members: Iterable[QueueMember],
    *,
    exclude: Collection[str] = (),
    prefer_queue: str | None = None,
) -> list[str]:
    """PJSIP endpoints of free agents, the one idle longest first (fair share).

    An interface is free when every one of its memberships is unpaused (a pause covers
    breaks, wrap-up and signed-out agents), none is in a call, and its phone is idle.
    Agents in ``prefer_queue`` (e.g. the English queue for an English callback) come first;
    endpoints in ``exclude`` (already given a callback this tick) are left out.
    """
    by_interface: dict[str, list[QueueMember]] = {}
    for member in members:
        if member.interface.upper().startswith("PJSIP/"):
            by_interface.setdefault(member.interface, []).append(member)
    free: list[tuple[int, int, str]] = []
    for interface, states in by_interface.items():
        if any(m.paused or m.in_call or m.device_status not in _IDLE_DEVICE for m in states):
            continue
        endpoint = endpoint_of(interface)
        if endpoint in exclude:
            continue
        preferred = 0 if prefer_queue and any(m.queue == prefer_queue for m in states) else 1
        free.append((preferred, max(m.last_call for m in states), endpoint))
    return [endpoint for _p, _l, endpoint in sorted(free)]


async def free_agent_endpoints(
    manager: ActionSender, *, timeout: float = 3.0, prefer_queue: str | None = None
) -> list[str]:
    """Free agents' endpoints right now, from ``QueueStatus`` (see :func:`choose_free_agent`).

    ``manager`` is the dialer's AMI connection (user ``dialer``: ``QueueStatus`` needs no
    write class). Raises ``TimeoutError``/``ConnectionError`` when the PBX does not answer:
    the caller then places no callback this tick.
    """
    reply = await asyncio.wait_for(
        manager.action({"Action": "QueueStatus"}, timeout=timeout, as_list=True), timeout
    )
    events = reply if isinstance(reply, list) else [reply]
    return choose_free_agent(queue_members(events), prefer_queue=prefer_queue)


async def free_agent_endpoint(manager: ActionSender, *, timeout: float = 3.0) -> str | None:
    """The endpoint of one free agent (idle longest), or ``None`` when nobody is free."""
    endpoints = await free_agent_endpoints(manager, timeout=timeout)
    return endpoints[0] if endpoints else None
