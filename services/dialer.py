"""The dialer's policy: claim, originate, outcome, retry, recovery (R5.6; decision 0021).

The one place that decides who is called next and what happens after a call. Workers and
the AMI listener only report facts (claimed, originated, answered, hung up); this module
turns them into attempt and target states. Nothing here commits: the caller commits, and a
worker sends the ``Originate`` only **after** committing its claim.

Guarantees (each tested on SQLite and PostgreSQL, tests/domain/test_dialer.py):

* **Concurrency cap** — a campaign never has more than ``max_concurrent`` attempts in flight
  (``claimed`` + ``originated``): the campaign row is locked (``FOR UPDATE`` on PostgreSQL;
  SQLite serialises writers with ``BEGIN IMMEDIATE``) while in-flight attempts are counted.
* **Window** — nothing is claimed outside the campaign's calling window
  (:mod:`services.calling_window`; weekdays, local hours, holidays).
* **Pacing** — claims are given slots ``1 / calls_per_second`` apart (``next_dial_at``), and
  a claim at ``now`` only takes slots inside the current wall-clock second, so at most
  ``ceil(calls_per_second)`` claims fall in any one second of ``now``.
* **No double dial** — due targets are taken with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  and ``UNIQUE (target_id, number)`` refuses a second attempt *n* of a target. A retry is a
  new attempt number, written only after the previous attempt is terminal.
* **First outcome wins** — :func:`record_outcome` changes an attempt only while it is in
  flight; a replayed or late event returns False and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetStatus,
    Language,
)
from models.base import UTCDateTime
from services.callback_campaign import sync_callback_task
from services.calling_window import LOCAL_TZ, CallingWindow, HolidayDates, holiday_dates
from services.campaign_targets import call_refusals
from services.survey_sms import on_survey_target_exhausted

__all__ = [
    "CLAIM_LEASE",
    "IN_FLIGHT",
    "ORIGINATE_LEASE",
    "TERMINAL",
    "AttemptOrder",
    "attempt_answered",
    "campaign_for_attempt",
    "claim_due_attempts",
    "mark_originated",
    "next_claim_at",
    "record_outcome",
    "recover_stale_attempts",
    "release_claim",
    "targets_due",
]

IN_FLIGHT = (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)
TERMINAL = frozenset(
    {AttemptStatus.ANSWERED, AttemptStatus.NO_ANSWER, AttemptStatus.BUSY, AttemptStatus.FAILED}
)
CLAIM_LEASE = timedelta(seconds=30)
# An agent-first callback whose agent did not pick up is tried again this soon, without
# counting against the citizen's attempts, at most AGENT_MISSES times beyond them.
AGENT_RETRY = timedelta(minutes=1)
AGENT_MISSES = 10
ORIGINATE_LEASE = timedelta(hours=2)
LOST_BEFORE_ORIGINATE = "worker lost before originate"
NO_OUTCOME = "no outcome reported"

# Hot statements, built once (Core, on the table: no ORM bookkeeping per event).
_ATTEMPTS = cast(Table, CallAttempt.__table__)
_A = _ATTEMPTS.c
_IN_FLIGHT_VALUES = [s.value for s in (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)]
_MARK_ORIGINATED = (
    update(_ATTEMPTS)
    .where(_A.id == bindparam("attempt_id"), _A.status == AttemptStatus.CLAIMED)
    .values(
        status=AttemptStatus.ORIGINATED,
        originated_at=bindparam("now", type_=UTCDateTime()),
        lease_until=bindparam("until", type_=UTCDateTime()),
    )
)
_ATTEMPT_STATUS = select(_A.status).where(_A.id == bindparam("attempt_id"))
_ANSWERED = (
    update(_ATTEMPTS)
    .where(
        _A.id == bindparam("attempt_id"),
        _A.status.in_(_IN_FLIGHT_VALUES),
        _A.answered_at.is_(None),
    )
    .values(
        status=AttemptStatus.ORIGINATED,
        answered_at=bindparam("now", type_=UTCDateTime()),
        originated_at=func.coalesce(_A.originated_at, bindparam("now", type_=UTCDateTime())),
        lease_until=bindparam("until", type_=UTCDateTime()),
    )
)
_OUTCOME = (
    update(_ATTEMPTS)
    .where(_A.id == bindparam("attempt_id"), _A.status.in_(_IN_FLIGHT_VALUES))
    .values(
        status=bindparam("outcome"),
        ended_at=bindparam("now", type_=UTCDateTime()),
        hangup_cause=bindparam("cause"),
        reason=bindparam("reason"),
        lease_until=None,
    )
    .returning(_A.target_id, _A.campaign_id, _A.answered_at)
)
_LOCK_CAMPAIGN = (
    select(Campaign)
    .where(Campaign.id == bindparam("campaign_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_TARGET = (
    select(CampaignTarget)
    .where(CampaignTarget.id == bindparam("target_id"))
    .execution_options(populate_existing=True)
)
_OPEN_TARGETS = select(
    exists().where(
        CampaignTarget.campaign_id == bindparam("campaign_id"),
        CampaignTarget.status.in_((CampaignTargetStatus.PENDING, CampaignTargetStatus.DIALING)),
    )
)


@dataclass(frozen=True)
class AttemptOrder:
    """Everything a worker needs to originate one attempt (and the listener to route it)."""

    attempt_id: str  # the AMI ChannelId / Uniqueid of the call
    campaign_id: int
    kind: CampaignKind
    number: int  # 1 for the first attempt of the target
    phone_e164: str
    language: Language
    ticket_id: int | None
    citizen_id: int | None
    callback_task_id: int | None
    target_id: int


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


def _holidays_around(session: Session, now: datetime) -> HolidayDates:
    today = now.astimezone(LOCAL_TZ).date()
    return holiday_dates(session, today - timedelta(days=1), today + timedelta(days=1))


def _in_flight(session: Session, campaign_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id, CallAttempt.status.in_(IN_FLIGHT))
        )
        or 0
    )


def _pacing_slots(campaign: Campaign, now: datetime, wanted: int) -> list[datetime]:
    """Up to ``wanted`` dial slots for ``now``: ``1/cps`` apart, from ``next_dial_at`` (or the
    start of the current second), all inside the current wall-clock second of ``now``."""
    interval = timedelta(seconds=1.0 / max(campaign.calls_per_second, 0.001))
    second = now.replace(microsecond=0)
    horizon = second + timedelta(seconds=1)
    slot = second
    if campaign.next_dial_at is not None:
        slot = max(slot, _utc(campaign.next_dial_at))
    slots: list[datetime] = []
    while len(slots) < wanted and slot < horizon:
        slots.append(slot)
        slot += interval
    return slots


def _has_open_targets(session: Session, campaign_id: int) -> bool:
    return bool(session.scalar(_OPEN_TARGETS, {"campaign_id": campaign_id}))


def _finish_if_done(session: Session, campaign: Campaign, now: datetime) -> None:
    if campaign.status == CampaignStatus.RUNNING and not _has_open_targets(session, campaign.id):
        campaign.status = CampaignStatus.FINISHED
        campaign.finished_at = now
        campaign.updated_at = now


def _lock_campaign(session: Session, campaign_id: int) -> Campaign | None:
    return session.scalars(_LOCK_CAMPAIGN, {"campaign_id": campaign_id}).one_or_none()


def claim_due_attempts(
    session: Session,
    *,
    now: datetime,
    worker: str,
    limit: int = 50,
    lease: timedelta = CLAIM_LEASE,
) -> list[AttemptOrder]:
    """Claim up to ``limit`` attempts that may be dialled at ``now`` (decision 0021 step 1).

    For every RUNNING campaign whose calling window is open at ``now``: lock the campaign,
    count its in-flight attempts, take at most ``max_concurrent - in_flight`` due targets
    (PENDING, ``next_attempt_at <= now``) within the pacing slots, write one ``claimed``
    :class:`CallAttempt` per target (``lease_until = now + lease``) and set the target
    DIALING. A running campaign with no pending or dialing target left becomes FINISHED.
    The caller commits, then originates each returned order.
    """
    now = _utc(now)
    running = list(
        session.scalars(
            select(Campaign).where(Campaign.status == CampaignStatus.RUNNING).order_by(Campaign.id)
        )
    )
    if not running or limit <= 0:
        return []
    holidays = _holidays_around(session, now)
    orders: list[AttemptOrder] = []
    for candidate in running:
        if len(orders) >= limit:
            break
        if not CallingWindow.of(candidate).is_open(now, holidays):
            continue
        campaign = _lock_campaign(session, candidate.id)
        if campaign is None or campaign.status != CampaignStatus.RUNNING:
            continue
        room = min(campaign.max_concurrent - _in_flight(session, campaign.id), limit - len(orders))
        if room <= 0:
            continue
        slots = _pacing_slots(campaign, now, room)
        if not slots:
            continue
        targets = list(
            session.scalars(
                select(CampaignTarget)
                .where(
                    CampaignTarget.campaign_id == campaign.id,
                    CampaignTarget.status == CampaignTargetStatus.PENDING,
                    CampaignTarget.next_attempt_at <= now,
                )
                .order_by(CampaignTarget.next_attempt_at, CampaignTarget.id)
                .limit(len(slots))
                .with_for_update(skip_locked=True)
            )
        )
        if targets and campaign.kind is not CampaignKind.CALLBACK:
            # Opt-outs recorded since the targets were added are honoured too (R5.6). A
            # callback the citizen asked for is exempt (services.callback_campaign).
            refusals = call_refusals(session, [(t.phone_e164, t.citizen_id) for t in targets])
            for target, note in zip(targets, refusals, strict=True):
                if note is not None:
                    target.status = CampaignTargetStatus.SKIPPED
                    target.note = note
                    target.completed_at = now
                    target.next_attempt_at = None
            targets = [t for t, note in zip(targets, refusals, strict=True) if note is None]
            session.flush()  # the skipped ones count as final for _finish_if_done below
        if not targets:
            _finish_if_done(session, campaign, now)
            continue
        attempts: list[dict[str, object]] = []
        for target in targets:
            attempt_id = str(uuid.uuid4())
            number = target.attempts + 1
            target.attempts = number
            target.status = CampaignTargetStatus.DIALING
            attempts.append(
                {
                    "id": attempt_id,
                    "campaign_id": campaign.id,
                    "target_id": target.id,
                    "number": number,
                    "status": AttemptStatus.CLAIMED,
                    "worker": worker[:80],
                    "lease_until": now + lease,
                    "created_at": now,
                }
            )
            orders.append(
                AttemptOrder(
                    attempt_id=attempt_id,
                    campaign_id=campaign.id,
                    kind=campaign.kind,
                    number=number,
                    phone_e164=target.phone_e164,
                    language=target.language,
                    ticket_id=target.ticket_id,
                    citizen_id=target.citizen_id,
                    callback_task_id=target.callback_task_id,
                    target_id=target.id,
                )
            )
        interval = timedelta(seconds=1.0 / max(campaign.calls_per_second, 0.001))
        campaign.next_dial_at = slots[len(targets) - 1] + interval
        session.flush()
        session.execute(insert(CallAttempt), attempts)
    return orders


def targets_due(session: Session, *, now: datetime) -> bool:
    """Whether any running campaign has a pending target due at ``now`` (window and pacing
    not considered): a worker connects to the PBX only then. Reads only."""
    return (
        session.scalar(
            select(CampaignTarget.id)
            .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
            .where(
                Campaign.status == CampaignStatus.RUNNING,
                CampaignTarget.status == CampaignTargetStatus.PENDING,
                CampaignTarget.next_attempt_at <= _utc(now),
            )
            .limit(1)
        )
        is not None
    )


def next_claim_at(session: Session, *, now: datetime) -> datetime | None:
    """A hint for workers: the earliest pacing slot of any running campaign (``now`` if one is
    free now), or None when nothing is running. Window and due times are not considered."""
    now = _utc(now)
    rows = session.execute(
        select(Campaign.next_dial_at).where(Campaign.status == CampaignStatus.RUNNING)
    ).all()
    if not rows:
        return None
    return max(now, min((_utc(r[0]) if r[0] is not None else now) for r in rows))


def mark_originated(
    session: Session, *, now: datetime, attempt_id: str, lease: timedelta = ORIGINATE_LEASE
) -> bool:
    """CLAIMED → ORIGINATED (Asterisk accepted the Originate / the channel appeared).

    The lease becomes ``now + lease`` (the long lease of step 5). True when the attempt is
    in flight afterwards (repeating the call is harmless), False when it is already
    terminal or unknown.
    """
    now = _utc(now)
    connection = session.connection()
    params = {"attempt_id": attempt_id, "now": now, "until": now + lease}
    if connection.execute(_MARK_ORIGINATED, params).rowcount == 1:
        _expire_attempt(session, attempt_id)
        return True
    status = connection.execute(_ATTEMPT_STATUS, params).scalar()
    return status == AttemptStatus.ORIGINATED


def attempt_answered(
    session: Session, *, now: datetime, attempt_id: str, lease: timedelta = ORIGINATE_LEASE
) -> bool:
    """Note that the citizen answered (``answered_at``); the outcome comes at hangup.

    An attempt still CLAIMED becomes ORIGINATED (it obviously reached Asterisk) and its lease
    is extended to ``now + lease``. True the first time, False when already noted, terminal
    or unknown.
    """
    now = _utc(now)
    params = {"attempt_id": attempt_id, "now": now, "until": now + lease}
    changed = session.connection().execute(_ANSWERED, params).rowcount
    _expire_attempt(session, attempt_id)
    return changed == 1


def _expire_attempt(session: Session, attempt_id: str) -> None:
    loaded = session.identity_map.get(session.identity_key(CallAttempt, attempt_id))
    if loaded is not None:
        session.expire(loaded)


def release_claim(session: Session, *, now: datetime, attempt_id: str) -> bool:
    """Undo the claim of an attempt its worker is certain it never sent (decision 0021).

    Only a ``claimed`` attempt is released (an originated or finished one is left alone):
    the attempt row goes, and its target is pending again with the attempt not counted, as
    if the claim had never happened. True when released.
    """
    _utc(now)
    row = session.execute(
        delete(CallAttempt)
        .where(CallAttempt.id == attempt_id, CallAttempt.status == AttemptStatus.CLAIMED)
        .returning(CallAttempt.target_id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    _expire_attempt(session, attempt_id)
    if row is None:
        return False
    target = session.scalars(_TARGET, {"target_id": row[0]}).one()
    target.attempts = max(0, target.attempts - 1)
    target.status = CampaignTargetStatus.PENDING
    session.flush()
    return True


def record_outcome(
    session: Session,
    *,
    now: datetime,
    attempt_id: str,
    outcome: AttemptStatus,
    hangup_cause: int | None = None,
    reason: str | None = None,
    result: str | None = None,
) -> bool:
    """Record the terminal ``outcome`` of an in-flight attempt (decision 0021 steps 3–4).

    The first terminal outcome wins: a replay, a late event or an unknown id returns False
    and changes nothing. The target then moves: ANSWERED → DONE (with ``result``); any other
    outcome → PENDING again at ``now + retry_spacing`` while ``attempts < max_attempts``, else
    EXHAUSTED; on a STOPPED campaign a target that was not answered becomes CANCELLED. An
    agent-first callback whose agent leg was never answered does not count as an attempt of
    the citizen's: the target is due again after :data:`AGENT_RETRY` (at most
    :data:`AGENT_MISSES` times beyond ``max_attempts``). A RUNNING campaign with
    no pending or dialing target left becomes FINISHED.
    """
    if outcome not in TERMINAL:
        raise ValueError(f"{outcome} is not a terminal outcome")
    now = _utc(now)
    row = (
        session.connection()
        .execute(
            _OUTCOME,
            {
                "attempt_id": attempt_id,
                "outcome": outcome,
                "now": now,
                "cause": hangup_cause,
                "reason": " ".join(reason.split())[:200] if reason else None,
            },
        )
        .one_or_none()
    )
    _expire_attempt(session, attempt_id)
    if row is None:
        return False
    target_id, campaign_id, answered_at = row
    # Lock order everywhere: attempt, then campaign, then target (claims: campaign, targets).
    campaign = _lock_campaign(session, campaign_id)
    target = session.scalars(_TARGET, {"target_id": target_id}).one()
    assert campaign is not None
    target.last_outcome = outcome
    final = True
    if outcome == AttemptStatus.ANSWERED:
        target.status = CampaignTargetStatus.DONE
        target.result = result[:32] if result else None
    elif campaign.status == CampaignStatus.STOPPED:
        target.status = CampaignTargetStatus.CANCELLED
    elif campaign.kind is CampaignKind.CALLBACK and answered_at is None:
        # Agent first: the agent's phone never answered, so the citizen was not called.
        # That is not one of the citizen's attempts: try again soon (bounded by AGENT_MISSES).
        if target.attempts >= campaign.max_attempts + AGENT_MISSES:
            target.status = CampaignTargetStatus.EXHAUSTED
        else:
            target.status = CampaignTargetStatus.PENDING
            target.next_attempt_at = now + AGENT_RETRY
            final = False
    elif _citizen_attempts(session, campaign, target) >= campaign.max_attempts:
        target.status = CampaignTargetStatus.EXHAUSTED
    else:
        target.status = CampaignTargetStatus.PENDING
        target.next_attempt_at = now + timedelta(minutes=campaign.retry_spacing_minutes)
        final = False
    if final:
        target.completed_at = now
        target.next_attempt_at = None
    session.flush()
    if target.status is CampaignTargetStatus.EXHAUSTED:
        # A survey nobody answered by phone asks by SMS instead (R5.2, survey_sms).
        on_survey_target_exhausted(session, now=now, target=target)
    if target.callback_task_id is not None:
        # The callback task follows its target in the same transaction (R5.3).
        sync_callback_task(session, now=now, target=target)
    if final:
        _finish_if_done(session, campaign, now)
        session.flush()
    return True


def _citizen_attempts(session: Session, campaign: Campaign, target: CampaignTarget) -> int:
    """Attempts that reached the citizen's side: all of them, except for agent-first
    callbacks, where only those whose agent leg was answered called the citizen."""
    if campaign.kind is not CampaignKind.CALLBACK:
        return target.attempts
    return (
        session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.target_id == target.id, CallAttempt.answered_at.is_not(None))
        )
        or 0
    )


def recover_stale_attempts(session: Session, *, now: datetime) -> int:
    """Fail attempts whose lease ran out (decision 0021 step 5); return how many.

    ``claimed`` past its lease never reached Asterisk → failed ("worker lost before
    originate"); ``originated`` past its long lease → failed ("no outcome reported"). Each
    goes through :func:`record_outcome`, so the target is retried with a new attempt number
    (or exhausted) and an outcome arriving meanwhile wins instead.
    """
    now = _utc(now)
    stale = session.execute(
        select(CallAttempt.id, CallAttempt.status)
        .where(CallAttempt.status.in_(IN_FLIGHT), CallAttempt.lease_until < now)
        .order_by(CallAttempt.lease_until)
    ).all()
    reasons: Mapping[AttemptStatus, str] = {
        AttemptStatus.CLAIMED: LOST_BEFORE_ORIGINATE,
        AttemptStatus.ORIGINATED: NO_OUTCOME,
    }
    recovered = 0
    for attempt_id, status in stale:
        if record_outcome(
            session,
            now=now,
            attempt_id=attempt_id,
            outcome=AttemptStatus.FAILED,
            reason=reasons[status],
        ):
            recovered += 1
    return recovered


def campaign_for_attempt(session: Session, attempt_id: str) -> AttemptOrder | None:
    """The order behind ``attempt_id`` (for the AMI listener and the dialplan), or None."""
    row = session.execute(
        select(CallAttempt, CampaignTarget, Campaign.kind)
        .join(CampaignTarget, CampaignTarget.id == CallAttempt.target_id)
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(CallAttempt.id == attempt_id)
    ).one_or_none()
    if row is None:
        return None
    attempt, target, kind = row
    return AttemptOrder(
        attempt_id=attempt.id,
        campaign_id=attempt.campaign_id,
        kind=kind,
        number=attempt.number,
        phone_e164=target.phone_e164,
        language=target.language,
        ticket_id=target.ticket_id,
        citizen_id=target.citizen_id,
        callback_task_id=target.callback_task_id,
        target_id=target.id,
    )
