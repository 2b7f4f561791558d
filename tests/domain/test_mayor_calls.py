"""The mayor's weekly random-call list on SQLite and PostgreSQL (R5.4, R5.6).

Weekly draw (idempotent per week, stratified, reproducible from its recorded seed and
pool), exclusions (opt-outs, do-not-call numbers, no phone, recent lists), results and
follow-up tickets through the one intake path with channel ``mayors_office``, publishing
through the outbox and the supervisor's completion report.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from models import (
    Channel,
    Citizen,
    DoNotCallNumber,
    MayorCallResult,
    Notification,
    NotificationChannel,
    Role,
    StaffUser,
    Ticket,
    TicketContact,
)
from services import mayor_calls
from services.errors import InvalidField, NotPermitted
from services.intake import open_ticket
from services.notification_text import compose
from tests.conftest import staff_with_role
from tests.factories import at, mobile, mobile_e164, request, valid_tc

# Monday 30 November 2026, 09:00 in Istanbul: the list of that week draws from 23–29 Nov.
MONDAY = at(2026, 11, 30, 9)
PREVIOUS_MONDAY = at(2026, 11, 23, 9)
HOODS = ["Yıldıztepe", "Çamlıbel", "Kuzeykent", "Ihlamurdere", "Cumhuriyet"]
TYPES = ["yol_bozuklugu", "cevre_temizligi", "gurultu", "park_bakimi", "sahipsiz_hayvan"]


def _ticket(
    session: Session,
    actor: StaffUser,
    seed: int,
    *,
    when: datetime,
    hood: str = "Yıldıztepe",
    type_code: str = "yol_bozuklugu",
    **fields: object,
) -> Ticket:
    values: dict[str, object] = {
        "tc_number": valid_tc(7000 + seed),
        "phone": mobile(7000 + seed),
        "first_name": "Vatandaş",
        "last_name": f"Şahin{seed}",
        "ticket_type_code": type_code,
        "neighbourhood": hood,
        "received_at": when,
    }
    values.update(fields)
    return open_ticket(session, actor, when, request(Channel.PHONE, **values)).ticket


@pytest.fixture(autouse=True)
def only_this_tests_tickets(request: pytest.FixtureRequest) -> None:
    """The draws of a test see its own tickets only. Other tests may have committed tickets
    received in the weeks drawn here to the shared database: inside this test's (rolled
    back) transaction they are moved long before any pool window (on PostgreSQL the
    transaction reads one snapshot, so tickets committed meanwhile never enter it)."""
    if "session" not in request.fixturenames:
        return
    session: Session = request.getfixturevalue("session")
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        assert isinstance(bind, Connection)
        # Must be the transaction's first statement (this fixture runs before any other).
        bind.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    session.execute(
        update(Ticket)
        .where(Ticket.received_at >= at(2026, 10, 1))
        .values(received_at=at(2001, 1, 1))
    )


@pytest.fixture
def office(session: Session) -> StaffUser:
    return staff_with_role(session, Role.MAYORS_OFFICE)


def _draw(session: Session, now: datetime = MONDAY, **kw: object) -> mayor_calls.MayorCallList:
    args: dict[str, object] = {"actor": None, "size": 4, "exclude_weeks": 8}
    args.update(kw)
    return mayor_calls.draw_weekly_list(session, now=now, **args)  # type: ignore[arg-type]


def test_weekly_draw_is_stratified_reproducible_and_idempotent(
    session: Session, agent: StaffUser
) -> None:
    """R5.4: different neighbourhoods and departments, seed recorded, one list a week."""
    for i in range(10):
        _ticket(
            session,
            agent,
            i,
            when=at(2026, 11, 24 + i % 5, 10),
            hood=HOODS[i % 5],
            type_code=TYPES[(i * 2) % 5],
        )
    # A ticket of this week and one of two weeks ago are not in the pool.
    _ticket(session, agent, 50, when=at(2026, 11, 30, 8))
    _ticket(session, agent, 51, when=at(2026, 11, 20, 8))
    call_list = _draw(session, seed=424242)
    assert call_list.week_start.isoformat() == "2026-11-30"
    assert call_list.seed == 424242 and call_list.drawn_by_id is None
    assert call_list.pool_size == 10
    entries = call_list.entries
    assert [e.position for e in entries] == [1, 2, 3, 4]
    assert len({e.neighbourhood_id for e in entries}) == 4
    assert len({e.department_id for e in entries}) == 4
    assert len({e.citizen_id for e in entries}) == 4
    assert all(e.result is MayorCallResult.PENDING for e in entries)
    assert mayor_calls.redraw(call_list) == [e.ticket_id for e in entries]
    window = call_list.criteria
    assert window["rule"] == "stratified-v1" and window["exclude_weeks"] == 8
    assert window["tickets_in_window"] == 10
    # Idempotent: the same week (later the same day, another seed) gives the same list.
    again = _draw(session, now=at(2026, 12, 2, 15), seed=1)
    assert again.id == call_list.id and again.seed == 424242
    assert len(session.scalars(select(mayor_calls.MayorCallList)).all()) == 1


def test_the_same_seed_over_the_same_pool_draws_the_same_list(
    session: Session, agent: StaffUser
) -> None:
    for i in range(12):
        _ticket(session, agent, i, when=at(2026, 11, 25, 11), hood=HOODS[i % 5])
    first = _draw(session, seed=99)
    picked = [e.ticket_id for e in first.entries]
    session.delete(first)
    session.flush()
    second = _draw(session, seed=99)
    assert [e.ticket_id for e in second.entries] == picked


def test_opted_out_unreachable_and_recently_called_citizens_are_left_out(
    session: Session, agent: StaffUser
) -> None:
    """R5.4 exclusions and R5.6 (do-not-call and consent respected)."""
    when = at(2026, 11, 25, 10)
    no_calls = _ticket(session, agent, 1, when=when, hood=HOODS[0])
    no_consent = _ticket(session, agent, 2, when=when, hood=HOODS[1])
    blocked = _ticket(session, agent, 3, when=when, hood=HOODS[2])
    no_phone = open_ticket(
        session,
        agent,
        when,
        request(
            Channel.WEB,
            tc_number=valid_tc(7004),
            email="telefonsuz@eposta.example",
            received_at=when,
        ),
    ).ticket
    # Called the week before (drawn on the previous list), with a new ticket this week.
    earlier = _ticket(session, agent, 5, when=at(2026, 11, 17, 10), hood=HOODS[3])
    previous = _draw(session, now=PREVIOUS_MONDAY, size=1)
    assert [e.ticket_id for e in previous.entries] == [earlier.id]
    recent = _ticket(session, agent, 5, when=when, hood=HOODS[3], type_code="gurultu")
    fine = _ticket(session, agent, 6, when=when, hood=HOODS[4])

    citizen = session.get(Citizen, no_calls.citizen_id)
    assert citizen is not None
    citizen.do_not_call = True
    citizen = session.get(Citizen, no_consent.citizen_id)
    assert citizen is not None
    citizen.consent_calls = False
    session.add(DoNotCallNumber(phone_e164=mobile_e164(7003), reason="istemiyor", added_at=when))
    session.flush()

    call_list = _draw(session, size=4)
    assert [e.ticket_id for e in call_list.entries] == [fine.id]
    assert call_list.pool_size == 1
    assert call_list.criteria["excluded"] == {
        "do_not_call": 2,
        "no_consent": 1,
        "no_phone": 1,
        "recent_list": 1,
    }
    assert {blocked.id, no_phone.id, recent.id}.isdisjoint(e.ticket_id for e in call_list.entries)


def test_a_ticket_without_a_citizen_is_left_out_when_its_number_opted_out(
    session: Session, agent: StaffUser
) -> None:
    """R5.6 as for campaign targets: a ticket known only by its contact's number (no citizen
    on it) is not drawn when a citizen holding that number asked not to be called."""
    when = at(2026, 11, 25, 10)
    holder = _ticket(session, agent, 21, when=at(2026, 10, 1, 10), hood=HOODS[0])
    anonymous = _ticket(session, agent, 21, when=when, hood=HOODS[1], type_code="gurultu")
    fine = _ticket(session, agent, 22, when=when, hood=HOODS[2])
    citizen = session.get(Citizen, holder.citizen_id)
    assert citizen is not None and anonymous.citizen_id == citizen.id
    anonymous.citizen_id = None  # e.g. a caller who never gave a name, on the same number
    citizen.do_not_call = True
    session.flush()
    call_list = _draw(session, size=4)
    assert [e.ticket_id for e in call_list.entries] == [fine.id]
    assert call_list.criteria["excluded"] == {"do_not_call": 1}


def test_recent_lists_count_only_for_the_configured_weeks(
    session: Session, agent: StaffUser
) -> None:
    _ticket(session, agent, 8, when=at(2026, 11, 17, 10))
    _draw(session, now=PREVIOUS_MONDAY, size=1)
    again = _ticket(session, agent, 8, when=at(2026, 11, 25, 10), type_code="gurultu")
    call_list = _draw(session, exclude_weeks=0)
    assert [e.ticket_id for e in call_list.entries] == [again.id]


def test_only_a_supervisor_draws_by_hand(session: Session, agent: StaffUser) -> None:
    with pytest.raises(NotPermitted):
        _draw(session, actor=agent)
    supervisor = staff_with_role(session, Role.SUPERVISOR)
    assert _draw(session, actor=supervisor).drawn_by_id == supervisor.id


def test_result_and_follow_up_ticket_through_the_intake_path(
    session: Session, agent: StaffUser, office: StaffUser
) -> None:
    """R5.4: follow-up notes return to the coordination desk as tickets (channel mayor's
    office), opened through services.intake.open_ticket and linked to the entry."""
    original = _ticket(session, agent, 1, when=at(2026, 11, 26, 14), hood="Çamlıbel")
    entry = _draw(session).entries[0]
    call_time = at(2026, 11, 30, 11)
    recorded = mayor_calls.record_call_result(
        session,
        actor=office,
        now=at(2026, 11, 30, 11, 30),
        entry_id=entry.id,
        result="reached",
        notes="Vatandaş memnun, ancak sokak lambası da yanmıyor.",
        follow_up_text="Sokak lambası yanmıyor, kontrol edilsin.",
        called_at=call_time,
    )
    assert recorded.result is MayorCallResult.REACHED
    assert recorded.called_at == call_time and recorded.recorded_by_id == office.id
    follow = session.get(Ticket, recorded.follow_up_ticket_id)
    assert follow is not None and follow.id != original.id
    assert follow.channel is Channel.MAYORS_OFFICE
    assert follow.citizen_id == original.citizen_id
    assert follow.neighbourhood_id == original.neighbourhood_id
    assert "Sokak lambası yanmıyor" in follow.description
    assert original.reference_code in follow.description
    contact = session.scalars(select(TicketContact).where(TicketContact.ticket_id == follow.id))
    assert contact.one().external_ref == f"mayor-entry:{entry.id}"
    # One follow-up per entry; a correction of the result keeps it.
    with pytest.raises(InvalidField):
        mayor_calls.record_call_result(
            session,
            actor=office,
            now=MONDAY,
            entry_id=entry.id,
            result="reached",
            notes="",
            follow_up_text="ikinci",
        )
    corrected = mayor_calls.record_call_result(
        session, actor=office, now=MONDAY, entry_id=entry.id, result="not_reached", notes=""
    )
    assert corrected.result is MayorCallResult.NOT_REACHED
    assert corrected.follow_up_ticket_id == follow.id


def test_bad_results_and_other_roles_are_refused(
    session: Session, agent: StaffUser, office: StaffUser
) -> None:
    _ticket(session, agent, 1, when=at(2026, 11, 26, 14))
    entry = _draw(session).entries[0]
    with pytest.raises(NotPermitted):
        mayor_calls.record_call_result(
            session, actor=agent, now=MONDAY, entry_id=entry.id, result="reached", notes=""
        )
    for bad in ("pending", "maybe"):
        with pytest.raises(InvalidField):
            mayor_calls.record_call_result(
                session, actor=office, now=MONDAY, entry_id=entry.id, result=bad, notes=""
            )
    assert entry.result is MayorCallResult.PENDING


def _emails(session: Session, prefix: str) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.idempotency_key.startswith(prefix))
            .order_by(Notification.id)
        )
    )


def test_publish_then_next_monday_report_with_the_new_list(
    session: Session, agent: StaffUser, office: StaffUser
) -> None:
    """R5.4: the list goes to Özel Kalem; the following Monday the supervisor gets the
    completion report of the previous list together with the new list."""
    for i in range(3):
        _ticket(session, agent, i, when=at(2026, 11, 18, 10), hood=HOODS[i], type_code=TYPES[i])
    first = _draw(session, now=PREVIOUS_MONDAY, size=3)
    queued = mayor_calls.publish_list(session, now=PREVIOUS_MONDAY, call_list=first)
    assert first.published_at == PREVIOUS_MONDAY
    office_mail = _emails(session, f"mayor-list:{first.id}:")
    assert office_mail and {m.recipient for m in office_mail} == {office.email}
    assert office_mail[0].channel is NotificationChannel.EMAIL
    assert office_mail[0].template == "mayor_weekly_list"
    assert queued == len(office_mail) + len(_emails(session, f"mayor-report:{first.id}:"))
    text = compose(
        template="mayor_weekly_list",
        language="tr",
        payload=office_mail[0].payload,
        context={"municipality": "Açık Kapı Belediyesi", "call_centre": "4448007"},
    ).text
    for entry in first.entries:
        assert entry.ticket.reference_code in text and entry.phone_e164 in text
    assert "Şahin" in text and "Başkanlık haftalık arama listesi" in text
    # Publishing again writes nothing new.
    assert mayor_calls.publish_list(session, now=MONDAY, call_list=first) == queued
    assert first.published_at == PREVIOUS_MONDAY

    e1, e2, _e3 = first.entries
    mayor_calls.record_call_result(
        session,
        actor=office,
        now=PREVIOUS_MONDAY,
        entry_id=e1.id,
        result="reached",
        notes="Teşekkür etti.",
        follow_up_text="Kaldırım da bozuk.",
    )
    mayor_calls.record_call_result(
        session, actor=office, now=PREVIOUS_MONDAY, entry_id=e2.id, result="wrong_number", notes=""
    )
    report = mayor_calls.completion_report(session, first.id)
    assert report.total == 3 and report.done == 2 and report.follow_ups == 1
    assert report.counts[MayorCallResult.REACHED] == 1
    assert report.counts[MayorCallResult.WRONG_NUMBER] == 1
    assert report.counts[MayorCallResult.PENDING] == 1

    _ticket(session, agent, 20, when=at(2026, 11, 25, 10), hood=HOODS[4])
    second = _draw(session)
    mayor_calls.publish_list(session, now=MONDAY, call_list=second)
    supervisors = _emails(session, f"mayor-report:{second.id}:")
    assert supervisors and all(m.template == "mayor_weekly_report" for m in supervisors)
    payload = supervisors[0].payload
    assert payload["reached"] == 1 and payload["pending"] == 1 and payload["follow_ups"] == 1
    assert payload["week"] == "23.11.2026" and payload["new_week"] == "30.11.2026"
    body = compose(
        template="mayor_weekly_report",
        language="en",
        payload=payload,
        context={"municipality": "Açık Kapı", "call_centre": "4448007"},
    ).text
    assert "1 reached" in body and "wrong number" in body
    assert second.entries[0].ticket.reference_code in body


def test_a_draw_that_loses_the_race_returns_the_winners_list(
    session: Session, agent: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two drawers in the same week: the unique week_start decides, the loser's savepoint is
    rolled back and it gets the first list (simulated: the loser's look-up missed it)."""
    _ticket(session, agent, 1, when=at(2026, 11, 26, 14))
    winner = _draw(session, seed=5)
    real = mayor_calls.list_for_week
    calls = []

    def missed_once(s: Session, week_start: object) -> object:
        calls.append(week_start)
        return None if len(calls) == 1 else real(s, week_start)  # type: ignore[arg-type]

    monkeypatch.setattr(mayor_calls, "list_for_week", missed_once)
    loser = _draw(session, seed=6)
    assert loser.id == winner.id and loser.seed == 5 and len(calls) == 2
    assert len(session.scalars(select(mayor_calls.MayorCallList)).all()) == 1
