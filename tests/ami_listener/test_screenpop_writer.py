"""Writer + Redis screen pops against the real Redis on 127.0.0.1:6379, and with Redis down."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from ami_listener.replay import facts_from_transcript
from ami_listener.screenpop import CHANNEL_PREFIX, STREAM, ScreenPopPublisher
from ami_listener.writer import FactWriter
from models import CallOutcome, CallRecord
from tests.ami_listener.conftest import (
    TEST_REDIS,
    inline,
    pops_of,
    run_writer,
    subscribe_pops,
    transaction_on,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"
CALL_ID = "1795503000.101"


def writer_for(session: Session, publisher: ScreenPopPublisher | None, now: datetime) -> FactWriter:
    return FactWriter(
        transaction_on(session), publisher, clock=lambda: now, offload=inline, flush_interval=0.05
    )


def _record(session: Session) -> CallRecord:
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == CALL_ID))
    assert record is not None
    return record


def test_screen_pop_published_to_agent_channel_and_stream(
    redis_up: None, session: Session, now: datetime
) -> None:
    client = redis.Redis.from_url(TEST_REDIS, decode_responses=True)
    facts = facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")

    async def go() -> tuple[list[dict[str, Any]], ScreenPopPublisher]:
        publisher = ScreenPopPublisher(TEST_REDIS)
        writer = writer_for(session, publisher, now)
        pubsub = subscribe_pops(client)
        await run_writer(writer, facts)
        mine = pops_of(pubsub, CALL_ID)
        await publisher.close()
        return mine, publisher

    mine, publisher = asyncio.run(go())
    record = _record(session)
    assert len(mine) == 1
    pop = mine[0]
    assert pop["channel"] == f"{CHANNEL_PREFIX}{record.agent_id}"
    assert pop["type"] == "screen_pop"
    assert pop["agent_id"] == record.agent_id and pop["agent_interface"] == "PJSIP/1001"
    assert pop["caller_e164"] == "+905321234567" and pop["caller_raw"] == "05321234567"
    assert pop["ticket_id"] == record.ticket_id and pop["citizen_id"] == record.citizen_id
    assert pop["reference_code"] and pop["at"].startswith("2026-11-24T06:50:32")
    entries = client.xrevrange(STREAM, count=50)
    assert any(json.loads(fields["data"])["call_id"] == CALL_ID for _, fields in entries)
    assert publisher.stats.published == 1 and publisher.pending == 0


def test_redis_down_does_not_stop_processing(session: Session, now: datetime) -> None:
    facts = facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")

    async def go() -> ScreenPopPublisher:
        publisher = ScreenPopPublisher("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens
        writer = writer_for(session, publisher, now)
        await writer.apply_now(list(facts))
        assert publisher.stats.failures >= 1 and publisher.pending == 1
        return publisher

    asyncio.run(go())
    record = _record(session)
    assert record.outcome == CallOutcome.ANSWERED and record.ticket_id is not None
    assert record.ended_at is not None  # every fact after the failed publish was applied


def test_backlog_is_retried_when_redis_returns(
    redis_up: None, session: Session, now: datetime
) -> None:
    facts = facts_from_transcript(TRANSCRIPTS / "english_queue_call.txt")

    async def go() -> ScreenPopPublisher:
        publisher = ScreenPopPublisher("redis://127.0.0.1:1/0", timeout=0.2)
        await writer_for(session, publisher, now).apply_now(list(facts))
        assert publisher.pending == 1
        publisher.url = TEST_REDIS  # Redis is back
        assert await publisher.flush()
        await publisher.close()
        return publisher

    publisher = asyncio.run(go())
    assert publisher.pending == 0 and publisher.stats.published == 1
