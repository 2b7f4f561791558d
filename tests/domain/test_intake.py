"""The one intake path: citizen matching, dedup, grouping, routing, SLA, outbox (R1–R3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Citizen,
    CitizenPhone,
    Notification,
    NotificationChannel,
    PossibleCitizenMatch,
    StaffUser,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketStatus,
    TicketType,
    TimelineAction,
)
from services import reference_code
from services.calendar_store import get_calendar
from services.errors import IdentityConflict
from services.intake import open_ticket
from tests.factories import mobile, mobile_e164, request, valid_tc


def _type(session: Session, code: str) -> TicketType:
    found = session.scalar(select(TicketType).where(TicketType.code == code))
    assert found is not None
    return found


def _actions(session: Session, ticket: Ticket) -> list[TimelineAction]:
    return list(
        session.scalars(
            select(TicketEvent.action)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.id)
        )
    )


def test_unknown_caller_gets_citizen_known_by_phone_and_ack_sms(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    result = open_ticket(
        session,
        agent,
        now,
        request(
            Channel.PHONE,
            phone=mobile(1001),
            first_name=None,
            last_name=None,
            ticket_type_code=None,
            description="",
        ),
    )
    ticket = result.ticket
    assert result.created and result.citizen_match == "new"
    citizen = session.get(Citizen, ticket.citizen_id)
    assert citizen is not None and citizen.tc_number is None
    assert [p.e164 for p in citizen.phones] == [mobile_e164(1001)]
    assert citizen.phones[0].raw == mobile(1001)
    assert ticket.ticket_type.code == "genel"  # unclassified until the agent chooses a type
    assert ticket.status is TicketStatus.NEW
    assert ticket.received_by_id == agent.id
    assert ticket.reference_code == reference_code.encode(ticket.id)
    assert reference_code.is_valid(ticket.reference_code)
    assert _actions(session, ticket)[:2] == [TimelineAction.OPENED, TimelineAction.ROUTED]
    ack = result.acknowledgement
    assert ack is not None
    assert (ack.channel, ack.recipient, ack.template) == (
        NotificationChannel.SMS,
        mobile_e164(1001),
        "ticket_opened",
    )
    assert ack.payload["reference_code"] == ticket.reference_code


def test_routing_and_due_date_follow_the_type_on_the_working_calendar(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    result = open_ticket(session, agent, now, request(tc_number=valid_tc(1), phone=mobile(1)))
    road = _type(session, "yol_bozuklugu")
    ticket = result.ticket
    assert ticket.department_id == road.department_id is not None
    assert ticket.kind is road.default_kind
    calendar = get_calendar(session)
    assert calendar.working_time_between(now, ticket.due_at) == timedelta(hours=road.sla_hours)


def test_same_citizen_same_type_attaches_instead_of_second_ticket(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    tc = valid_tc(2)
    first = open_ticket(session, agent, now, request(Channel.DESK, tc_number=tc, phone=mobile(2)))
    later = now + timedelta(hours=3)
    second = open_ticket(
        session,
        agent,
        later,
        request(Channel.WEB, tc_number=tc, email="ayse@example.org", description="Hâlâ duruyor."),
    )
    assert first.created and not second.created
    assert second.ticket.id == first.ticket.id
    channels = [c.channel for c in first.ticket.contacts]
    assert channels == [Channel.DESK, Channel.WEB]
    assert (
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.citizen_id == first.ticket.citizen_id)
        )
        == 1
    )
    assert second.acknowledgement is not None
    assert second.acknowledgement.template == "ticket_contact_added"
    assert TimelineAction.CONTACT_ADDED in _actions(session, first.ticket)


def test_same_citizen_other_type_or_closed_ticket_opens_a_new_one(
    session: Session, agent: StaffUser, supervisor: StaffUser, now: datetime
) -> None:
    from services.ticket_workflow import resolve_ticket

    tc = valid_tc(3)
    first = open_ticket(session, agent, now, request(tc_number=tc, phone=mobile(3)))
    other_type = open_ticket(session, agent, now, request(tc_number=tc, ticket_type_code="gurultu"))
    assert other_type.created and other_type.ticket.id != first.ticket.id
    resolve_ticket(session, supervisor, now, first.ticket, "Çukur kapatıldı.")
    again = open_ticket(session, agent, now, request(tc_number=tc))
    assert again.created and again.ticket.id != first.ticket.id


def test_different_citizens_same_place_are_grouped_not_merged(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    a = open_ticket(
        session, agent, now, request(tc_number=valid_tc(4), address_text="Atatürk Cad. No:5")
    )
    b = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(5), first_name="Mehmet", address_text="ATATÜRK CAD NO 5"),
    )
    assert a.created and b.created and a.ticket.id != b.ticket.id
    assert b.grouped_with == a.ticket.id
    assert a.ticket.group_id is not None and a.ticket.group_id == b.ticket.group_id


def test_nearby_coordinates_group_far_ones_do_not(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    a = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(6), address_text=None, latitude=41.0, longitude=29.05),
    )
    near = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(7), address_text=None, latitude=41.0002, longitude=29.0502),
    )
    far = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(8), address_text=None, latitude=41.01, longitude=29.05),
    )
    assert near.grouped_with == a.ticket.id
    assert far.grouped_with is None and far.ticket.group_id is None


def test_external_type_is_referred_and_citizen_told_who_is_responsible(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    result = open_ticket(
        session,
        agent,
        now,
        request(tc_number=valid_tc(9), phone=mobile(9), ticket_type_code="dogalgaz"),
    )
    ticket = result.ticket
    assert ticket.status is TicketStatus.REFERRED_EXTERNALLY
    assert ticket.department_id is None and ticket.external_institution is not None
    ack = result.acknowledgement
    assert ack is not None and ack.template == "ticket_referred"
    assert ack.payload["institution"] == ticket.external_institution.name_tr
    assert ack.payload["institution_phone"] == ticket.external_institution.phone
    assert TimelineAction.REFERRED in _actions(session, ticket)


def test_resolved_at_first_contact_is_still_recorded(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    result = open_ticket(
        session,
        agent,
        now,
        request(
            Channel.PHONE,
            phone=mobile(10),
            ticket_type_code="borc_sorgulama",
            resolved_at_first_contact=True,
            resolution="Borç bilgisi telefonda verildi.",
        ),
    )
    t = result.ticket
    assert t.status is TicketStatus.RESOLVED and t.resolved_at_first_contact
    assert t.resolved_at == now and t.resolution == "Borç bilgisi telefonda verildi."
    assert t.reference_code is not None


def test_replayed_external_ref_changes_nothing(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    req = request(Channel.SMS, tc_number=valid_tc(11), phone=mobile(11), external_ref="smsc-77")
    first = open_ticket(session, agent, now, req)
    session.flush()
    counts = [
        session.scalar(select(func.count()).select_from(m))
        for m in (Ticket, TicketContact, Notification, TicketEvent, Citizen)
    ]
    again = open_ticket(session, agent, now + timedelta(minutes=1), req)
    session.flush()
    assert again.replayed and not again.created and again.ticket.id == first.ticket.id
    assert counts == [
        session.scalar(select(func.count()).select_from(m))
        for m in (Ticket, TicketContact, Notification, TicketEvent, Citizen)
    ]


def test_known_tc_is_never_merged_with_another_tc(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    shared_phone = mobile(12)
    a = open_ticket(session, agent, now, request(tc_number=valid_tc(12), phone=shared_phone))
    b = open_ticket(
        session, agent, now, request(tc_number=valid_tc(13), phone=shared_phone, first_name="Can")
    )
    assert a.ticket.citizen_id != b.ticket.citizen_id
    assert a.ticket.citizen.tc_number == valid_tc(12)
    assert b.ticket.citizen.tc_number == valid_tc(13)
    assert b.possible_matches == []  # the other holder is identified by TC: a shared phone


def test_phone_only_match_is_recorded_as_possible_match_not_merged(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    phone_only = open_ticket(session, agent, now, request(Channel.PHONE, phone=mobile(14)))
    with_tc = open_ticket(
        session,
        agent,
        now,
        request(Channel.DESK, tc_number=valid_tc(14), phone=mobile(14), ticket_type_code="gurultu"),
    )
    assert with_tc.ticket.citizen_id != phone_only.ticket.citizen_id
    assert with_tc.possible_matches == [phone_only.ticket.citizen_id]
    match = session.scalar(
        select(PossibleCitizenMatch).where(
            PossibleCitizenMatch.candidate_id == phone_only.ticket.citizen_id
        )
    )
    assert match is not None and match.citizen_id == with_tc.ticket.citizen_id
    assert not match.reviewed
    assert session.get(Citizen, phone_only.ticket.citizen_id).tc_number is None


def test_phone_shared_by_several_people_identifies_nobody(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    landline = "0216 555 12 34"
    holders = [
        open_ticket(
            session,
            agent,
            now,
            request(tc_number=valid_tc(seed), phone=landline, ticket_type_code="gurultu"),
        ).ticket.citizen_id
        for seed in (15, 16)
    ]
    result = open_ticket(session, agent, now, request(Channel.PHONE, phone=landline))
    assert result.citizen_match == "ambiguous"
    assert result.ticket.citizen_id is None
    assert result.possible_matches == holders  # staff chooses; nobody is picked or merged
    # Without a mobile or e-mail the citizen cannot be told the code: recorded, not lost.
    assert result.acknowledgement is None
    assert TimelineAction.NOTE in _actions(session, result.ticket)


def test_existing_citizen_gets_new_phone_added(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    tc = valid_tc(17)
    first = open_ticket(session, agent, now, request(tc_number=tc, phone=mobile(17)))
    open_ticket(
        session,
        agent,
        now,
        request(tc_number=tc, phone="0533 999 88 77", ticket_type_code="gurultu"),
    )
    phones = session.scalars(
        select(CitizenPhone.e164)
        .where(CitizenPhone.citizen_id == first.ticket.citizen_id)
        .order_by(CitizenPhone.id)
    ).all()
    assert phones == [mobile_e164(17), "+905339998877"]


def test_sms_refused_falls_back_to_email(session: Session, agent: StaffUser, now: datetime) -> None:
    tc = valid_tc(18)
    first = open_ticket(
        session, agent, now, request(tc_number=tc, phone=mobile(18), email="vatandas@example.org")
    )
    first.ticket.citizen.consent_sms = False
    second = open_ticket(session, agent, now, request(tc_number=tc, ticket_type_code="gurultu"))
    assert second.acknowledgement is not None
    assert second.acknowledgement.channel is NotificationChannel.EMAIL
    assert second.acknowledgement.recipient == "vatandas@example.org"


def test_citizen_id_contradicting_tc_is_refused(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    first = open_ticket(session, agent, now, request(tc_number=valid_tc(19)))
    with pytest.raises(IdentityConflict) as info:
        open_ticket(
            session, agent, now, request(citizen_id=first.ticket.citizen_id, tc_number=valid_tc(20))
        )
    assert info.value.message_tr and info.value.message_en


def test_ticket_language_follows_citizen_preference(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    result = open_ticket(
        session, agent, now, request(tc_number=valid_tc(21), phone=mobile(21), language="en")
    )
    assert result.ticket.language.value == "en"
    assert result.acknowledgement is not None and result.acknowledgement.language.value == "en"


def test_withheld_caller_id_still_opens_a_phone_ticket(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    result = open_ticket(
        session,
        agent,
        now,
        request(
            Channel.PHONE,
            first_name=None,
            last_name=None,
            social_handle=None,
            ticket_type_code=None,
            description="",
        ),
    )
    assert result.created and result.ticket.citizen_id is None
    assert result.citizen_match == "none" and result.acknowledgement is None
    assert result.ticket.reference_code is not None


def test_possible_match_is_recorded_once_per_pair(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    phone_only = open_ticket(session, agent, now, request(Channel.PHONE, phone=mobile(30)))
    for code in ("gurultu", "cevre_temizligi"):
        result = open_ticket(
            session,
            agent,
            now,
            request(tc_number=valid_tc(30), phone=mobile(30), ticket_type_code=code),
        )
        assert result.possible_matches == [phone_only.ticket.citizen_id]
    rows = session.scalar(
        select(func.count())
        .select_from(PossibleCitizenMatch)
        .where(PossibleCitizenMatch.candidate_id == phone_only.ticket.citizen_id)
    )
    assert rows == 1
