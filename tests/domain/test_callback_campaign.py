"""Callbacks through the standing "Geri aramalar" campaign (R5.3, R5.6) on SQLite and PostgreSQL.

The task ↔ target sync is exercised with the targets as the dialer leaves them
(services/dialer.py) and, end to end, through the dialer's own claim and outcome.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    CallAttempt,
    CallbackReason,
    CallbackStatus,
    CallbackTask,
    CallRecord,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetStatus,
    StaffUser,
)
from services.callback_campaign import (
    CALLBACK_CAMPAIGN_NAME,
    call_now,
    callback_list,
    callback_window,
    close_callback,
    complete_callback,
    current_callback_campaign,
    enqueue_due_callbacks,
    ensure_callback_campaign,
    limit_callbacks_to_free_agents,
    sync_callback_task,
    sync_callback_tasks,
)
from services.callback_pop import callback_agent_answered
from services.callbacks import request_callback
from services.dialer import attempt_answered, record_outcome
from services.do_not_call import add_do_not_call
from services.errors import InvalidField, InvalidTransition
from services.service_hours import StaffedHours
from tests.factories import add_citizen, mobile, mobile_e164
from tests.outbound_factories import dial

HOURS = StaffedHours(time(9), time(0))  # 09:00-24:00


def _task(
    session: Session, now: datetime, seed: int, reason: str = "ivr_request", **kw: object
) -> CallbackTask:
    return request_callback(
        session,
        now,
        call_id=f"cb-{seed}",
        raw_phone=mobile(seed),
        reason=reason,
        language="tr",
        **kw,  # type: ignore[arg-type]
    )


def _targets(session: Session, task: CallbackTask) -> list[CampaignTarget]:
    return list(
        session.scalars(
            select(CampaignTarget)
            .where(CampaignTarget.callback_task_id == task.id)
            .order_by(CampaignTarget.id)
        )
    )


def _end(
    target: CampaignTarget,
    attempt: CallAttempt,
    now: datetime,
    outcome: AttemptStatus,
    target_status: CampaignTargetStatus,
) -> None:
    attempt.status = outcome
    attempt.ended_at = now
    target.last_outcome = outcome
    target.status = target_status
    if target_status == CampaignTargetStatus.PENDING:
        target.next_attempt_at = now + timedelta(minutes=30)
    else:
        target.completed_at = now
        target.next_attempt_at = None


def test_window_follows_staffed_hours() -> None:
    assert callback_window(None) == (time(0), time(23, 59, 59))
    assert callback_window(HOURS) == (time(9), time(23, 59, 59))
    assert callback_window(StaffedHours(time(8, 30), time(17, 30))) == (time(8, 30), time(17, 30))
    # over midnight: the evening part only, nobody is called in the small hours
    assert callback_window(StaffedHours(time(22), time(6))) == (time(22), time(23, 59, 59))


def test_one_standing_campaign_running_every_day(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    first = ensure_callback_campaign(session, now=now, actor=supervisor, hours=HOURS)
    assert first.kind is CampaignKind.CALLBACK and first.name == CALLBACK_CAMPAIGN_NAME
    assert first.status is CampaignStatus.RUNNING and first.started_at == now
    assert (first.window_days, first.window_start, first.window_end) == (
        "1234567",
        time(9),
        time(23, 59, 59),
    )
    assert first.skip_holidays is False
    again = ensure_callback_campaign(
        session, now=now, actor=None, hours=StaffedHours(time(10), time(18))
    )
    assert again.id == first.id and (again.window_start, again.window_end) == (time(10), time(18))
    # the dialer finishes a campaign with nothing left: the standing one is reopened
    first.status, first.finished_at = CampaignStatus.FINISHED, now
    assert (
        ensure_callback_campaign(session, now=now, actor=None, hours=HOURS).status
        is CampaignStatus.RUNNING
    )
    assert first.finished_at is None
    # a pause is the supervisor's choice and is kept
    first.status = CampaignStatus.PAUSED
    assert (
        ensure_callback_campaign(session, now=now, actor=None, hours=HOURS).status
        is CampaignStatus.PAUSED
    )
    # a stopped campaign is replaced by a new one
    first.status = CampaignStatus.STOPPED
    replacement = ensure_callback_campaign(session, now=now, actor=None, hours=HOURS)
    assert replacement.id != first.id and replacement.status is CampaignStatus.RUNNING
    assert current_callback_campaign(session) is replacement


def test_due_tasks_become_targets_once(session: Session, now: datetime) -> None:
    due = _task(session, now, 1)
    later = _task(session, now, 2)
    later.due_at = now + timedelta(hours=2)
    assert enqueue_due_callbacks(session, now=now, hours=HOURS) == 1
    [target] = _targets(session, due)
    campaign = session.get(Campaign, target.campaign_id)
    assert campaign is not None and campaign.kind is CampaignKind.CALLBACK
    assert target.status is CampaignTargetStatus.PENDING and target.next_attempt_at == now
    assert target.phone_e164 == mobile_e164(1) and target.language.value == "tr"
    assert target.dedupe_key == f"{mobile_e164(1)}:cb{due.id}-1"
    assert due.status is CallbackStatus.IN_PROGRESS
    assert later.status is CallbackStatus.PENDING and _targets(session, later) == []
    # idempotent: nothing new now, the later task once it is due
    assert enqueue_due_callbacks(session, now=now, hours=HOURS) == 0
    assert enqueue_due_callbacks(session, now=now + timedelta(hours=2), hours=HOURS) == 1
    assert len(_targets(session, due)) == 1 and len(_targets(session, later)) == 1
    count = session.scalar(
        select(func.count()).select_from(Campaign).where(Campaign.kind == CampaignKind.CALLBACK)
    )
    assert count == 1


def test_same_citizen_twice_gets_two_targets(session: Session, now: datetime) -> None:
    """The campaign's dedupe (phone + ticket) must not hide a second callback request."""
    one = _task(session, now, 3, reason="abandoned")
    two = _task(session, now, 3, reason="ivr_request")
    assert one.id != two.id and one.phone_e164 == two.phone_e164
    assert enqueue_due_callbacks(session, now=now) == 2


def test_do_not_call_blocks_abandoned_but_not_requested(session: Session, now: datetime) -> None:
    """R5.6: an abandoned call is not a request; pressing the callback key is."""
    add_do_not_call(session, actor=None, now=now, phone=mobile(4), reason="istemiyor")
    abandoned = _task(session, now, 4, reason="abandoned")
    asked = request_callback(
        session, now, call_id="cb-4b", raw_phone=mobile(4), reason="ivr_request", language="tr"
    )
    refusing = add_citizen(session, now, mobile_e164(5), first_name="Kemal", do_not_call=True)
    abandoned_refusing = _task(session, now, 5, reason="abandoned", citizen_id=refusing.id)
    assert enqueue_due_callbacks(session, now=now) == 1
    assert abandoned.status is CallbackStatus.FAILED and abandoned.completed_at == now
    assert abandoned.note is not None and "Aranmayacak" in abandoned.note
    assert abandoned_refusing.status is CallbackStatus.FAILED
    assert asked.status is CallbackStatus.IN_PROGRESS and len(_targets(session, asked)) == 1


def test_task_follows_attempt_outcomes(session: Session, now: datetime) -> None:
    task = _task(session, now, 6)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    first = dial(session, now, target)
    assert sync_callback_task(session, now=now, target=target) is task
    assert task.status is CallbackStatus.IN_PROGRESS and task.attempts == 1
    _end(target, first, now, AttemptStatus.BUSY, CampaignTargetStatus.PENDING)
    complete_callback(session, now=now, attempt_id=first.id)
    assert task.status is CallbackStatus.IN_PROGRESS and task.completed_at is None
    second = dial(session, now, target)
    later = now + timedelta(minutes=31)
    _end(target, second, later, AttemptStatus.ANSWERED, CampaignTargetStatus.DONE)
    assert complete_callback(session, now=later, attempt_id=second.id) is task
    assert CallbackStatus(task.status) is CallbackStatus.DONE and task.completed_at == later
    assert task.attempts == 2
    # replay: nothing changes
    complete_callback(session, now=later + timedelta(minutes=5), attempt_id=second.id)
    assert task.completed_at == later and task.attempts == 2
    assert complete_callback(session, now=later, attempt_id="no-such-attempt") is None


def test_exhausted_target_fails_the_task_and_call_now_reopens_it(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    task = _task(session, now, 7)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    attempt = dial(session, now, target)
    _end(target, attempt, now, AttemptStatus.NO_ANSWER, CampaignTargetStatus.EXHAUSTED)
    sync_callback_task(session, now=now, target=target)
    assert task.status is CallbackStatus.FAILED and task.completed_at == now
    assert task.note is not None and "no_answer" in task.note
    # "Şimdi ara" on a failed task: pending again, due now, a new target (new dedupe key)
    later = now + timedelta(hours=1)
    call_now(session, now=later, actor=agent, task_id=task.id)
    assert CallbackStatus(task.status) is CallbackStatus.PENDING and task.due_at == later
    assert enqueue_due_callbacks(session, now=later) == 1
    old, new = _targets(session, task)
    assert old.id == target.id and new.dedupe_key.endswith(f"cb{task.id}-2")
    assert (
        new.next_attempt_at == later and CallbackStatus(task.status) is CallbackStatus.IN_PROGRESS
    )
    # a failed old target does not drag the reopened task back
    assert sync_callback_tasks(session, now=later) == 0
    assert CallbackStatus(task.status) is CallbackStatus.IN_PROGRESS


def test_call_now_moves_a_waiting_target(session: Session, now: datetime, agent: StaffUser) -> None:
    task = _task(session, now, 8)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    target.next_attempt_at = now + timedelta(minutes=30)  # waiting for its retry
    later = now + timedelta(minutes=5)
    call_now(session, now=later, actor=agent, task_id=task.id)
    assert target.next_attempt_at == later and task.status is CallbackStatus.IN_PROGRESS


def test_close_by_hand_cancels_the_target(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    task = _task(session, now, 9)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    with pytest.raises(InvalidField):
        close_callback(session, now=now, actor=agent, task_id=task.id, note="  ")
    close_callback(
        session, now=now, actor=agent, task_id=task.id, note="Vatandaş ulaştı, gerek kalmadı"
    )
    assert task.status is CallbackStatus.CANCELLED and task.completed_at == now
    assert task.note is not None and "gerek kalmadı" in task.note
    assert target.status is CampaignTargetStatus.CANCELLED
    with pytest.raises(InvalidTransition):
        close_callback(session, now=now, actor=agent, task_id=task.id, note="yine")
    with pytest.raises(InvalidTransition):
        call_now(session, now=now, actor=agent, task_id=task.id)
    # a cancelled task is never reopened by its target
    sync_callback_task(session, now=now, target=target)
    assert task.status is CallbackStatus.CANCELLED


def test_stopped_campaign_puts_tasks_back(session: Session, now: datetime) -> None:
    task = _task(session, now, 10)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    target.status = CampaignTargetStatus.CANCELLED  # what stop_campaign does
    sync_callback_task(session, now=now, target=target)
    assert task.status is CallbackStatus.PENDING


def test_no_free_agent_holds_the_callbacks(session: Session, now: datetime) -> None:
    """Agent first: no claim (no attempt burnt) while no agent is free."""
    assert limit_callbacks_to_free_agents(session, now=now, free_agents=0) is None
    campaign = ensure_callback_campaign(session, now=now, actor=None, hours=None)
    limit_callbacks_to_free_agents(session, now=now, free_agents=0, hold_seconds=20)
    assert campaign.next_dial_at == now + timedelta(seconds=20)
    limit_callbacks_to_free_agents(session, now=now + timedelta(seconds=5), free_agents=3)
    assert campaign.max_concurrent == 3 and campaign.next_dial_at == now + timedelta(seconds=5)


def test_callback_list_for_the_console(session: Session, now: datetime, agent: StaffUser) -> None:
    citizen = add_citizen(session, now, mobile_e164(11), first_name="Ayten", last_name="Kaya")
    named = _task(session, now, 11, citizen_id=citizen.id)
    later = _task(session, now, 12)
    later.due_at = now + timedelta(hours=1)
    closed = _task(session, now, 13)
    close_callback(session, now=now, actor=agent, task_id=closed.id, note="yanlış numara")
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, named)
    attempt = dial(session, now, target)
    _end(target, attempt, now, AttemptStatus.BUSY, CampaignTargetStatus.PENDING)
    rows = callback_list(session)
    assert [r.task.id for r in rows] == [named.id, later.id, closed.id]  # open first, by due
    assert rows[0].citizen_name == "Ayten Kaya" and rows[0].last_outcome == "busy"
    assert rows[0].next_attempt_at == now + timedelta(minutes=30)
    assert rows[1].last_outcome is None and rows[1].citizen_name is None
    only_closed = callback_list(session, statuses=[CallbackStatus.CANCELLED])
    assert [r.task.id for r in only_closed] == [closed.id]


def test_agent_answer_pops_the_citizen_card(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    """R4.3 for callbacks: the agent who answers sees the citizen before the citizen rings."""
    assert agent.sip_extension
    citizen = add_citizen(session, now, mobile_e164(14), first_name="Hatice", last_name="Demir")
    task = _task(session, now, 14, citizen_id=citizen.id)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    attempt = dial(session, now, target)
    interface = f"PJSIP/{agent.sip_extension}"
    pop = callback_agent_answered(
        session, now=now, attempt_id=attempt.id, agent_interface=interface
    )
    assert pop is not None and pop.call_id == attempt.id and pop.agent_id == agent.id
    assert pop.caller_e164 == mobile_e164(14) and pop.citizen_id == citizen.id
    assert pop.citizen is not None and pop.citizen.name == "Hatice Demir"
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == attempt.id))
    assert record is not None and record.agent_id == agent.id and record.ended_at is None
    assert record.ticket_id is not None  # every answered call is tracked (placeholder ticket)
    # a replayed answer pops nothing more
    assert (
        callback_agent_answered(session, now=now, attempt_id=attempt.id, agent_interface=interface)
        is None
    )
    # the outcome closes the call record
    _end(
        target,
        attempt,
        now + timedelta(minutes=3),
        AttemptStatus.ANSWERED,
        CampaignTargetStatus.DONE,
    )
    complete_callback(session, now=now + timedelta(minutes=3), attempt_id=attempt.id)
    assert record.ended_at == now + timedelta(minutes=3)
    assert task.status is CallbackStatus.DONE
    assert (
        callback_agent_answered(session, now=now, attempt_id="unknown", agent_interface=interface)
        is None
    )


def test_reason_enum_accepted(session: Session, now: datetime) -> None:
    task = _task(session, now, 15, reason=CallbackReason.PROMISED)
    assert (
        enqueue_due_callbacks(session, now=now) == 1 and task.status is CallbackStatus.IN_PROGRESS
    )


def test_call_now_survives_the_sweep_whatever_runs_first(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    """ "Şimdi ara" on a failed callback sets it pending; the sweep's sync must not fail it
    again from its old, exhausted target before the new target is added."""
    task = _task(session, now, 12)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    attempt = dial(session, now, target)
    _end(target, attempt, now, AttemptStatus.NO_ANSWER, CampaignTargetStatus.EXHAUSTED)
    sync_callback_task(session, now=now, target=target)
    assert task.status is CallbackStatus.FAILED
    later = now + timedelta(hours=1)
    call_now(session, now=later, actor=agent, task_id=task.id)
    assert sync_callback_tasks(session, now=later) == 0  # sync first, as a sweep may
    assert CallbackStatus(task.status) is CallbackStatus.PENDING
    assert enqueue_due_callbacks(session, now=later) == 1
    assert CallbackStatus(task.status) is CallbackStatus.IN_PROGRESS


def test_closed_during_a_call_is_not_called_again(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    """Closed by hand while the agent is on the call, which then ends without reaching the
    citizen: the dialer would retry, but the closed task cancels its target (R5.3)."""
    task = _task(session, now, 13)
    enqueue_due_callbacks(session, now=now)
    [target] = _targets(session, task)
    attempt = dial(session, now, target)
    assert attempt_answered(session, now=now, attempt_id=attempt.id)  # the agent answered
    close_callback(session, now=now, actor=agent, task_id=task.id, note="Vatandaş geldi")
    assert task.status is CallbackStatus.CANCELLED
    assert record_outcome(session, now=now, attempt_id=attempt.id, outcome=AttemptStatus.NO_ANSWER)
    session.refresh(target)
    assert target.status is CampaignTargetStatus.CANCELLED and target.next_attempt_at is None
    assert task.status is CallbackStatus.CANCELLED
