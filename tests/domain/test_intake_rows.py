"""Intake writes its rows with Core statements (issue 2): what it hands back, what a rollback
undoes, and that catalogue and calendar edits are seen by the very next contact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from models import (
    Channel,
    ExternalInstitution,
    Holiday,
    Neighbourhood,
    Notification,
    StaffUser,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketType,
    TimelineAction,
)
from services.calendar_store import get_calendar, window_calendar
from services.errors import UnknownEntity
from services.intake import open_ticket
from services.sla import deadlines_for
from tests.factories import mobile, request, valid_tc


def _row(session: Session, model: type[Any], row_id: int) -> dict[str, Any]:
    table = model.__table__
    found = session.execute(select(table).where(table.c.id == row_id)).one()
    return dict(found._mapping)


def _assert_object_is_its_row(session: Session, obj: Any) -> None:
    """Every column of ``obj`` (set by intake, defaulted or loaded on use) equals its row."""
    state = inspect(obj)
    assert state.persistent and state.session is session
    row = _row(session, type(obj), obj.id)
    assert {key: getattr(obj, key) for key in row} == row


def _type(session: Session, code: str) -> TicketType:
    found = session.scalar(select(TicketType).where(TicketType.code == code))
    assert found is not None
    return found


def test_the_objects_handed_back_are_the_rows_written(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    place = {"address_text": "Lale Sokak No: 51"}
    first = open_ticket(
        session, agent, now, request(tc_number=valid_tc(5100), phone=mobile(5100), **place)
    )
    grouped = open_ticket(  # same type, same address, another citizen
        session,
        agent,
        now,
        request(tc_number=valid_tc(5101), phone=mobile(5101), first_name="Can", **place),
    )
    attached = open_ticket(
        session, agent, now + timedelta(hours=1), request(Channel.WEB, tc_number=valid_tc(5100))
    )
    assert first.created and grouped.created and not attached.created
    assert grouped.grouped_with == first.ticket.id and attached.ticket is first.ticket
    for result in (first, grouped, attached):
        assert result.acknowledgement is not None
        for obj in (result.ticket, result.contact, result.acknowledgement):
            _assert_object_is_its_row(session, obj)
    # The ticket grouped with kept its object in step with its row, as did the attached one.
    assert first.ticket.group_id == grouped.ticket.group_id is not None
    assert first.ticket.updated_at == now + timedelta(hours=1)
    assert [c.id for c in first.ticket.contacts] == [first.contact.id, attached.contact.id]


def test_a_rolled_back_savepoint_takes_the_new_objects_with_it(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    counts_before = [
        session.scalar(select(func.count()).select_from(m))
        for m in (Ticket, TicketContact, Notification, TicketEvent)
    ]
    savepoint = session.begin_nested()
    undone = open_ticket(session, agent, now, request(tc_number=valid_tc(5110), phone=mobile(5110)))
    savepoint.rollback()
    for obj in (undone.ticket, undone.contact, undone.acknowledgement):
        assert obj not in session and not inspect(obj).persistent
    assert counts_before == [
        session.scalar(select(func.count()).select_from(m))
        for m in (Ticket, TicketContact, Notification, TicketEvent)
    ]
    # The ids the savepoint used may come again (SQLite reuses them): no stale object is hit.
    again = open_ticket(session, agent, now, request(tc_number=valid_tc(5110), phone=mobile(5110)))
    assert again.created
    for obj in (again.ticket, again.contact, again.acknowledgement):
        _assert_object_is_its_row(session, obj)


def test_a_replayed_call_without_caller_id_changes_nothing(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    call = request(
        Channel.PHONE,
        first_name=None,
        last_name=None,
        social_handle=None,
        description="",
        external_ref="call-no-caller-id-1",
    )
    first = open_ticket(session, agent, now, call)
    tickets = session.scalar(select(func.count()).select_from(Ticket))
    again = open_ticket(session, agent, now + timedelta(minutes=2), call)
    assert first.created and again.replayed and not again.created
    assert again.ticket.id == first.ticket.id and again.contact.id == first.contact.id
    assert session.scalar(select(func.count()).select_from(Ticket)) == tickets


def test_catalogue_edits_are_seen_by_the_next_contact(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    road = _type(session, "yol_bozuklugu")
    before = open_ticket(session, agent, now, request(tc_number=valid_tc(5120))).ticket.due_at
    road.sla_hours += 8
    session.flush()
    after = open_ticket(session, agent, now, request(tc_number=valid_tc(5121))).ticket.due_at
    assert get_calendar(session).working_time_between(before, after) == timedelta(hours=8)

    road.is_active = False
    session.flush()
    with pytest.raises(UnknownEntity):
        open_ticket(session, agent, now, request(tc_number=valid_tc(5122)))

    hood = session.scalars(select(Neighbourhood).order_by(Neighbourhood.id)).first()
    assert hood is not None
    old_name, hood.name = hood.name, "Yeni Adlı Mahalle"
    session.flush()
    with pytest.raises(UnknownEntity) as unknown:
        open_ticket(session, agent, now, request(tc_number=valid_tc(5123), neighbourhood=old_name))
    assert unknown.value.details["field"] == "neighbourhood"
    renamed = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(5124), ticket_type_code="gurultu", neighbourhood=hood.name),
    )
    assert renamed.ticket.neighbourhood_id == hood.id


def test_an_institution_renamed_is_named_in_the_next_referral(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    gas = _type(session, "dogalgaz")
    institution = session.get(ExternalInstitution, gas.external_institution_id)
    assert institution is not None
    institution.name_tr, institution.phone = "Yeni Doğalgaz Dağıtım A.Ş.", "444 0 999"
    session.flush()
    result = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(5130), phone=mobile(5130), ticket_type_code="dogalgaz"),
    )
    assert result.acknowledgement is not None
    assert result.acknowledgement.payload["institution"] == "Yeni Doğalgaz Dağıtım A.Ş."
    assert result.acknowledgement.payload["institution_phone"] == "444 0 999"
    notes = session.scalars(
        select(TicketEvent.note).where(
            TicketEvent.ticket_id == result.ticket.id,
            TicketEvent.action == TimelineAction.REFERRED,
        )
    ).all()
    assert notes == ["Yeni Doğalgaz Dağıtım A.Ş. sorumluluğunda; vatandaşa bildirildi."]


def test_a_holiday_added_is_skipped_by_the_next_due_date(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    # now: Tuesday 24 Nov 2026, 10:00 in Istanbul; genel has 8 working hours.
    genel = {"ticket_type_code": "genel", "address_text": None}
    before = open_ticket(session, agent, now, request(tc_number=valid_tc(5140), **genel))
    get_calendar(session)  # this session has read the holidays before the edit
    session.add(
        Holiday(day=date(2026, 11, 25), name_tr="İdari izin", name_en="Bridge day", half_day=False)
    )
    session.flush()
    after = open_ticket(session, agent, now, request(tc_number=valid_tc(5141), **genel))
    assert after.ticket.due_at - before.ticket.due_at == timedelta(days=1)


# Receipt moments around the holidays of 2026 (Istanbul time), back-dated as a petition may be.
RECEIVED = [
    datetime(2026, 1, 1, 9, 0),
    datetime(2026, 3, 19, 16, 45),  # Ramazan Bayramı arife
    datetime(2026, 4, 22, 17, 15),
    datetime(2026, 5, 26, 11, 0),  # Kurban Bayramı arife
    datetime(2026, 10, 28, 12, 0),  # half day
    datetime(2026, 11, 24, 9, 59),
]


def test_due_dates_equal_those_of_the_whole_calendar(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    """Intake reads only the holidays near the receipt; every type's deadlines must still be
    what the whole calendar gives."""
    calendar = get_calendar(session)
    types = session.scalars(select(TicketType).where(TicketType.is_active)).all()
    seed = 5200
    checked = 0
    for local in RECEIVED:
        received = local.replace(tzinfo=UTC) - timedelta(hours=3)  # Istanbul is UTC+3
        for ticket_type in types:
            seed += 1
            ticket = open_ticket(
                session,
                agent,
                now,
                request(
                    tc_number=valid_tc(seed),
                    ticket_type_code=ticket_type.code,
                    received_at=received,
                    address_text=None,
                ),
            ).ticket
            expected = deadlines_for(calendar, ticket_type, received)
            assert (ticket.due_at, ticket.legal_due_at) == (
                expected.due_at,
                expected.legal_due_at,
            ), (ticket_type.code, local)
            checked += 1
    assert checked == len(RECEIVED) * len(types) > 0


def test_an_sla_longer_than_the_holiday_window_uses_the_whole_calendar(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    road = _type(session, "yol_bozuklugu")
    road.sla_hours = 8 * 600  # 600 working days: far beyond the window read with the type
    session.flush()
    ticket = open_ticket(session, agent, now, request(tc_number=valid_tc(5300))).ticket
    assert ticket.due_at == deadlines_for(get_calendar(session), road, now).due_at
    assert ticket.due_at > now + timedelta(days=800)


def test_an_unreadable_holiday_window_is_refused() -> None:
    assert window_calendar(None) is not None  # no holiday in the window
    assert window_calendar("2026-05-26:h,2026-05-27:f") is not None
    assert window_calendar("26.05.2026:h") is None  # another date style: whole calendar
