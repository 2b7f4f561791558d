"""Caller lookup (FastAGI caller_lookup's service) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models import Channel, Citizen, Language, StaffUser, TicketStatus
from services.caller_lookup import DISPLAY_NAME_MAX, lookup_caller, priority_for
from services.intake import open_ticket
from tests.factories import add_citizen, mobile, mobile_e164, request, valid_tc

AYSE = "+905053618877"


def test_known_caller_in_any_written_form(session: Session, now: datetime) -> None:
    ayse = session.scalar(select(Citizen).where(Citizen.tc_number == "41339237316"))
    assert ayse is not None
    for raw in ("0505 361 88 77", "+905053618877", "905053618877", "(505) 361 8877"):
        info = lookup_caller(session, now, raw)
        assert info.e164 == AYSE and info.citizen_id == ayse.id and not info.ambiguous
        assert info.display_name == "Ayşe Yılmaz" and info.language is Language.TR
        assert info.priority == 0


def test_open_tickets_count_only_open_ones(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    tc = valid_tc(7001)
    first = open_ticket(
        session, agent, now, request(Channel.PHONE, phone=mobile(7001), tc_number=tc)
    )
    open_ticket(
        session,
        agent,
        now,
        request(Channel.PHONE, phone=mobile(7001), tc_number=tc, ticket_type_code="genel"),
    )
    assert lookup_caller(session, now, mobile(7001)).open_tickets == 2
    first.ticket.status = TicketStatus.RESOLVED
    session.flush()
    info = lookup_caller(session, now, mobile_e164(7001))
    assert info.open_tickets == 1 and info.citizen_id == first.ticket.citizen_id


@pytest.mark.parametrize(
    ("groups", "priority"),
    [
        ([], 0),
        (["youth"], 0),
        (["lives_alone"], 5),
        (["patient", "home_maker"], 5),
        (["elderly"], 10),
        (["lives_alone", "disabled"], 10),
    ],
)
def test_priority_for_special_groups(
    session: Session, now: datetime, groups: list[str], priority: int
) -> None:
    add_citizen(session, now, mobile_e164(7100), first_name="Nuri", special_groups=groups)
    assert lookup_caller(session, now, mobile(7100)).priority == priority


def test_priority_ignores_malformed_groups() -> None:
    assert priority_for(None) == 0 and priority_for("elderly") == 0
    assert priority_for([1, None, "elderly"]) == 10


def test_english_speaker_and_long_or_missing_names(session: Session, now: datetime) -> None:
    john = lookup_caller(session, now, "0533 547 53 42")
    assert john.language is Language.EN and john.display_name == "John Smith"
    add_citizen(
        session,
        now,
        mobile_e164(7200),
        first_name="Ayşegül Nur Şebnem Gülşah Çiğdem",
        last_name="Büyükçekmeceli Karamürsel",
    )
    long = lookup_caller(session, now, mobile(7200))
    assert long.display_name is not None and len(long.display_name) <= DISPLAY_NAME_MAX
    assert long.display_name.startswith("Ayşegül Nur")
    add_citizen(session, now, mobile_e164(7201))  # known by phone only
    nameless = lookup_caller(session, now, mobile(7201))
    assert nameless.citizen_id is not None and nameless.display_name is None


def test_shared_phone_identifies_nobody(session: Session, now: datetime) -> None:
    info = lookup_caller(session, now, "0216 438 62 93")  # Ayşe's and Mehmet's landline
    assert info.ambiguous and info.citizen_id is None and info.e164 == "+902164386293"
    assert info.language is Language.TR and info.priority == 0 and info.display_name is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "anonymous",
        "unknown",
        "Restricted",
        "12",
        "0532\udcff\udcfe1234567",
        "abc",
        "9" * 80,
    ],
)
def test_withheld_or_unusable_caller_ids_never_raise(
    session: Session, now: datetime, raw: str | None
) -> None:
    info = lookup_caller(session, now, raw)
    assert info.e164 is None and info.citizen_id is None and not info.ambiguous
    assert info.language is Language.TR


def test_unknown_number(session: Session, now: datetime) -> None:
    info = lookup_caller(session, now, mobile(7300), default_language=Language.EN)
    assert info.e164 == mobile_e164(7300) and info.citizen_id is None
    assert info.language is Language.EN and not info.known


def test_one_round_trip_and_nothing_written(session: Session, now: datetime) -> None:
    statements: list[str] = []
    bind = session.connection()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    try:
        lookup_caller(session, now, "0505 361 88 77")
        lookup_caller(session, now, "0216 438 62 93")
        lookup_caller(session, now, "anonymous")
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(statements) == 2  # one per usable number, none for a withheld one
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
    assert not session.new and not session.dirty
