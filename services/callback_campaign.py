"""Callbacks through the dialer: the standing "Geri aramalar" campaign (R5.3, R5.6).

Every pending, due :class:`~models.CallbackTask` becomes one target of a standing campaign of
kind ``CALLBACK`` (source ``callback_tasks``). The dialer (:mod:`services.dialer`) then claims,
dials and retries it like any campaign target, agent first (:mod:`outbound.callback_dial`),
and this module keeps the task in step with its target:

===================================  ======================================================
target                               task
===================================  ======================================================
pending / dialing                    ``IN_PROGRESS``, ``attempts`` = attempts of all its targets
done (answered)                      ``DONE``, ``completed_at``
exhausted / skipped                  ``FAILED``, ``completed_at``, note says why
cancelled (campaign stopped)         back to ``PENDING`` (enqueued again later)
===================================  ======================================================

A task may get a second target later ("Şimdi ara" on a failed task): targets of a task are
keyed ``"<e164>:cb<task id>-<n>"`` so the campaign's dedupe (one per phone and ticket) never
hides a second request of the same citizen, and an attempt number is never reused.

The staffed hours decide the campaign's calling window: callbacks are made only when agents
are there to make them. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    CallAttempt,
    CallbackReason,
    CallbackStatus,
    CallbackTask,
    CallRecord,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    Citizen,
    StaffUser,
)
from services.campaigns import IN_FLIGHT, CampaignSettings, create_campaign
from services.do_not_call import blocked_numbers
from services.errors import InvalidField, InvalidTransition, UnknownEntity
from services.locks import lock_keys
from services.service_hours import StaffedHours

__all__ = [
    "CALLBACK_CAMPAIGN_NAME",
    "OPEN_TASK_STATUSES",
    "CallbackRow",
    "call_now",
    "callback_list",
    "callback_window",
    "close_callback",
    "complete_callback",
    "current_callback_campaign",
    "enqueue_due_callbacks",
    "ensure_callback_campaign",
    "limit_callbacks_to_free_agents",
    "sync_callback_task",
    "sync_callback_tasks",
]

CALLBACK_CAMPAIGN_NAME = "Geri aramalar"
OPEN_TASK_STATUSES = (CallbackStatus.PENDING, CallbackStatus.IN_PROGRESS)
_OPEN_TARGET = (CampaignTargetStatus.PENDING, CampaignTargetStatus.DIALING)
_LOCK_KEY = "callback-campaign"
END_OF_DAY = time(23, 59, 59)
# Requests the citizen made explicitly (IVR key, out of hours, an agent's promise) are
# answered even for a number on the do-not-call list; an abandoned call is not a request.
_ASKED = frozenset(
    {CallbackReason.IVR_REQUEST, CallbackReason.OUT_OF_HOURS, CallbackReason.PROMISED}
)
DEFAULTS = CampaignSettings(
    name=CALLBACK_CAMPAIGN_NAME,
    kind=CampaignKind.CALLBACK,
    window_days="1234567",
    skip_holidays=False,  # the line is staffed every day of the year
    max_attempts=3,
    retry_spacing_minutes=30,
    max_concurrent=2,
    calls_per_second=1.0,
)


def callback_window(hours: StaffedHours | None) -> tuple[time, time]:
    """The daily calling window of the callback campaign for the staffed ``hours``.

    24/7 (``None``) → 00:00–23:59:59; a window ending at midnight ends at 23:59:59. A window
    over midnight (22:00–06:00) cannot be stored as one ``[start, end)`` pair: its evening
    part (start–23:59:59) is used, so nobody is called back in the small hours.
    """
    if hours is None:
        return time(0), END_OF_DAY
    if hours.end == time(0) or hours.end <= hours.start:
        return hours.start, END_OF_DAY
    return hours.start, hours.end


def current_callback_campaign(session: Session) -> Campaign | None:
    """The standing callback campaign: the newest CALLBACK campaign fed by callback tasks
    that was not stopped by a supervisor (a stopped one is replaced on the next enqueue)."""
    return session.scalar(
        select(Campaign)
        .where(
            Campaign.kind == CampaignKind.CALLBACK,
            Campaign.target_source == CampaignTargetSource.CALLBACK_TASKS,
            Campaign.status != CampaignStatus.STOPPED,
        )
        .order_by(Campaign.id.desc())
        .limit(1)
    )


def ensure_callback_campaign(
    session: Session, *, now: datetime, actor: StaffUser | None, hours: StaffedHours | None
) -> Campaign:
    """The standing "Geri aramalar" campaign, created RUNNING when there is none (R5.3).

    Guarantees: at most one open standing campaign (PostgreSQL: an advisory lock serialises
    concurrent callers; SQLite serialises writers already); its calling window follows the
    staffed ``hours`` (every day, holidays included, see :func:`callback_window`); a campaign
    the dialer marked FINISHED (nothing left to dial) is reopened RUNNING; a PAUSED one stays
    paused (the supervisor's choice); a STOPPED one is left alone and a new one is created.
    Flushed, not committed.
    """
    lock_keys(session, [_LOCK_KEY])
    start, end = callback_window(hours)
    campaign = current_callback_campaign(session)
    if campaign is None:
        settings = CampaignSettings(
            name=DEFAULTS.name,
            kind=DEFAULTS.kind,
            window_days=DEFAULTS.window_days,
            window_start=start,
            window_end=end,
            skip_holidays=DEFAULTS.skip_holidays,
            max_attempts=DEFAULTS.max_attempts,
            retry_spacing_minutes=DEFAULTS.retry_spacing_minutes,
            max_concurrent=DEFAULTS.max_concurrent,
            calls_per_second=DEFAULTS.calls_per_second,
        )
        campaign = create_campaign(
            session,
            actor=actor,
            now=now,
            settings=settings,
            target_source=CampaignTargetSource.CALLBACK_TASKS,
            target_criteria={"standing": True, "reasons": [r.value for r in CallbackReason]},
        )
        campaign.status = CampaignStatus.RUNNING
        campaign.started_at = now
    else:
        if (campaign.window_start, campaign.window_end) != (start, end):
            campaign.window_start, campaign.window_end = start, end
            campaign.updated_at = now
        if campaign.status in (CampaignStatus.FINISHED, CampaignStatus.DRAFT):
            _reopen(campaign, now)
    session.flush()
    return campaign


def _reopen(campaign: Campaign, now: datetime) -> None:
    campaign.status = CampaignStatus.RUNNING
    campaign.started_at = campaign.started_at or now
    campaign.finished_at = None
    campaign.updated_at = now


def _targets_of(session: Session, task_ids: Collection[int]) -> dict[int, list[CampaignTarget]]:
    found: dict[int, list[CampaignTarget]] = {tid: [] for tid in task_ids}
    if not task_ids:
        return found
    rows = session.scalars(
        select(CampaignTarget)
        .where(CampaignTarget.callback_task_id.in_(list(task_ids)))
        .order_by(CampaignTarget.id)
    )
    for target in rows:
        if target.callback_task_id is not None:
            found[target.callback_task_id].append(target)
    return found


def enqueue_due_callbacks(
    session: Session,
    *,
    now: datetime,
    hours: StaffedHours | None = None,
    actor: StaffUser | None = None,
    limit: int = 500,
) -> int:
    """Turn every PENDING task due at ``now`` into a target of the standing campaign.

    Guarantees: idempotent — a task that already has a pending or dialing target gets no
    second one, and an enqueued task is ``IN_PROGRESS``, so running this twice (or from two
    workers) adds nothing; the target is due at once (``next_attempt_at = now``) with the
    task's phone, language, citizen and ticket; an abandoned call whose number is on the
    do-not-call list, or whose citizen asked not to be called, is ``FAILED`` with a note
    instead (a citizen's explicit request is honoured regardless); a FINISHED campaign is
    reopened when targets are added. Returns the number of targets added. Not committed.
    """
    tasks = list(
        session.scalars(
            select(CallbackTask)
            .where(CallbackTask.status == CallbackStatus.PENDING, CallbackTask.due_at <= now)
            .order_by(CallbackTask.due_at, CallbackTask.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not tasks:
        return 0
    campaign = ensure_callback_campaign(session, now=now, actor=actor, hours=hours)
    targets = _targets_of(session, [t.id for t in tasks])
    blocked = blocked_numbers(session, [t.phone_e164 for t in tasks if t.reason not in _ASKED])
    refusing = _refusing_citizens(session, tasks)
    added = 0
    for task in tasks:
        existing = targets[task.id]
        if any(t.status in _OPEN_TARGET for t in existing):
            task.status = CallbackStatus.IN_PROGRESS
            continue
        if task.reason not in _ASKED and (
            task.phone_e164 in blocked or task.citizen_id in refusing
        ):
            task.status = CallbackStatus.FAILED
            task.completed_at = now
            task.note = _note(task.note, "Aranmayacak numara: geri aranmadı.")
            continue
        target = CampaignTarget(
            campaign_id=campaign.id,
            dedupe_key=f"{task.phone_e164}:cb{task.id}-{len(existing) + 1}",
            phone_e164=task.phone_e164,
            citizen_id=task.citizen_id,
            ticket_id=task.ticket_id,
            callback_task_id=task.id,
            display_name=None,
            language=task.language,
            status=CampaignTargetStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(target)
        task.status = CallbackStatus.IN_PROGRESS
        added += 1
    if added and campaign.status == CampaignStatus.FINISHED:
        _reopen(campaign, now)
    session.flush()
    return added


def _refusing_citizens(session: Session, tasks: Sequence[CallbackTask]) -> set[int]:
    ids = {t.citizen_id for t in tasks if t.citizen_id is not None and t.reason not in _ASKED}
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Citizen.id).where(
                Citizen.id.in_(ids),
                (Citizen.do_not_call.is_(True)) | (Citizen.consent_calls.is_(False)),
            )
        )
    )


def _note(old: str | None, text: str) -> str:
    return (f"{old} | {text}" if old else text)[-500:]


def sync_callback_task(
    session: Session, *, now: datetime, target: CampaignTarget
) -> CallbackTask | None:
    """Bring the callback task of ``target`` in step with it (see the module table).

    Call it after :func:`services.dialer.record_outcome` (or any change of a callback
    target) in the same transaction. Guarantees: idempotent (a second call changes nothing);
    a task closed by hand (``CANCELLED``) or already ``DONE`` is never reopened by a target;
    ``attempts`` counts the attempts of all the task's targets; when the target's attempt
    ended, the callback's call record (if the agent leg was answered) is closed too.
    Returns the task, or ``None`` for a target that is not a callback.
    """
    if target.callback_task_id is None:
        return None
    task = session.get(CallbackTask, target.callback_task_id)
    if task is None:
        return None
    total = session.scalar(
        select(func.coalesce(func.sum(CampaignTarget.attempts), 0)).where(
            CampaignTarget.callback_task_id == task.id
        )
    )
    task.attempts = max(task.attempts, int(total or 0))
    if task.status in (CallbackStatus.CANCELLED, CallbackStatus.DONE):
        if target.status in _OPEN_TARGET:
            # Closed by hand while a call was in flight, which then ended unanswered and
            # put the target back in line: the citizen must not be called again.
            target.status = CampaignTargetStatus.CANCELLED
            target.next_attempt_at = None
            target.completed_at = target.completed_at or now
        _end_call_records(session, now=now, target=target)
        session.flush()
        return task
    status = target.status
    if status in _OPEN_TARGET:
        task.status = CallbackStatus.IN_PROGRESS
    elif status == CampaignTargetStatus.DONE:
        task.status = CallbackStatus.DONE
        task.completed_at = target.completed_at or now
    elif status in (CampaignTargetStatus.EXHAUSTED, CampaignTargetStatus.SKIPPED):
        # Only a task still being worked on fails: one set pending again by hand ("Şimdi
        # ara") waits for its new target instead of failing again from the old one.
        if task.status == CallbackStatus.IN_PROGRESS:
            task.status = CallbackStatus.FAILED
            task.completed_at = target.completed_at or now
            outcome = target.last_outcome.value if target.last_outcome else "-"
            why = target.note or f"son sonuç: {outcome}"
            task.note = _note(task.note, f"Ulaşılamadı ({task.attempts} deneme; {why}).")
    elif status == CampaignTargetStatus.CANCELLED and task.status == CallbackStatus.IN_PROGRESS:
        task.status = CallbackStatus.PENDING  # the campaign was stopped: enqueue again later
    if status not in _OPEN_TARGET:
        _end_call_records(session, now=now, target=target)
    session.flush()
    return task


def _end_call_records(session: Session, *, now: datetime, target: CampaignTarget) -> None:
    """Close the call records of the target's ended attempts (:mod:`services.callback_pop`)."""
    attempt_ids = select(CallAttempt.id).where(
        CallAttempt.target_id == target.id, CallAttempt.ended_at.is_not(None)
    )
    for record in session.scalars(
        select(CallRecord).where(CallRecord.call_id.in_(attempt_ids), CallRecord.ended_at.is_(None))
    ):
        record.ended_at = now
        record.updated_at = now


def complete_callback(session: Session, *, now: datetime, attempt_id: str) -> CallbackTask | None:
    """Sync the callback task of the attempt ``attempt_id`` after its outcome was recorded.

    For listeners that know only the attempt (the AMI ``AkAttemptResult`` event): looks up the
    attempt's target and calls :func:`sync_callback_task`. ``None`` when the attempt is
    unknown or not a callback. Idempotent.
    """
    target = session.scalar(
        select(CampaignTarget)
        .join(CallAttempt, CallAttempt.target_id == CampaignTarget.id)
        .where(CallAttempt.id == attempt_id)
    )
    if target is None:
        return None
    return sync_callback_task(session, now=now, target=target)


def sync_callback_tasks(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Periodic safety net: sync every task that is ``IN_PROGRESS`` (or ``PENDING`` with a
    target) with its newest target; returns how many tasks changed status. Idempotent."""
    tasks = list(
        session.scalars(
            select(CallbackTask)
            .where(CallbackTask.status.in_(OPEN_TASK_STATUSES))
            .order_by(CallbackTask.id)
            .limit(limit)
        )
    )
    targets = _targets_of(session, [t.id for t in tasks])
    changed = 0
    for task in tasks:
        if not targets[task.id]:
            continue
        before = task.status
        sync_callback_task(session, now=now, target=targets[task.id][-1])
        changed += task.status != before
    return changed


def limit_callbacks_to_free_agents(
    session: Session, *, now: datetime, free_agents: int, hold_seconds: int = 15
) -> Campaign | None:
    """Let the dialer claim at most as many callbacks as there are free agents (agent first).

    With ``free_agents == 0`` the campaign's pacing moment (``next_dial_at``) is pushed
    ``hold_seconds`` ahead, so :func:`services.dialer.claim_due_attempts` claims no callback
    and burns no attempt; otherwise ``max_concurrent`` becomes calls in flight + free
    agents (1..50). Call it before claiming, in the same transaction. ``None`` when there is
    no standing campaign.
    """
    campaign = current_callback_campaign(session)
    if campaign is None:
        return None
    if free_agents <= 0:
        hold = now + timedelta(seconds=hold_seconds)
        if campaign.next_dial_at is None or campaign.next_dial_at < hold:
            campaign.next_dial_at = hold
    else:
        in_flight = session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(
                CallAttempt.campaign_id == campaign.id,
                CallAttempt.status.in_(IN_FLIGHT),
            )
        )
        campaign.max_concurrent = max(1, min(50, int(in_flight or 0) + free_agents))
        if campaign.next_dial_at is not None and campaign.next_dial_at > now:
            campaign.next_dial_at = now
    session.flush()
    return campaign


# --- console --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackRow:
    """One line of the console's callback list."""

    task: CallbackTask
    citizen_name: str | None
    last_outcome: str | None  # AttemptStatus value of the newest target, if any
    next_attempt_at: datetime | None


def callback_list(
    session: Session,
    *,
    statuses: Collection[CallbackStatus] | None = None,
    limit: int = 200,
) -> list[CallbackRow]:
    """Callback tasks for the console (R5.3): open ones first by due time, then the most
    recently requested; with the citizen's name and the newest target's last outcome and
    next attempt. Three queries whatever the number of rows. Reads only."""
    query = select(CallbackTask)
    if statuses is not None:
        query = query.where(CallbackTask.status.in_(list(statuses)))
    query = query.order_by(CallbackTask.due_at.desc(), CallbackTask.id.desc()).limit(limit)
    tasks = list(session.scalars(query))
    targets = _targets_of(session, [t.id for t in tasks])
    citizen_ids = {t.citizen_id for t in tasks if t.citizen_id is not None}
    names: dict[int, str | None] = {}
    if citizen_ids:
        for cid, first, last in session.execute(
            select(Citizen.id, Citizen.first_name, Citizen.last_name).where(
                Citizen.id.in_(citizen_ids)
            )
        ):
            names[cid] = " ".join(p for p in (first, last) if p) or None
    rows: list[CallbackRow] = []
    for task in tasks:
        newest = targets[task.id][-1] if targets[task.id] else None
        rows.append(
            CallbackRow(
                task=task,
                citizen_name=names.get(task.citizen_id) if task.citizen_id else None,
                last_outcome=newest.last_outcome.value if newest and newest.last_outcome else None,
                next_attempt_at=newest.next_attempt_at
                if newest and newest.status == CampaignTargetStatus.PENDING
                else None,
            )
        )
    open_first = [r for r in rows if r.task.status in OPEN_TASK_STATUSES]
    open_first.sort(key=lambda r: (r.task.due_at, r.task.id))
    return open_first + [r for r in rows if r.task.status not in OPEN_TASK_STATUSES]


def _task(session: Session, task_id: int) -> CallbackTask:
    task = session.scalar(select(CallbackTask).where(CallbackTask.id == task_id).with_for_update())
    if task is None:
        raise UnknownEntity(
            f"Geri arama bulunamadı (#{task_id}).", f"No callback #{task_id}.", task_id=task_id
        )
    return task


def call_now(session: Session, *, now: datetime, actor: StaffUser, task_id: int) -> CallbackTask:
    """ "Şimdi ara": make the callback due at once (R5.3).

    A pending task becomes due ``now``; one already in the campaign has its pending target
    moved to ``now`` (a target being dialled is left alone); a ``FAILED`` task is reopened
    (``PENDING``, due now; the next :func:`enqueue_due_callbacks` gives it a new target).
    ``DONE`` and ``CANCELLED`` tasks raise :class:`InvalidTransition`. Not committed.
    """
    task = _task(session, task_id)
    if task.status in (CallbackStatus.DONE, CallbackStatus.CANCELLED):
        raise InvalidTransition(
            "Bu geri arama kapanmış; yeniden aranamaz.",
            "This callback is closed and cannot be called again.",
            task_id=task_id,
            status=task.status.value,
        )
    task.due_at = now
    if task.status == CallbackStatus.FAILED:
        task.status = CallbackStatus.PENDING
        task.completed_at = None
    for target in _targets_of(session, [task.id])[task.id]:
        if target.status == CampaignTargetStatus.PENDING:
            target.next_attempt_at = now
    task.note = _note(task.note, f"Şimdi ara: {actor.username}")
    session.flush()
    return task


def close_callback(
    session: Session, *, now: datetime, actor: StaffUser, task_id: int, note: str
) -> CallbackTask:
    """ "Kapat/İptal": close an open or failed callback by hand, with a note (required).

    The task becomes ``CANCELLED`` with ``completed_at``; its pending target is cancelled so
    the dialer does not call (a call already being dialled ends normally but does not reopen
    the task). ``DONE``/``CANCELLED`` raise :class:`InvalidTransition`; an empty note raises
    :class:`InvalidField`. Not committed.
    """
    text = (note or "").strip()
    if not text:
        raise InvalidField(
            "Kapatma nedeni yazılmalı.", "A reason for closing is required.", field="note"
        )
    task = _task(session, task_id)
    if task.status in (CallbackStatus.DONE, CallbackStatus.CANCELLED):
        raise InvalidTransition(
            "Bu geri arama zaten kapalı.",
            "This callback is already closed.",
            task_id=task_id,
            status=task.status.value,
        )
    task.status = CallbackStatus.CANCELLED
    task.completed_at = now
    task.note = _note(task.note, f"Kapatıldı ({actor.username}): {text[:300]}")
    for target in _targets_of(session, [task.id])[task.id]:
        if target.status == CampaignTargetStatus.PENDING:
            target.status = CampaignTargetStatus.CANCELLED
            target.completed_at = now
            target.next_attempt_at = None
            target.note = "Geri arama elle kapatıldı."
    session.flush()
    return task


def callbacks_due(session: Session, *, now: datetime) -> bool:
    """Whether a running callback campaign has a target due at ``now`` (only then does the
    dialer need to know which agents are free). Reads only."""
    return bool(
        session.scalar(
            select(CampaignTarget.id)
            .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
            .where(
                Campaign.kind == CampaignKind.CALLBACK,
                Campaign.status == CampaignStatus.RUNNING,
                CampaignTarget.status == CampaignTargetStatus.PENDING,
                CampaignTarget.next_attempt_at <= now,
            )
            .limit(1)
        )
    )
