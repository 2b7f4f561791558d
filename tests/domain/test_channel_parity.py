"""Channel parity (R1): the same request through every channel gives the same outcome.

The channel is a parameter of the one intake path, so routing, SLA, kind, citizen
matching and dedup must not depend on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from models import Channel, StaffUser
from services.intake import open_ticket
from tests.factories import mobile, request, valid_tc

EVERY_FIELD: dict[str, Any] = {
    "tc_number": valid_tc(500),
    "phone": mobile(500),
    "email": "parite@example.org",
    "social_handle": "@parite",
    "neighbourhood": "Yıldıztepe",
    "address_text": "Cumhuriyet Sokak No 3",
}


def _outcome(session: Session, actor: StaffUser, now: datetime, channel: Channel) -> dict[str, Any]:
    result = open_ticket(session, actor, now, request(channel, **EVERY_FIELD))
    t = result.ticket
    return {
        "created": result.created,
        "type": t.ticket_type_id,
        "kind": t.kind,
        "status": t.status,
        "department": t.department_id,
        "external": t.external_institution_id,
        "due_at": t.due_at,
        "legal_due_at": t.legal_due_at,
        "citizen_tc": t.citizen.tc_number if t.citizen else None,
        "neighbourhood": t.neighbourhood_id,
        "ack_template": result.acknowledgement.template if result.acknowledgement else None,
        "ack_recipient": result.acknowledgement.recipient if result.acknowledgement else None,
    }


def test_every_channel_opens_the_same_ticket(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    outcomes = {}
    for channel in Channel:
        savepoint = session.begin_nested()
        outcomes[channel] = _outcome(session, agent, now, channel)
        savepoint.rollback()
    reference = outcomes[Channel.DESK]
    assert reference["created"] and reference["department"] is not None
    assert reference["ack_template"] == "ticket_opened"
    for channel, outcome in outcomes.items():
        assert outcome == reference, channel


def test_every_channel_attaches_to_the_open_duplicate(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    first = open_ticket(session, agent, now, request(Channel.DESK, **EVERY_FIELD))
    later = now + timedelta(hours=1)
    for channel in Channel:
        savepoint = session.begin_nested()
        result = open_ticket(session, agent, later, request(channel, **EVERY_FIELD))
        assert not result.created, channel
        assert result.ticket.id == first.ticket.id, channel
        assert result.contact.channel is channel
        assert result.acknowledgement is not None
        assert result.acknowledgement.template == "ticket_contact_added"
        savepoint.rollback()


def test_every_channel_refers_external_types_the_same_way(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    seen = set()
    for channel in Channel:
        savepoint = session.begin_nested()
        result = open_ticket(
            session, agent, now, request(channel, **EVERY_FIELD, ticket_type_code="su_kacagi")
        )
        t = result.ticket
        seen.add((t.status, t.external_institution_id, t.department_id, t.due_at))
        savepoint.rollback()
    assert len(seen) == 1
