"""The ticket stage with worker processes, on a real database shared by both processes.

The ``session`` fixture's rolled-back transaction is invisible to another process, so this
test builds its own migrated, seeded database (a SQLite file; on PostgreSQL, the production
default of one worker process, a schema of its own in the test database, dropped afterwards):
the writer commits in this process, the worker process opens the tickets, and a worker
killed mid-run is replaced without losing the call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from acikkapi.db import make_engine, make_session_factory, unit_of_work
from acikkapi.migrate import upgrade
from ami_listener.replay import facts_from_transcript
from ami_listener.tickets import TicketStage
from ami_listener.writer import FactWriter
from models import CallRecord, Channel, Ticket, TicketContact
from services.call_records import calls_awaiting_ticket
from services.catalogue_loader import load_catalogue, load_demo, load_holidays
from tests.conftest import BACKENDS, DEFAULT_PG_URL

TRANSCRIPTS = Path(__file__).parent / "transcripts"
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@contextmanager
def own_schema() -> Iterator[str]:
    """The URL of a fresh schema in the PostgreSQL test database (``search_path`` set on
    every connection, worker processes included), dropped at the end."""
    base = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)
    schema = f"ticket_workers_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'listener.db'}"
        else:
            url = stack.enter_context(own_schema())
        upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        with Session(engine) as session:
            load_holidays(session)
            load_catalogue(session, NOW)
            load_demo(session, NOW)
            session.commit()
        yield url, engine


def test_worker_process_opens_tickets_and_survives_a_killed_worker(
    database: tuple[str, Engine],
) -> None:
    url, engine = database
    factory = make_session_factory(engine)
    first = facts_from_transcript(TRANSCRIPTS / "answered_queue_call.txt")
    second = facts_from_transcript(TRANSCRIPTS / "blind_transfer_switchboard.txt")

    async def go() -> TicketStage:
        stage = TicketStage(
            lambda: unit_of_work(factory), None, workers=1, database_url=url, clock=lambda: NOW
        )
        writer = FactWriter(lambda: unit_of_work(factory), tickets=stage, clock=lambda: NOW)
        stops = asyncio.Event(), asyncio.Event()
        tasks = [
            asyncio.create_task(stage.run(stops[1])),
            asyncio.create_task(writer.run(stops[0])),
        ]
        for fact in first:
            writer.submit(fact)
        await writer.drain()
        await stage.drain()
        assert stage.stats.opened == 1
        pool = stage._pool
        assert pool is not None
        for pid in list(pool._processes):  # the worker dies between two calls
            os.kill(pid, signal.SIGKILL)
        for fact in second:
            writer.submit(fact)
        await writer.drain()
        await stage.drain()
        stops[0].set()
        await tasks[1]
        stops[1].set()
        await tasks[0]
        return stage

    stage = asyncio.run(go())
    assert stage.stats.opened == 2 and stage.stats.failed == 0
    assert stage.stats.db_retries >= 1, "the dead worker's batch was retried"
    with Session(engine) as session:
        records = {r.call_id: r for r in session.scalars(select(CallRecord))}
        channels = {}
        for call_id in ("1795503000.101", "1795503000.301"):
            record = records[call_id]
            assert record.ticket_id is not None and record.citizen_id is not None
            ticket = session.get(Ticket, record.ticket_id)
            contact = session.scalar(
                select(TicketContact).where(TicketContact.external_ref == call_id)
            )
            assert ticket is not None and contact is not None
            assert contact.received_by_id == record.agent_id
            channels[call_id] = ticket.channel
        assert channels == {"1795503000.101": Channel.PHONE, "1795503000.301": Channel.SWITCHBOARD}
        assert calls_awaiting_ticket(session) == []
