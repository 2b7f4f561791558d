"""Callbacks dialled agent first (R5.3) against a real Asterisk and sipp.

The call stack (conftest ``call_stack``) runs Asterisk with our configuration and the AMI
listener (which records attempt outcomes) on a seeded SQLite database. A callback task is
enqueued into the standing "Geri aramalar" campaign; the dial tick
(:func:`outbound.jobs.dial_once`, in-process) finds the free agent with ``QueueStatus`` and
originates the agent's phone (sipp UAS on the agent's port); when it answers, the dialplan
(``acikkapi-callback-agent-first``) dials the citizen through the trunk (sipp UAS on the
trunk port) and reports the outcome with ``UserEvent AkAttemptResult``. The real AMI events
of the call are then fed to :class:`ami_listener.callback_events.CallbackStage` to check the
citizen card pop. Waits are bounds on polling, never timing assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select, update

from acikkapi.db import unit_of_work
from ami_listener.callback_events import CallbackStage
from ami_listener.screenpop import STREAM, ScreenPopPublisher
from models import (
    AttemptStatus,
    CallAttempt,
    CallbackStatus,
    CallbackTask,
    CallRecord,
    CampaignTarget,
    CampaignTargetStatus,
    StaffUser,
)
from outbound.jobs import dial_once
from services.callback_campaign import (
    OPEN_TASK_STATUSES,
    close_callback,
    enqueue_due_callbacks,
    sync_callback_tasks,
)
from services.callbacks import request_callback
from tests.factories import add_citizen, mobile, mobile_e164
from tests.telephony import sipp_tools
from tests.telephony.ami_tools import Ami, first
from tests.telephony.conftest import AGENT_PORTS, CallStack
from tests.telephony.test_call_flows import phones, running
from tests.telephony.test_outbound_dialer import connect, sessions, uas, wait_for

pytestmark = pytest.mark.telephony

AGENT = "1003"
SEED = iter(range(7_300_000, 7_400_000))


@pytest.fixture
def agent_ready(call_stack: CallStack) -> Iterator[StaffUser]:
    """Agent ``AGENT`` registered, unpaused in every queue; other callbacks closed first (the
    session database is shared with the other telephony tests)."""
    stack = call_stack
    console = stack.pbx.ami("console", events="off")
    try:
        console.action("QueuePause", Interface=f"PJSIP/{AGENT}", Paused="false")
    finally:
        console.close()
    with stack.session() as session:
        session.execute(
            update(CallbackTask)
            .where(CallbackTask.status.in_(OPEN_TASK_STATUSES))
            .values(status=CallbackStatus.CANCELLED, note="closed by test_callback_agent_first")
        )
        session.execute(
            update(CampaignTarget)
            .where(
                CampaignTarget.callback_task_id.is_not(None),
                CampaignTarget.status == CampaignTargetStatus.PENDING,
            )
            .values(status=CampaignTargetStatus.CANCELLED)
        )
        agent = session.scalar(select(StaffUser).where(StaffUser.sip_extension == AGENT))
        assert agent is not None
        session.commit()
    with phones(stack.pbx, AGENT):
        yield agent


def new_task(stack: CallStack, now: datetime) -> tuple[int, int, str]:
    """A callback task of a known citizen, enqueued; (task id, citizen id, E.164)."""
    seed = next(SEED)
    with stack.session() as session:
        citizen = add_citizen(
            session, now, mobile_e164(seed), first_name="Fadime", last_name="Çelik"
        )
        task = request_callback(
            session,
            now,
            call_id=f"tel-cb-{seed}",
            raw_phone=mobile(seed),
            reason="ivr_request",
            language="tr",
            citizen_id=citizen.id,
        )
        assert enqueue_due_callbacks(session, now=now) == 1
        session.commit()
        return task.id, citizen.id, mobile_e164(seed)


def task_attempts(stack: CallStack, task_id: int) -> list[CallAttempt]:
    with stack.session() as session:
        return list(
            session.scalars(
                select(CallAttempt)
                .join(CampaignTarget, CampaignTarget.id == CallAttempt.target_id)
                .where(CampaignTarget.callback_task_id == task_id)
                .order_by(CallAttempt.number)
            )
        )


def ended(stack: CallStack, task_id: int, number: int) -> CallAttempt | None:
    found = [a for a in task_attempts(stack, task_id) if a.number == number]
    if found and found[0].status not in (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED):
        return found[0]
    return None


def synced_task(stack: CallStack, task_id: int) -> CallbackTask:
    """Run the periodic sync (jobs/callbacks.py does the same) and return the task."""
    with unit_of_work(sessions(stack)) as session:
        sync_callback_tasks(session, now=datetime.now(UTC))
    with stack.session() as session:
        task = session.get(CallbackTask, task_id)
        assert task is not None
        return task


def user_events(ami: Ami, name: str, attempt_id: str) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in e.items()}
        for e in list(ami.events)
        if first(e, "Event") == "UserEvent"
        and first(e, "UserEvent") == name
        and first(e, "Attempt") == attempt_id
    ]


@contextlib.contextmanager
def agent_phone(stack: CallStack, hold_ms: int) -> Iterator[sipp_tools.Sipp]:
    phone = sipp_tools.agent_talk(
        stack.pbx.workdir, stack.pbx.sip_target, AGENT_PORTS[AGENT], ring_ms=300, hold_ms=hold_ms
    )
    with running(phone):
        time.sleep(0.3)
        yield phone


def close_open(stack: CallStack, task_id: int, agent: StaffUser) -> None:
    with stack.session() as session:
        task = session.get(CallbackTask, task_id)
        if task is not None and task.status in (*OPEN_TASK_STATUSES, CallbackStatus.FAILED):
            close_callback(
                session, now=datetime.now(UTC), actor=agent, task_id=task_id, note="test end"
            )
            session.commit()


def test_agent_first_callback_answered_pops_card_and_closes_task(
    call_stack: CallStack, agent_ready: StaffUser
) -> None:
    """Originate the agent → agent answers → citizen dialled through the trunk → answers →
    ``AkAttemptResult answered`` → attempt ANSWERED, target DONE, task DONE; the agent's
    screen gets the citizen's card (R4.3)."""
    stack = call_stack
    now = datetime.now(UTC)
    task_id, citizen_id, e164 = new_task(stack, now)
    try:
        ami = stack.pbx.ami("listener")
        try:
            with (
                uas(stack.pbx.workdir, "outbound_answer_uas", 1, ring_ms=300) as citizen,
                agent_phone(stack, hold_ms=4000) as phone,
            ):
                report = dial_once(sessions(stack), connect(stack))
                assert report.claimed == 1 and report.originated == 1, report
                attempt = wait_for(lambda: ended(stack, task_id, 1), "the callback's outcome")
                assert rc_ok(phone), phone.output()
                citizen.finish()
            answered = wait_for(
                lambda: user_events(ami, "AkCallbackAnswered", attempt.id), "AkCallbackAnswered"
            )
            result = wait_for(
                lambda: user_events(ami, "AkAttemptResult", attempt.id), "AkAttemptResult"
            )
            events = [{k: v[0] for k, v in e.items()} for e in list(ami.events)]
        finally:
            ami.close()
        assert attempt.status is AttemptStatus.ANSWERED, attempt.reason
        assert answered[0]["Agent"] == f"PJSIP/{AGENT}"
        assert result[0]["Outcome"] == "answered" and result[0]["Result"] == "callback-answer"
        newchannel = [
            e for e in events if e.get("Event") == "Newchannel" and e.get("Uniqueid") == attempt.id
        ]
        assert newchannel and newchannel[0]["Channel"].startswith(f"PJSIP/{AGENT}-")  # agent first
        assert citizen.invites() == 1  # then the citizen, through the trunk
        with stack.session() as session:
            target = session.scalar(
                select(CampaignTarget).where(CampaignTarget.callback_task_id == task_id)
            )
            assert target is not None and target.status is CampaignTargetStatus.DONE
        task = synced_task(stack, task_id)
        assert task.status is CallbackStatus.DONE and task.attempts == 1
        assert task.completed_at is not None
        # The agent's screen: the real AMI events of this call through the listener's stage.
        pop = replay_pop(stack, events, attempt.id)
        assert pop["agent_id"] == agent_ready.id and pop["caller_e164"] == e164
        assert pop["citizen_id"] == citizen_id and pop["citizen"]["name"] == "Fadime Çelik"
        with stack.session() as session:
            record = session.scalar(select(CallRecord).where(CallRecord.call_id == attempt.id))
            assert record is not None and record.agent_id == agent_ready.id
    finally:
        close_open(stack, task_id, agent_ready)


def rc_ok(phone: sipp_tools.Sipp) -> bool:
    return phone.wait(60) == 0


def replay_pop(stack: CallStack, events: list[dict[str, str]], attempt_id: str) -> dict[str, Any]:
    publisher = ScreenPopPublisher(stack.settings.redis_url)
    stage = CallbackStage(lambda: unit_of_work(sessions(stack)), publisher)

    async def run() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(stage.run(stop))
        for event in events:
            stage.feed(event)
        await stage.drain()
        stop.set()
        await runner
        await publisher.close()

    asyncio.run(run())
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    try:
        entries: Any = client.xrevrange(STREAM, count=500)
        for _id, fields in entries:
            message = json.loads(fields["data"])
            if message.get("call_id") == attempt_id:
                return dict(message)
    finally:
        client.close()
    raise AssertionError(f"no screen pop for {attempt_id}")


def test_busy_citizen_is_retried_per_policy(call_stack: CallStack, agent_ready: StaffUser) -> None:
    """The citizen is busy → ``AkAttemptResult busy`` → the target waits the campaign's retry
    spacing (task still in progress, 1 attempt); the retry (attempt 2) is answered → DONE."""
    stack = call_stack
    now = datetime.now(UTC)
    task_id, _citizen_id, _e164 = new_task(stack, now)
    try:
        ami = stack.pbx.ami("listener")
        try:
            with (
                uas(stack.pbx.workdir, "outbound_busy_uas", 1) as citizen,
                agent_phone(stack, hold_ms=30000),
            ):
                report = dial_once(sessions(stack), connect(stack))
                assert report.originated == 1, report
                first_try = wait_for(lambda: ended(stack, task_id, 1), "the busy outcome")
                citizen.finish()
            result = wait_for(
                lambda: user_events(ami, "AkAttemptResult", first_try.id), "AkAttemptResult"
            )
        finally:
            ami.close()
        assert first_try.status is AttemptStatus.BUSY, first_try.reason
        assert result[0]["Outcome"] == "busy"
        with stack.session() as session:
            target = session.scalar(
                select(CampaignTarget).where(CampaignTarget.callback_task_id == task_id)
            )
            assert target is not None and target.status is CampaignTargetStatus.PENDING
            assert target.attempts == 1 and target.last_outcome is AttemptStatus.BUSY
            assert target.next_attempt_at is not None
            retry_at = target.next_attempt_at
        assert retry_at >= now + timedelta(minutes=29)  # the campaign's retry spacing (30 min)
        task = synced_task(stack, task_id)
        assert task.status is CallbackStatus.IN_PROGRESS and task.attempts == 1
        # Not before the spacing: nothing is claimed now.
        assert dial_once(sessions(stack), connect(stack)).claimed == 0
        # At the retry time: attempt 2, answered.
        with (
            uas(stack.pbx.workdir, "outbound_answer_uas", 1, ring_ms=300) as citizen,
            agent_phone(stack, hold_ms=3000) as phone,
        ):
            report = dial_once(sessions(stack), connect(stack), now=retry_at + timedelta(seconds=1))
            assert report.claimed == 1 and report.originated == 1, report
            second = wait_for(lambda: ended(stack, task_id, 2), "the retry's outcome")
            assert rc_ok(phone), phone.output()
            citizen.finish()
        assert second.status is AttemptStatus.ANSWERED, second.reason
        task = synced_task(stack, task_id)
        assert task.status is CallbackStatus.DONE and task.attempts == 2
    finally:
        close_open(stack, task_id, agent_ready)
