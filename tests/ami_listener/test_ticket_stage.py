"""The ticket stage: answered calls get their tickets after (and apart from) their records.

Real database (SQLite and PostgreSQL through the ``session`` fixture), real Redis for the
screen pop. What is proven here:

- durable first: when a call is handed to the stage, its answered record without a ticket
  is already written; a crash between that write and the ticket (simulated by a hand-over
  that goes nowhere) is recovered by the stage's sweep, and nothing is done twice;
- call-record facts are not queued behind ticket opening: while a ticket batch is held
  open, the writer keeps committing other calls' facts;
- the screen pop is published after the ticket commit and carries ticket, reference code and
  the citizen card;
- a ticket that intake refuses is noted on the record and never tried again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import models
from ami_listener.replay import facts_from_transcript
from ami_listener.screenpop import ScreenPopPublisher
from ami_listener.tickets import TicketStage
from ami_listener.writer import FactWriter, TicketSink
from models import CallRecord, Ticket, TicketContact, TicketType
from services.call_records import (
    NO_TICKET,
    TicketDue,
    apply_fact,
    calls_awaiting_ticket,
    get_record,
    open_call_tickets,
)
from tests.ami_listener.conftest import (
    TEST_REDIS,
    inline,
    pops_of,
    run_writer,
    subscribe_pops,
    transaction_on,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"
ANSWERED = "1795503000.101"  # answered_queue_call.txt
ENGLISH = "1795503000.501"  # english_queue_call.txt


def stage_for(
    session: Session,
    now: datetime,
    publisher: ScreenPopPublisher | None = None,
    offload: Callable[[Callable[[], Any]], Awaitable[Any]] = inline,
    sweep_at_start: bool = True,
) -> TicketStage:
    return TicketStage(
        transaction_on(session),
        publisher,
        clock=lambda: now,
        offload=offload,
        sweep_at_start=sweep_at_start,
    )


def writer_for(session: Session, now: datetime, tickets: TicketSink) -> FactWriter:
    return FactWriter(transaction_on(session), clock=lambda: now, offload=inline, tickets=tickets)


def dump(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    session.flush()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in models.Base.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        out[table.name] = [tuple(r) for r in session.execute(select(table).order_by(*order))]
    return out


class Recorder:
    """A hand-over that records what the record looked like when the call was handed over,
    and optionally passes it on (``None``: the process "dies" before the stage sees it)."""

    def __init__(self, session: Session, then: TicketSink | None) -> None:
        self.session = session
        self.then = then
        self.seen: list[tuple[str, bool, bool]] = []

    def submit(self, due: TicketDue) -> bool:
        record = get_record(self.session, due.call_id)
        assert record is not None
        self.seen.append((due.call_id, record.answered_at is not None, record.ticket_id is None))
        return self.then.submit(due) if self.then is not None else True


async def run_stage(stage: TicketStage, start_up_sweep: bool = True) -> None:
    """Run the stage until its start-up sweep (if any) and everything queued are done."""
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    while start_up_sweep and stage.stats.sweeps == 0:
        await asyncio.sleep(0)
    await stage.drain()
    stop.set()
    await task


def test_answer_is_durable_before_the_ticket_and_the_pop_carries_the_card(
    redis_up: None,
    session: Session,
    now: datetime,
) -> None:
    client = redis.Redis.from_url(TEST_REDIS, decode_responses=True)
    facts = facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")

    async def go() -> tuple[Recorder, list[dict[str, Any]]]:
        publisher = ScreenPopPublisher(TEST_REDIS)
        stage = stage_for(session, now, publisher)
        recorder = Recorder(session, stage)
        writer = writer_for(session, now, recorder)
        pubsub = subscribe_pops(client)
        await run_writer(writer, facts)
        await run_stage(stage)
        mine = pops_of(pubsub, ANSWERED)
        await publisher.close()
        assert stage.stats.opened == 1 and stage.stats.screen_pops == 1
        return recorder, mine

    recorder, mine = asyncio.run(go())
    assert recorder.seen == [(ANSWERED, True, True)], "answer written, ticket not yet"
    record = get_record(session, ANSWERED)
    assert record is not None and record.ticket_id is not None and record.citizen_id is not None
    ticket = session.get(Ticket, record.ticket_id)
    assert ticket is not None
    contact = session.scalar(select(TicketContact).where(TicketContact.external_ref == ANSWERED))
    assert contact is not None and contact.received_by_id == record.agent_id
    assert contact.phone_e164 == "+905321234567"
    assert len(mine) == 1
    pop = mine[0]
    assert pop["ticket_id"] == ticket.id and pop["reference_code"] == ticket.reference_code
    assert pop["agent_id"] == record.agent_id and pop["caller_e164"] == "+905321234567"
    card = pop["citizen"]
    assert card["citizen_id"] == record.citizen_id and card["open_tickets"] >= 1
    assert ticket.reference_code in [t["reference_code"] for t in card["recent_tickets"]]
    assert "tc_number" not in card
    assert calls_awaiting_ticket(session) == []


def test_crash_between_record_and_ticket_is_recovered_once(session: Session, now: datetime) -> None:
    facts = facts_from_transcript(TRANSCRIPTS / "english_queue_call.txt")

    async def crash_then_restart() -> TicketStage:
        lost = Recorder(session, None)  # the process dies before the stage sees the call
        await writer_for(session, now, lost).apply_now(list(facts))
        assert lost.seen == [(ENGLISH, True, True)]
        assert calls_awaiting_ticket(session) == [ENGLISH]
        restarted = stage_for(session, now)
        await run_stage(restarted)  # its start-up sweep finds the call
        return restarted

    restarted = asyncio.run(crash_then_restart())
    assert restarted.stats.swept == 1 and restarted.stats.opened == 1
    record = get_record(session, ENGLISH)
    assert record is not None and record.ticket_id is not None
    assert calls_awaiting_ticket(session) == []
    first = dump(session)

    async def again() -> TicketStage:
        stage = stage_for(session, now)  # another restart, and the same stream once more
        await writer_for(session, now, stage).apply_now(list(facts))
        await run_stage(stage)
        return stage

    stage = asyncio.run(again())
    assert stage.stats.opened == 0 and stage.stats.swept == 0
    assert dump(session) == first, "replaying and sweeping again changed rows"


def test_record_facts_are_not_queued_behind_an_open_ticket_batch(
    session: Session, now: datetime
) -> None:
    gate = asyncio.Event()

    async def held(fn: Callable[[], Any]) -> Any:  # a ticket transaction that takes its time
        await gate.wait()
        return fn()

    first = facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")
    second = facts_from_transcript(TRANSCRIPTS / "abandoned_call.txt")

    async def go() -> None:
        stage = stage_for(session, now, offload=held, sweep_at_start=False)
        writer = writer_for(session, now, stage)
        stops = asyncio.Event(), asyncio.Event()
        tasks = [
            asyncio.create_task(writer.run(stops[0])),
            asyncio.create_task(stage.run(stops[1])),
        ]
        for fact in first:
            writer.submit(fact)
        await writer.drain()
        while stage.queue.qsize():  # the stage has taken the call and waits on the gate
            await asyncio.sleep(0)
        for fact in second:
            writer.submit(fact)
        await writer.drain()  # committed while the ticket batch is still open
        answered = get_record(session, ANSWERED)
        assert answered is not None and answered.ticket_id is None
        abandoned = get_record(session, "1795503000.201")
        assert abandoned is not None and abandoned.ended_at is not None
        gate.set()
        await stage.drain()
        for stop in stops:
            stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(go())
    answered = get_record(session, ANSWERED)
    assert answered is not None and answered.ticket_id is not None


def test_refused_ticket_is_noted_popped_without_ticket_and_not_retried(
    session: Session, now: datetime
) -> None:
    session.execute(update(TicketType).where(TicketType.code == "genel").values(is_active=False))
    dues = [
        due
        for fact in facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")
        if (due := apply_fact(session, now, fact).ticket_due) is not None
    ]
    session.flush()
    done = open_call_tickets(session, now, dues)
    assert done.refused == [ANSWERED] and done.opened == []
    record = get_record(session, ANSWERED)
    assert record is not None and record.ticket_id is None
    assert record.note is not None and NO_TICKET in record.note
    assert record.ticket_refusal is not None and record.ticket_refusal in record.note
    assert [(p.call_id, p.ticket_id, p.agent_id) for p in done.screen_pops] == [
        (ANSWERED, None, record.agent_id)
    ]
    session.flush()
    assert calls_awaiting_ticket(session) == []
    again = open_call_tickets(session, now, [TicketDue(ANSWERED)])
    assert again.refused == [] and again.opened == []
    assert session.scalar(select(CallRecord.note).where(CallRecord.call_id == ANSWERED)) == (
        record.note
    )


def test_a_refusal_is_kept_even_when_the_note_is_already_full(
    session: Session, now: datetime
) -> None:
    """The refusal is state, not text: a record whose note is full (300 characters) still
    remembers it and is not tried again (it used to be read from the note)."""
    session.execute(update(TicketType).where(TicketType.code == "genel").values(is_active=False))
    dues = [
        due
        for fact in facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")
        if (due := apply_fact(session, now, fact).ticket_due) is not None
    ]
    record = get_record(session, ANSWERED)
    assert record is not None
    record.note = "ş" * 300
    session.flush()
    done = open_call_tickets(session, now, dues)
    assert done.refused == [ANSWERED]
    session.flush()
    assert record.note == "ş" * 300  # nothing fitted: the note could not hold the marker
    assert record.ticket_refusal is not None
    assert calls_awaiting_ticket(session) == []
    again = open_call_tickets(session, now, [TicketDue(ANSWERED)])
    assert again.refused == [] and again.opened == []


def test_stage_batch_with_refusals_is_redone_with_savepoints(
    session: Session, now: datetime
) -> None:
    """The stage opens a batch without per-call savepoints; a refusal rolls that batch back
    and it runs again with them, so refusals are noted and nothing half-done remains."""
    session.execute(update(TicketType).where(TicketType.code == "genel").values(is_active=False))
    contacts_before = session.scalar(select(func.count(TicketContact.id)))
    facts = facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")
    facts += facts_from_transcript(TRANSCRIPTS / "english_queue_call.txt")

    async def go() -> TicketStage:
        stage = stage_for(session, now, sweep_at_start=False)
        await writer_for(session, now, stage).apply_now(list(facts))
        assert stage.queue.qsize() == 2
        await run_stage(stage, start_up_sweep=False)
        return stage

    stage = asyncio.run(go())
    assert stage.stats.refused == 2 and stage.stats.opened == 0 and stage.stats.batches == 1
    for call_id in (ANSWERED, ENGLISH):
        record = get_record(session, call_id)
        assert record is not None and record.ticket_id is None
        assert record.note is not None and NO_TICKET in record.note
    assert session.scalar(select(func.count(TicketContact.id))) == contacts_before
    assert calls_awaiting_ticket(session) == []
