"""Bad input: every rejection is a typed error in Turkish and English and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import models
from models import Channel, StaffUser
from services.errors import (
    DomainError,
    IdentityConflict,
    InvalidEmail,
    InvalidField,
    InvalidPhoneNumber,
    InvalidTcNumber,
    MissingField,
    UnknownEntity,
)
from services.intake import open_ticket
from tests.factories import mobile, request, valid_tc

TABLES = [t for t in models.Base.metadata.sorted_tables]


def _row_counts(session: Session) -> dict[str, int]:
    session.flush()
    return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


CASES: list[tuple[str, dict[str, Any], type[DomainError]]] = [
    ("tc wrong checksum", {"tc_number": "12345678901"}, InvalidTcNumber),
    ("tc too short", {"tc_number": "1234567890"}, InvalidTcNumber),
    ("tc letters", {"tc_number": "1234567890A"}, InvalidTcNumber),
    ("tc starts with 0", {"tc_number": "01234567890"}, InvalidTcNumber),
    ("phone letters", {"phone": "beş üç iki"}, InvalidPhoneNumber),
    ("phone too short", {"phone": "0532 12"}, InvalidPhoneNumber),
    ("phone withheld", {"phone": "anonymous", "tc_number": None}, InvalidPhoneNumber),
    ("phone replacement char", {"phone": "0532\ufffd1234567"}, InvalidPhoneNumber),
    ("phone control char", {"phone": "0532\x001234567"}, InvalidPhoneNumber),
    ("email", {"email": "ayse@"}, InvalidEmail),
    ("unknown type", {"ticket_type_code": "ufo_sighting"}, UnknownEntity),
    ("unknown neighbourhood", {"neighbourhood": "Atlantis"}, UnknownEntity),
    ("half a location", {"latitude": 41.0}, InvalidField),
    ("location out of range", {"latitude": 141.0, "longitude": 29.0}, InvalidField),
    ("description too long", {"description": "x" * 10_001}, InvalidField),
    ("future received_at", {"received_at_offset": timedelta(days=1)}, InvalidField),
    ("resolved without resolution", {"resolved_at_first_contact": True}, MissingField),
    ("desk without surname", {"last_name": None}, MissingField),
    ("desk without any contact", {"social_handle": None}, MissingField),
    ("unknown citizen id", {"citizen_id": 999_999_999}, UnknownEntity),
]


@pytest.mark.parametrize(("fields", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejection_is_typed_bilingual_and_writes_nothing(
    session: Session,
    agent: StaffUser,
    now: datetime,
    fields: dict[str, Any],
    error: type[DomainError],
) -> None:
    fields = dict(fields)
    if offset := fields.pop("received_at_offset", None):
        fields["received_at"] = now + offset
    base: dict[str, Any] = {"tc_number": None, "phone": None, "email": None}
    base.update(fields)
    before = _row_counts(session)
    with pytest.raises(error) as info:
        open_ticket(session, agent, now, request(Channel.DESK, **base))
    exc = info.value
    assert exc.code != DomainError.code
    assert exc.message("tr") and exc.message("en") and exc.message("tr") != exc.message("en")
    assert _row_counts(session) == before


CHANNEL_REQUIREMENTS: list[tuple[Channel, dict[str, Any], str]] = [
    (Channel.SMS, {"tc_number": None, "phone": mobile(1)}, "tc_number"),
    (Channel.SMS, {"tc_number": valid_tc(1), "phone": None}, "phone"),
    (Channel.EMAIL, {"email": None, "tc_number": valid_tc(1)}, "email"),
    (Channel.SOCIAL_MEDIA, {"social_handle": None, "tc_number": valid_tc(1)}, "social_handle"),
    (Channel.FIELD_TEAM, {"address_text": None, "tc_number": valid_tc(1)}, "place"),
    (Channel.NEIGHBOURHOOD_MEETING, {"tc_number": valid_tc(1)}, "neighbourhood"),
    (Channel.WEB, {"description": "  ", "tc_number": valid_tc(1)}, "description"),
    (Channel.MAYORS_OFFICE, {"social_handle": None}, "contact"),
]


@pytest.mark.parametrize(
    ("channel", "fields", "missing"),
    CHANNEL_REQUIREMENTS,
    ids=[f"{c.value}-{m}" for c, _, m in CHANNEL_REQUIREMENTS],
)
def test_each_channel_names_its_missing_field(
    session: Session,
    agent: StaffUser,
    now: datetime,
    channel: Channel,
    fields: dict[str, Any],
    missing: str,
) -> None:
    before = _row_counts(session)
    with pytest.raises(MissingField) as info:
        open_ticket(session, agent, now, request(channel, **fields))
    assert info.value.details["field"] == missing
    assert _row_counts(session) == before


def test_identity_conflict_writes_nothing(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    first = open_ticket(session, agent, now, request(tc_number=valid_tc(40)))
    before = _row_counts(session)
    attempt: Callable[[], object] = lambda: open_ticket(  # noqa: E731
        session,
        agent,
        now,
        request(citizen_id=first.ticket.citizen_id, tc_number=valid_tc(41), phone=mobile(41)),
    )
    with pytest.raises(IdentityConflict):
        attempt()
    assert _row_counts(session) == before
