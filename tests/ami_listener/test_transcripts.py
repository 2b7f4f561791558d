"""Recorded AMI transcripts replayed through decoder + tracker + services into a real database.

Each transcript under ``transcripts/`` is raw AMI text; a real recording from Asterisk drops
in beside them (add its expectations to ``EXPECTED``). Replaying a stream a second time must
leave every row of every table exactly as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from ami_listener.replay import facts_from_transcript
from models import (
    CallbackReason,
    CallbackTask,
    CallOutcome,
    CallRecord,
    Channel,
    Language,
    StaffUser,
    Ticket,
    TicketContact,
)
from services.call_records import ScreenPop, TicketDue, apply_fact, open_call_tickets

TRANSCRIPTS = Path(__file__).parent / "transcripts"
T0 = datetime(2026, 11, 24, 6, 50, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + seconds, UTC)


def real(hour: int, minute: int, second: int, micro: int) -> datetime:
    """A moment of the recorded real calls (2026-11-28, UTC)."""
    return datetime(2026, 11, 28, hour, minute, second, micro, tzinfo=UTC)


EXPECTED: dict[str, dict[str, dict[str, Any]]] = {
    "answered_queue_call.txt": {
        "1795503000.101": {
            "caller_raw": "05321234567",
            "caller_e164": "+905321234567",
            "dialled_number": "4448007",
            "language": Language.TR,
            "via_switchboard": False,
            "queue": "cagri-merkezi",
            "agent_interface": "PJSIP/1001",
            "agent_extension": "1001",
            "started_at": at(0),
            "entered_at": at(20),
            "answered_at": at(32),
            "ended_at": at(127),
            "wait_seconds": 12,
            "talk_seconds": 95,
            "outcome": CallOutcome.ANSWERED,
            "transfer_chain": [],
            "recording_path": "2026/11/24/1795503000.101.wav",
            "ticket_channel": Channel.PHONE,
        }
    },
    "abandoned_call.txt": {
        "1795503000.201": {
            "caller_raw": "0532 765 43 21",
            "caller_e164": "+905327654321",
            "queue": "cagri-merkezi",
            "agent_interface": None,
            "entered_at": at(15),
            "answered_at": None,
            "ended_at": at(55),
            "wait_seconds": 40,
            "talk_seconds": None,
            "outcome": CallOutcome.ABANDONED,
            "ticket_channel": None,
            "callback": "+905327654321",
        },
        "1795503000.202": {
            "caller_raw": "anonymous",
            "caller_e164": None,
            "outcome": CallOutcome.ABANDONED,
            "wait_seconds": 20,
            "ticket_channel": None,
            "callback": None,
            "note": "no callback: withheld caller ID",
        },
    },
    "blind_transfer_switchboard.txt": {
        "1795503000.301": {
            "caller_raw": "02122223344",
            "caller_e164": "+902122223344",
            "dialled_number": "2125550000",
            "via_switchboard": True,
            "queue": "cagri-merkezi",
            "agent_interface": "PJSIP/1002",
            "agent_extension": "1002",
            "entered_at": at(31),
            "answered_at": at(39),
            "ended_at": at(99),
            "wait_seconds": 8,
            "talk_seconds": 60,
            "outcome": CallOutcome.ANSWERED,
            "transfer_chain": [
                {
                    "kind": "blind",
                    "from": "PJSIP/1101",
                    "to": "4000@ak-transfer",
                    "at": at(30).isoformat(),
                }
            ],
            "ticket_channel": Channel.SWITCHBOARD,
        }
    },
    "attended_transfer.txt": {
        "1795503000.401": {
            "caller_raw": "05554443322",
            "caller_e164": "+905554443322",
            "via_switchboard": True,
            "queue": "cagri-merkezi",
            "agent_interface": "PJSIP/1003",
            "agent_extension": "1003",
            "answered_at": at(26),
            "ended_at": at(160),
            "wait_seconds": 5,
            "talk_seconds": 134,
            "outcome": CallOutcome.ANSWERED,
            "transfer_chain": [
                {
                    "kind": "attended",
                    "from": "PJSIP/1102",
                    "to": "PJSIP/1003",
                    "at": at(40).isoformat(),
                }
            ],
            "ticket_channel": Channel.SWITCHBOARD,
        }
    },
    "english_queue_call.txt": {
        "1795503000.501": {
            "caller_raw": "+905301112233",
            "caller_e164": "+905301112233",
            "language": Language.EN,
            "queue": "cagri-merkezi-en",
            "agent_interface": "PJSIP/1005",
            "agent_extension": "1005",
            "entered_at": at(18),
            "answered_at": at(43),
            "wait_seconds": 25,
            "talk_seconds": 70,
            "outcome": CallOutcome.ANSWERED,
            "ticket_channel": Channel.PHONE,
        }
    },
    # Recorded from Asterisk 22.10 by tests/telephony/test_call_flows.py (listener AMI user,
    # ACIKKAPI_RECORD_TRANSCRIPTS=1): raw streams, nothing stripped.
    "real_answered_call.txt": {
        "1795846401.0": {
            "caller_raw": "05302650201",
            "caller_e164": "+905302650201",
            "dialled_number": "4448007",
            "language": Language.TR,
            "via_switchboard": False,
            "queue": "cagri-merkezi",
            "agent_interface": "PJSIP/1001",
            "agent_extension": "1001",
            "started_at": real(6, 13, 21, 732903),
            "entered_at": real(6, 13, 48, 485688),
            "answered_at": real(6, 13, 48, 799940),
            "ended_at": real(6, 13, 51, 811434),
            "wait_seconds": 0,
            "talk_seconds": 3,
            "outcome": CallOutcome.ANSWERED,
            "transfer_chain": [],
            "recording_path": "1795846401.0.wav",
            "ticket_channel": Channel.PHONE,
        }
    },
    "real_abandoned_call.txt": {
        "1795846529.12": {
            "caller_raw": "05326517720",
            "caller_e164": "+905326517720",
            "dialled_number": "4448007",
            "queue": "cagri-merkezi",
            "agent_interface": None,
            "entered_at": real(6, 15, 56, 124540),
            "answered_at": None,
            "ended_at": real(6, 16, 1, 974214),
            "wait_seconds": 5,
            "talk_seconds": None,
            "outcome": CallOutcome.ABANDONED,
            "recording_path": "1795846529.12.wav",
            "ticket_channel": None,
            "callback": "+905326517720",
        }
    },
    "real_blind_transfer.txt": {
        "1795846462.4": {
            "caller_raw": "05427368036",
            "caller_e164": "+905427368036",
            "dialled_number": "2160000",
            "via_switchboard": True,
            "queue": "cagri-merkezi",
            "agent_interface": "PJSIP/1002",
            "agent_extension": "1002",
            "entered_at": real(6, 14, 44, 966129),
            "answered_at": real(6, 14, 45, 277868),
            "ended_at": real(6, 14, 47, 786255),
            "wait_seconds": 1,
            "talk_seconds": 2,
            "outcome": CallOutcome.ANSWERED,
            "transfer_chain": [
                {
                    "kind": "blind",
                    "from": "PJSIP/1101",
                    "to": "7000@acikkapi-internal",
                    "at": real(6, 14, 44, 959391).isoformat(),
                }
            ],
            "recording_path": "1795846462.4.wav",
            "ticket_channel": Channel.SWITCHBOARD,
        }
    },
}


def replay(session: Session, now: datetime, name: str) -> list[ScreenPop]:
    """Every fact of the transcript, then the tickets of its answered calls (as the ticket
    stage does after the records' commit); the screen pops that produced."""
    dues: list[TicketDue] = []
    for fact in facts_from_transcript(TRANSCRIPTS / name):
        result = apply_fact(session, now, fact)
        if result.ticket_due is not None:
            dues.append(result.ticket_due)
    session.flush()
    pops = open_call_tickets(session, now, dues).screen_pops
    session.flush()
    return pops


def dump(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    session.flush()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in models.Base.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows = session.execute(select(table).order_by(*order)).all()
        out[table.name] = [tuple(row) for row in rows]
    return out


def test_every_transcript_has_expectations() -> None:
    assert sorted(p.name for p in TRANSCRIPTS.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_replay(session: Session, now: datetime, name: str) -> None:
    pops = replay(session, now, name)
    expected_calls = EXPECTED[name]
    records = {r.call_id: r for r in session.scalars(select(CallRecord))}
    assert set(records) == set(expected_calls), "one record per conversation, no consult legs"

    for call_id, expected in expected_calls.items():
        record = records[call_id]
        for key, value in expected.items():
            if key in {"agent_extension", "ticket_channel", "callback", "note"}:
                continue
            assert getattr(record, key) == value, f"{call_id}.{key}"
        if "agent_extension" in expected:
            agent = session.get(StaffUser, record.agent_id)
            assert agent is not None and agent.sip_extension == expected["agent_extension"]
        channel = expected["ticket_channel"]
        if channel is None:
            assert record.ticket_id is None
        else:
            ticket = session.get(Ticket, record.ticket_id)
            assert ticket is not None and ticket.channel == channel
            contact = session.scalar(
                select(TicketContact).where(TicketContact.external_ref == call_id)
            )
            assert contact is not None
            assert contact.channel == channel
            assert contact.received_by_id == record.agent_id
            assert contact.phone_e164 == record.caller_e164
            assert contact.phone_raw is not None
            assert record.citizen_id is not None and record.citizen_id == ticket.citizen_id
            assert [p.call_id for p in pops].count(call_id) == 1
            pop = next(p for p in pops if p.call_id == call_id)
            assert pop.agent_id == record.agent_id and pop.ticket_id == ticket.id
            assert pop.reference_code == ticket.reference_code
        if "callback" in expected:
            tasks = list(
                session.scalars(select(CallbackTask).where(CallbackTask.call_id == call_id))
            )
            if expected["callback"] is None:
                assert tasks == []
            else:
                assert [(t.reason, t.phone_e164) for t in tasks] == [
                    (CallbackReason.ABANDONED, expected["callback"])
                ]
        if "note" in expected:
            assert record.note is not None and expected["note"] in record.note

    first = dump(session)
    assert replay(session, now, name) == [], "a replay pops no screens"
    assert dump(session) == first, "replaying the same stream changed rows"


def test_all_transcripts_together_twice(session: Session, now: datetime) -> None:
    for name in sorted(EXPECTED):
        replay(session, now, name)
    first = dump(session)
    for name in sorted(EXPECTED):
        replay(session, now, name)
    assert dump(session) == first
    assert session.query(CallRecord).count() == sum(len(v) for v in EXPECTED.values())
