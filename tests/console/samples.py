"""Sample data for the console tests, written through the real domain services."""

from __future__ import annotations

import itertools
import struct
import wave
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CallRecord, Channel, Citizen, StaffUser, Ticket
from services.actors import system_actor
from services.call_records import (
    AgentAnswered,
    CallStarted,
    QueueJoined,
    RecordingStarted,
    TicketDue,
    apply_fact,
    open_call_tickets,
)
from services.intake import open_ticket
from services.intake_request import IntakeRequest

AYSE_TC = "41339237316"  # demo citizen Ayşe Yılmaz, phones 0505 361 88 77 and a landline
AYSE_MOBILE = "0505 361 88 77"
_calls = itertools.count(1)


def ayse(db: Session) -> Citizen:
    citizen = db.scalar(select(Citizen).where(Citizen.tc_number == AYSE_TC))
    assert citizen is not None
    return citizen


def sample_ticket(
    db: Session,
    now: datetime,
    *,
    channel: Channel = Channel.MAYORS_OFFICE,
    type_code: str = "yol_bozuklugu",
    citizen_id: int | None = None,
) -> Ticket:
    """A ticket every ticket-reading role can see: through the mayor's office, routed to
    Fen İşleri (the department of the first demo liaison)."""
    result = open_ticket(
        db,
        system_actor(db, "tests", now),
        now,
        IntakeRequest(
            channel=channel,
            ticket_type_code=type_code,
            description="Sokakta çukur var.",
            citizen_id=citizen_id or ayse(db).id,
            address_text="Menekşe Sokak No: 23",
        ),
    )
    db.flush()
    return result.ticket


def write_wav(path: Path, seconds: float = 0.2) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<h", 0) * int(8000 * seconds))


def answered_call(
    db: Session,
    now: datetime,
    agent: StaffUser,
    *,
    caller: str = AYSE_MOBILE,
    recordings: Path | None = None,
    ended: bool = False,
) -> CallRecord:
    """A call answered by ``agent``, as the AMI listener writes it: the record, the
    placeholder ticket opened through intake at answer, and (with ``recordings``) a
    recording file."""
    call_id = f"1795000000.{next(_calls)}{now.microsecond}"
    start = now - timedelta(seconds=40)
    answered = now - timedelta(seconds=20)
    interface = f"PJSIP/{agent.sip_extension}"
    for fact in (
        CallStarted(call_id, start, caller, channel="PJSIP/trunk-00000001", dialled="4448007"),
        QueueJoined(call_id, start + timedelta(seconds=10), "cagri-merkezi"),
        AgentAnswered(call_id, answered, interface, hold_seconds=10, queue="cagri-merkezi"),
        RecordingStarted(call_id, answered, f"{call_id}.wav"),
    ):
        apply_fact(db, now, fact)
    db.flush()
    open_call_tickets(db, now, [TicketDue(call_id, True, interface, answered)])
    record = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    assert record is not None and record.ticket_id is not None
    if ended:
        record.ended_at = now - timedelta(seconds=1)
    if recordings is not None:
        write_wav(recordings / f"{call_id}.wav")
    db.flush()
    return record
