"""The dialer's RQ jobs: ``dial_tick`` (claim → commit → Originate) and ``recover_attempts``.

Decision 0021, steps 1, 2 and 5 (R5.6). ``dial_tick`` claims due attempts in one short
transaction (:func:`services.dialer.claim_due_attempts`: window, concurrency cap and pacing
are decided there) and **commits before** any ``Originate`` is sent, so a worker killed at
any point can lose nothing and dial nothing twice:

- killed before the commit: nothing was claimed;
- killed after the commit, before the ``Originate``: the attempt stays ``claimed`` until its
  short lease runs out, then :func:`recover_attempts` fails it ("worker lost before
  originate") and the target gets a new attempt number;
- killed after the ``Originate``, before ``mark_originated``: the AMI listener saw the
  channel appear (``Newchannel``, Uniqueid = attempt id) and records the outcome itself.

The ``Originate`` goes out as AMI user ``dialer`` (``originate,call`` only), ``Async: true``,
``ChannelId`` = attempt id (:mod:`outbound.dial`). Within one tick the originates of a
campaign are spread ``1 / calls_per_second`` apart, so a burst of claimed slots becomes a
steady rate. Asterisk refusing the action → ``record_outcome(failed)`` with its message; no
answer to the action (timeout, connection lost) → left to the listener and to recovery,
never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.db import unit_of_work
from acikkapi.settings import Settings
from models import (
    AttemptStatus,
    Campaign,
    CampaignKind,
)
from outbound import callback_dial
from outbound.ami_client import ActionSender, DialerSession, originate
from outbound.dial import RING_TIMEOUT_MS, build_request
from services import dialer
from services.callback_campaign import callbacks_due, limit_callbacks_to_free_agents
from services.dialer import AttemptOrder

log = logging.getLogger(__name__)

QUEUE = "outbound"
ACTION_TIMEOUT = 5.0
# A tick sends its claimed attempts within this many seconds of the first one, well inside
# the claim lease (services.dialer.CLAIM_LEASE): a later Originate could race recovery.
SEND_BUDGET_S = dialer.CLAIM_LEASE.total_seconds() / 2
CLAIM_LIMIT = 50

Connect = Callable[[], DialerSession]


@dataclass
class TickReport:
    """What one tick did (returned by the RQ job, so visible in ``rq info``/job results)."""

    claimed: int = 0
    originated: int = 0
    refused: int = 0
    unknown: int = 0  # no answer to the action: left to the listener and recovery
    unsent: int = 0  # not sent (the claim lease was nearly over): claim released
    attempt_ids: list[str] = field(default_factory=list)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def _spacing(session: Session, orders: Sequence[AttemptOrder]) -> dict[int, float]:
    ids = {o.campaign_id for o in orders}
    rows = session.execute(
        select(Campaign.id, Campaign.calls_per_second).where(Campaign.id.in_(ids))
    ).all()
    return {cid: 1.0 / max(cps, 0.001) for cid, cps in rows}


def _schedule(orders: Sequence[AttemptOrder], spacing: dict[int, float]) -> list[float]:
    """Offsets (s from the tick's first originate) spreading each campaign's orders."""
    seen: dict[int, int] = {}
    offsets = []
    for order in orders:
        index = seen.get(order.campaign_id, 0)
        seen[order.campaign_id] = index + 1
        offsets.append(index * spacing.get(order.campaign_id, 0.0))
    return offsets


# (order, "accepted" | "refused" | "unknown" | "unsent", message)
Result = tuple[AttemptOrder, str, str]


async def _send_all(
    manager: ActionSender,
    orders: Sequence[AttemptOrder],
    offsets: Sequence[float],
    timeout: float,
    ring_timeout_ms: int = RING_TIMEOUT_MS,
    agents: list[str] | None = None,
) -> list[Result]:
    """Originate each order at its offset (callbacks: to the next free agent in ``agents``)."""
    results: list[Result] = []
    start = time.monotonic()
    free = list(agents or [])
    for order, offset in zip(orders, offsets, strict=True):
        wait = start + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.monotonic() - start > SEND_BUDGET_S:
            # Past this, recovery may already have failed the claim and retried the target:
            # an Originate now could dial the citizen twice. Not sent; recovery decides.
            results.append((order, "unsent", "claim lease nearly over; not sent"))
            continue
        try:
            if order.kind == CampaignKind.CALLBACK:
                if not free:
                    results.append((order, "refused", "no free agent for the callback"))
                    continue
                request = callback_dial.build_callback_request(order, free.pop(0))
            else:
                request = build_request(order, ring_timeout_ms=ring_timeout_ms)
        except ValueError as exc:
            results.append((order, "refused", str(exc)))
            continue
        try:
            reply = await originate(manager, request, timeout=timeout)
        except (TimeoutError, ConnectionError, OSError) as exc:
            log.error("attempt %s: Originate unanswered: %r", order.attempt_id, exc)
            results.append((order, "unknown", repr(exc)))
            continue
        if reply.accepted:
            results.append((order, "accepted", reply.message))
        else:
            log.warning("attempt %s: Originate refused: %s", order.attempt_id, reply.message)
            results.append((order, "refused", f"Asterisk refused: {reply.message}"))
    return results


def _claim(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    worker: str,
    limit: int,
    free_agents: int | None,
) -> tuple[list[AttemptOrder], dict[int, float]]:
    """Step 1 in its own committed transaction (callbacks capped by free agents first)."""
    with unit_of_work(sessions) as session:
        if free_agents is not None:
            limit_callbacks_to_free_agents(session, now=now, free_agents=free_agents)
        orders = dialer.claim_due_attempts(session, now=now, worker=worker, limit=limit)
        spacing = _spacing(session, orders) if orders else {}
    return orders, spacing


async def _tick(
    sessions: sessionmaker[Session],
    connect: Connect,
    *,
    now: datetime,
    worker: str,
    limit: int,
    timeout: float,
    ring_timeout_ms: int,
) -> tuple[list[AttemptOrder], list[Result]]:
    """Connect to the PBX **before** claiming: an unreachable PBX (or a refused login)
    claims nothing, so no citizen's attempt is spent on a call that was never placed."""
    with unit_of_work(sessions) as session:
        need_agents = callbacks_due(session, now=now)
        if not need_agents and not dialer.targets_due(session, now=now):
            return [], []
    orders: list[AttemptOrder] = []
    try:
        async with connect() as manager:
            agents: list[str] = []
            if need_agents:
                try:
                    agents = await callback_dial.free_agent_endpoints(manager)
                except (TimeoutError, ConnectionError) as exc:
                    log.warning("dialer: QueueStatus unanswered, no callbacks now: %r", exc)
            orders, spacing = _claim(
                sessions,
                now=now,
                worker=worker,
                limit=limit,
                free_agents=len(agents) if need_agents else None,
            )
            if not orders:
                return orders, []
            offsets = _schedule(orders, spacing)
            return orders, await _send_all(
                manager, orders, offsets, timeout, ring_timeout_ms, agents
            )
    except (TimeoutError, ConnectionError, OSError, KeyError) as exc:
        # Before the claim: nothing was claimed. After it (the connection broke while
        # sending): whether each call was placed is unknown — listener and recovery decide.
        log.error("dialer: AMI unavailable (%d attempts left to recovery): %r", len(orders), exc)
        return orders, [(o, "unknown", f"PBX unavailable: {exc!r}"[:200]) for o in orders]


def dial_once(
    sessions: sessionmaker[Session],
    connect: Connect,
    *,
    now: datetime | None = None,
    worker: str | None = None,
    limit: int = CLAIM_LIMIT,
    timeout: float = ACTION_TIMEOUT,
    ring_timeout_ms: int = RING_TIMEOUT_MS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TickReport:
    """One tick: claim at ``now`` (default: the clock), commit, originate, record replies.

    ``now`` may be any moment (tests travel in time to check the calling window); the
    replies are recorded at ``now`` too when it was given, else at the clock's time.
    ``ring_timeout_ms`` bounds the ringing of the campaign calls (not of callbacks). When a
    callback is due, the free agents are read from the PBX first and the callback campaign
    is capped to them (:func:`services.callback_campaign.limit_callbacks_to_free_agents`).
    """
    report = TickReport()
    orders, results = asyncio.run(
        _tick(
            sessions,
            connect,
            now=now or clock(),
            worker=worker or worker_name(),
            limit=limit,
            timeout=timeout,
            ring_timeout_ms=ring_timeout_ms,
        )
    )
    report.claimed = len(orders)
    if not orders:
        return report
    with unit_of_work(sessions) as session:
        for order, status, message in results:
            at = now or clock()
            report.attempt_ids.append(order.attempt_id)
            if status == "accepted":
                report.originated += 1
                dialer.mark_originated(session, now=at, attempt_id=order.attempt_id)
            elif status == "refused":
                report.refused += 1
                dialer.record_outcome(
                    session,
                    now=at,
                    attempt_id=order.attempt_id,
                    outcome=AttemptStatus.FAILED,
                    reason=message[:200],
                )
            elif status == "unsent":
                report.unsent += 1
                dialer.release_claim(session, now=at, attempt_id=order.attempt_id)
            else:
                report.unknown += 1
    log.info(
        "dial tick: %d claimed, %d originated, %d refused, %d unknown, %d unsent",
        report.claimed,
        report.originated,
        report.refused,
        report.unknown,
        report.unsent,
    )
    return report


def recover_once(sessions: sessionmaker[Session], *, now: datetime | None = None) -> int:
    """Fail attempts whose lease ran out (decision 0021 step 5); how many."""
    with unit_of_work(sessions) as session:
        return dialer.recover_stale_attempts(session, now=now or datetime.now(UTC))


def _connect_from(settings: Settings) -> Connect:
    return lambda: DialerSession.from_settings(settings)


def dial_tick() -> dict[str, int]:
    """RQ job (queue ``outbound``, every second): one :func:`dial_once` tick."""
    from jobs.runtime import runtime

    rt = runtime()
    report = dial_once(rt.sessions, _connect_from(rt.settings))
    return {
        "claimed": report.claimed,
        "originated": report.originated,
        "refused": report.refused,
        "unknown": report.unknown,
        "unsent": report.unsent,
    }


def recover_attempts() -> int:
    """RQ job (queue ``outbound``, every minute): :func:`recover_once` at the clock's time."""
    from jobs.runtime import runtime

    return recover_once(runtime().sessions)
