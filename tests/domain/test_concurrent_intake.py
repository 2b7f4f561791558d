"""Contacts racing each other (R2.4): two channels reporting the same thing at the same
moment still give one ticket, replays of one provider message are one contact, and one
citizen reached through different identities at once gets one ticket (the citizen look-up
locks the citizens it finds, so dedup sees the other contact's ticket).

Runs real concurrent transactions (threads, separate connections, committed data) on each
backend: PostgreSQL serialises them with advisory locks, SQLite with BEGIN IMMEDIATE.
Every test uses its own TC numbers and phones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Channel, Citizen, Role, StaffUser, Ticket
from services.intake import IntakeResult, open_ticket
from services.intake_request import IntakeRequest
from services.locks import CITIZEN_LOCK_SPACE
from tests.factories import mobile, request, valid_tc


def _agent_id(engine: Engine) -> int:
    with Session(engine) as session:
        agent_id = session.scalars(
            select(StaffUser.id).where(StaffUser.role == Role.AGENT).order_by(StaffUser.id)
        ).first()
    assert agent_id is not None
    return agent_id


def _race(
    engine: Engine, now: datetime, requests: list[IntakeRequest]
) -> list[IntakeResult | BaseException]:
    """Open every request in its own thread and transaction, all started at once."""
    agent_id = _agent_id(engine)
    barrier = threading.Barrier(len(requests), timeout=30)
    results: list[IntakeResult | BaseException] = [RuntimeError("not run")] * len(requests)

    def worker(i: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                barrier.wait()  # no transaction is open yet: SQLite would hold its write lock
                actor = session.get(StaffUser, agent_id)
                assert actor is not None
                results[i] = open_ticket(session, actor, now, requests[i])
                session.commit()
            except BaseException as exc:
                session.rollback()
                results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # A transaction still running would commit into the tests that come next.
    assert not any(t.is_alive() for t in threads), "a contact never finished"
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


def _open_committed(engine: Engine, now: datetime, req: IntakeRequest) -> IntakeResult:
    with Session(engine, expire_on_commit=False) as session:
        actor = session.get(StaffUser, _agent_id(engine))
        assert actor is not None
        result = open_ticket(session, actor, now, req)
        session.commit()
        return result


def _by_tc_only(seed: int) -> IntakeRequest:
    return request(Channel.WEB, tc_number=valid_tc(seed), social_handle=None, address_text=None)


def _by_phone_only(seed: int) -> IntakeRequest:
    return request(
        Channel.PHONE,
        phone=mobile(seed),
        first_name=None,
        last_name=None,
        social_handle=None,
        address_text=None,
        description="",
    )


def _wait_until(engine: Engine, condition: Callable[[Session], bool]) -> None:
    """Poll until ``condition`` holds (fails the test after many tries, never sleeps long)."""
    event = threading.Event()
    with Session(engine) as session:
        for _ in range(3000):
            if condition(session):
                return
            session.rollback()
            event.wait(0.01)
    pytest.fail("the condition was never reached")


@pytest.mark.postgres
def test_a_citizen_called_in_by_tc_and_by_phone_at_once_gets_one_ticket(
    postgresql_engine: Engine, now: datetime
) -> None:
    engine = postgresql_engine
    seed = 883_001
    # The citizen is known by TC number and phone (from an earlier, committed contact).
    known = _open_committed(
        engine,
        now,
        request(tc_number=valid_tc(seed), phone=mobile(seed), ticket_type_code="gurultu"),
    )
    citizen_id = known.ticket.citizen_id
    assert citizen_id is not None

    first = Session(engine, expire_on_commit=False)
    actor = first.get(StaffUser, _agent_id(engine))
    assert actor is not None
    # Transaction 1, by TC number only: opens the ticket, not committed yet.
    opened = open_ticket(first, actor, now, _by_tc_only(seed))
    assert opened.created

    outcome: list[IntakeResult | BaseException] = []
    backend: list[int] = []

    def by_phone() -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                conn = session.connection()
                backend.append(conn.connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]
                caller = session.get(StaffUser, actor.id)
                assert caller is not None
                outcome.append(open_ticket(session, caller, now, _by_phone_only(seed)))
                session.commit()
            except BaseException as exc:
                session.rollback()
                outcome.append(exc)

    # Transaction 2, by phone only: no identity key in common with transaction 1.
    thread = threading.Thread(target=by_phone)
    thread.start()

    def waits_for_the_citizen(session: Session) -> bool:
        if not backend:
            return False
        waiting = session.execute(
            text(
                "SELECT classid, objid, objsubid FROM pg_locks "
                "WHERE pid = :pid AND locktype = 'advisory' AND NOT granted"
            ),
            {"pid": backend[0]},
        ).all()
        return [tuple(w) for w in waiting] == [(CITIZEN_LOCK_SPACE, citizen_id, 2)]

    try:
        _wait_until(engine, waits_for_the_citizen)
    finally:
        first.commit()
        first.close()
        thread.join(timeout=60)
    (result,) = outcome
    assert isinstance(result, IntakeResult), result
    assert result.citizen_match == "phone" and not result.created
    assert result.ticket.id == opened.ticket.id


def test_overlapping_identities_at_once_never_deadlock_or_duplicate(
    engine: Engine, now: datetime
) -> None:
    """Two citizens sharing a landline, each also known by TC and mobile, reached at the same
    moment through every combination: every transaction completes (locks are always taken
    in one order) and each citizen ends with one open ticket of the type."""
    base = 884_000 + (0 if engine.dialect.name == "sqlite" else 100)
    a, b = base + 1, base + 2
    landline = f"0216 {base % 1000:03d} 12 34"
    for seed in (a, b):
        _open_committed(
            engine,
            now,
            request(tc_number=valid_tc(seed), phone=landline, ticket_type_code="gurultu"),
        )
        _open_committed(engine, now, request(tc_number=valid_tc(seed), phone=mobile(seed)))
    cleaning = {"ticket_type_code": "cevre_temizligi", "address_text": None}
    requests = [
        request(tc_number=valid_tc(a), phone=landline, **cleaning),
        request(tc_number=valid_tc(b), phone=landline, **cleaning),
        request(Channel.SMS, tc_number=valid_tc(b), phone=mobile(a), **cleaning),
        request(Channel.PHONE, phone=mobile(a), first_name=None, last_name=None, **cleaning),
        request(Channel.PHONE, phone=mobile(b), first_name=None, last_name=None, **cleaning),
        request(Channel.WEB, tc_number=valid_tc(a), social_handle=None, **cleaning),
        request(Channel.PHONE, phone=landline, first_name=None, last_name=None, **cleaning),
        request(tc_number=valid_tc(b), phone=mobile(b), **cleaning),
    ]
    results = _race(engine, now, requests)
    assert all(isinstance(r, IntakeResult) for r in results), results
    with Session(engine) as session:
        for seed in (a, b):
            citizen_id = session.scalar(
                select(Citizen.id).where(Citizen.tc_number == valid_tc(seed))
            )
            open_of_type = session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(
                    Ticket.citizen_id == citizen_id,
                    Ticket.status.in_(OPEN_STATUSES),
                    Ticket.ticket_type.has(code="cevre_temizligi"),
                )
            )
            assert open_of_type == 1, seed
        # The landline alone identifies nobody: its ticket has no citizen.
        landline_only = results[6]
        assert isinstance(landline_only, IntakeResult)
        assert landline_only.citizen_match == "ambiguous"
