"""Agent-first callbacks in the AMI stream (R5.3, R4.3): the dialplan's user events →
citizen card on the agent's screen (real Redis) and the callback task in step with the
attempt, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from ami_listener.callback_events import CallbackStage, parse_callback_event
from ami_listener.screenpop import STREAM, ScreenPopPublisher
from models import (
    AttemptStatus,
    CallbackStatus,
    CampaignTarget,
    CampaignTargetStatus,
    StaffUser,
)
from services.callback_campaign import enqueue_due_callbacks
from services.callbacks import request_callback
from tests.ami_listener.conftest import TEST_REDIS, inline, transaction_on
from tests.factories import add_citizen, mobile, mobile_e164
from tests.outbound_factories import dial


def test_parse_only_well_formed_callback_events() -> None:
    uid = str(uuid.uuid4())
    answered = parse_callback_event(
        {
            "Event": "UserEvent",
            "UserEvent": "AkCallbackAnswered",
            "Attempt": uid,
            "Agent": "PJSIP/1003",
        }
    )
    assert answered is not None and answered.step == "answered"
    assert answered.agent_interface == "PJSIP/1003" and answered.attempt_id == uid
    result = parse_callback_event(
        {"Event": "UserEvent", "UserEvent": "AkAttemptResult", "Attempt": uid.upper()}
    )
    assert result is not None and result.step == "result" and result.attempt_id == uid
    for bad in (
        {
            "Event": "UserEvent",
            "UserEvent": "AkCallbackAnswered",
            "Attempt": "x",
            "Agent": "PJSIP/1",
        },
        {
            "Event": "UserEvent",
            "UserEvent": "AkCallbackAnswered",
            "Attempt": uid,
            "Agent": "SIP/1;x",
        },
        {"Event": "UserEvent", "UserEvent": "Other", "Attempt": uid},
        {"Event": "Hangup", "Uniqueid": uid},
    ):
        assert parse_callback_event(bad) is None


def test_agent_answer_pops_card_and_result_syncs_task(
    session: Session, now: datetime, agent: StaffUser, redis_up: None
) -> None:
    citizen = add_citizen(session, now, mobile_e164(41), first_name="Nuriye", last_name="Aksoy")
    task = request_callback(
        session,
        now,
        call_id="cb-events-1",
        raw_phone=mobile(41),
        reason="abandoned",
        language="tr",
        citizen_id=citizen.id,
    )
    enqueue_due_callbacks(session, now=now)
    target = session.query(CampaignTarget).filter_by(callback_task_id=task.id).one()
    attempt = dial(session, now, target)
    publisher = ScreenPopPublisher(TEST_REDIS)
    stage = CallbackStage(transaction_on(session), publisher, clock=lambda: now, offload=inline)

    async def run() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(stage.run(stop))
        stage.feed(
            {
                "Event": "UserEvent",
                "UserEvent": "AkCallbackAnswered",
                "Attempt": attempt.id,
                "Agent": f"PJSIP/{agent.sip_extension}",
            }
        )
        await stage.drain()
        # the outcome as the outbound stage records it, then the dialplan's result event
        attempt.status, attempt.ended_at = AttemptStatus.ANSWERED, now
        target.status, target.last_outcome, target.completed_at = (
            CampaignTargetStatus.DONE,
            AttemptStatus.ANSWERED,
            now,
        )
        stage.feed({"Event": "UserEvent", "UserEvent": "AkAttemptResult", "Attempt": attempt.id})
        await stage.drain()
        stop.set()
        await runner
        await publisher.close()

    asyncio.run(run())
    assert stage.stats.screen_pops == 1, stage.stats
    assert publisher.stats.published == 1, publisher.stats
    client = redis.Redis.from_url(TEST_REDIS, decode_responses=True)
    entries: Any = client.xrevrange(STREAM, count=200)
    mine = [
        json.loads(f["data"]) for _, f in entries if json.loads(f["data"])["call_id"] == attempt.id
    ]
    assert len(mine) == 1 and entries  # one pop in the stream the consoles read
    pop = mine[0]
    assert pop["agent_id"] == agent.id and pop["caller_e164"] == mobile_e164(41)
    assert pop["citizen"]["name"] == "Nuriye Aksoy" and pop["citizen_id"] == citizen.id
    assert task.status is CallbackStatus.DONE and stage.stats.synced == 1


@pytest.mark.parametrize("agent_header", ["", "PJSIP/"])
def test_answer_without_agent_is_ignored(agent_header: str) -> None:
    event = {
        "Event": "UserEvent",
        "UserEvent": "AkCallbackAnswered",
        "Attempt": str(uuid.uuid4()),
        "Agent": agent_header,
    }
    assert parse_callback_event(event) is None
