"""Two channels reporting the same thing at the same moment still give one ticket (R2.4).

Runs real concurrent transactions (two threads, two connections, committed data) on each
backend: PostgreSQL serialises them with advisory locks, SQLite with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import Channel, Citizen, Role, StaffUser, Ticket
from services.intake import IntakeResult, open_ticket
from tests.factories import mobile, request, valid_tc


def _race(
    engine: Engine, now: datetime, requests: list[object]
) -> list[IntakeResult | BaseException]:
    with Session(engine) as session:
        actor_id = session.scalars(
            select(StaffUser.id).where(StaffUser.role == Role.AGENT).order_by(StaffUser.id)
        ).first()
    assert actor_id is not None
    barrier = threading.Barrier(len(requests), timeout=30)
    results: list[IntakeResult | BaseException] = [RuntimeError("not run")] * len(requests)

    def worker(i: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                barrier.wait()  # no transaction is open yet: SQLite would hold its write lock
                actor = session.get(StaffUser, actor_id)
                assert actor is not None
                results[i] = open_ticket(session, actor, now, requests[i])  # type: ignore[arg-type]
                session.commit()
            except BaseException as exc:
                session.rollback()
                results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_simultaneous_reports_of_a_new_citizen_make_one_ticket(
    engine: Engine, now: datetime
) -> None:
    seed = 880_000 + (0 if engine.dialect.name == "sqlite" else 1)
    tc = valid_tc(seed)
    results = _race(
        engine,
        now,
        [
            request(Channel.SMS, tc_number=tc, phone=mobile(seed)),
            request(Channel.WEB, tc_number=tc, email="yaris@example.org"),
        ],
    )
    assert all(isinstance(r, IntakeResult) for r in results), results
    outcomes = sorted(r.created for r in results if isinstance(r, IntakeResult))
    assert outcomes == [False, True]
    with Session(engine) as session:
        citizens = session.scalars(select(Citizen).where(Citizen.tc_number == tc)).all()
        assert len(citizens) == 1
        tickets = session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.citizen_id == citizens[0].id)
        )
        assert tickets == 1


def test_simultaneous_replays_of_one_provider_message_are_one_contact(
    engine: Engine, now: datetime
) -> None:
    seed = 881_000 + (0 if engine.dialect.name == "sqlite" else 1)
    req = request(
        Channel.SMS, tc_number=valid_tc(seed), phone=mobile(seed), external_ref=f"smsc-race-{seed}"
    )
    results = _race(engine, now, [req, req, req])
    assert all(isinstance(r, IntakeResult) for r in results), results
    assert sum(1 for r in results if isinstance(r, IntakeResult) and r.created) == 1
    assert sum(1 for r in results if isinstance(r, IntakeResult) and r.replayed) == 2
