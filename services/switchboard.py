"""The switchboard operator's view of the PBX (R1.11, R4.2): the live calls as the AMI
listener records them, and the directory of internal extensions a call may be sent to.

Reads only. The transfer itself is a PBX action of the console (``agent_console.ami``);
the operator's note goes with the call through :mod:`services.call_notes`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CallRecord, Department, StaffUser
from services.call_notes import notes_for_calls
from services.citizen_history import display_phone
from services.errors import InvalidField

# An unfinished record older than this is not shown as live (a missed hang-up must not
# stay on the operators' screen all day).
LIVE_WINDOW = timedelta(hours=2)
MAX_LIVE = 200


class CallStage(enum.StrEnum):
    """Where a live call is now."""

    SWITCHBOARD = "switchboard"  # came in on the switchboard number, with an operator
    IVR = "ivr"  # on 444 80 07, in the menu (language, notice) before the queue
    QUEUE = "queue"  # waiting in the call-centre queue
    AGENT = "agent"  # answered by a call-centre agent


@dataclass(frozen=True)
class LiveCall:
    call_id: str
    caller: str | None  # as people write it; None when withheld
    caller_name: str | None
    started_at: datetime
    stage: CallStage
    via_switchboard: bool
    queue: str | None
    agent: str | None  # the answering agent's name
    transfers: int
    notes: int
    waiting: timedelta  # since the call started


def _stage(record: CallRecord) -> CallStage:
    if record.answered_at is not None:
        return CallStage.AGENT
    if record.entered_at is not None:
        return CallStage.QUEUE
    if record.via_switchboard:
        return CallStage.SWITCHBOARD
    return CallStage.IVR


def live_calls(session: Session, now: datetime) -> list[LiveCall]:
    """Calls that have not ended, started within :data:`LIVE_WINDOW`, oldest first (at
    most :data:`MAX_LIVE`), with their stage and the number of notes and transfers.

    Guarantees: no personal data beyond what the PBX shows on the operator's phone (the
    caller's number and network caller name); reads only.
    """
    rows = list(
        session.execute(
            select(CallRecord, StaffUser.full_name)
            .outerjoin(StaffUser, StaffUser.id == CallRecord.agent_id)
            .where(CallRecord.ended_at.is_(None), CallRecord.started_at >= now - LIVE_WINDOW)
            .order_by(CallRecord.started_at, CallRecord.id)
            .limit(MAX_LIVE)
        )
    )
    notes = notes_for_calls(session, [record.call_id for record, _name in rows])
    calls = []
    for record, agent_name in rows:
        caller = display_phone(record.caller_e164) if record.caller_e164 else record.caller_raw
        calls.append(
            LiveCall(
                call_id=record.call_id,
                caller=caller or None,
                caller_name=record.caller_name,
                started_at=record.started_at,
                stage=_stage(record),
                via_switchboard=record.via_switchboard,
                queue=record.queue,
                agent=agent_name,
                transfers=len(record.transfer_chain or []),
                notes=len(notes.get(record.call_id, [])),
                waiting=max(now - record.started_at, timedelta(0)),
            )
        )
    return calls


@dataclass(frozen=True)
class DirectoryEntry:
    """An internal extension a call may be transferred to."""

    extension: str
    name_tr: str
    name_en: str
    call_centre: bool = False

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_tr


def unit_directory(session: Session) -> list[DirectoryEntry]:
    """Every active unit with a phone extension, by extension. Reads only."""
    return [
        DirectoryEntry(str(dept.phone_extension), dept.name_tr, dept.name_en)
        for dept in session.scalars(
            select(Department)
            .where(Department.is_active, Department.phone_extension.is_not(None))
            .order_by(Department.phone_extension)
        )
    ]


def directory(session: Session, call_centre: str) -> list[DirectoryEntry]:
    """The call centre (its queue's internal extension ``call_centre``) first, then
    :func:`unit_directory`. Reads only."""
    entries = [
        DirectoryEntry(call_centre, "Çağrı merkezi (444 80 07)", "Call centre", call_centre=True)
    ]
    return entries + unit_directory(session)


def directory_entry(session: Session, call_centre: str, extension: str) -> DirectoryEntry:
    """The directory entry of ``extension``; :class:`InvalidField` for anything else, so a
    call is never sent to a number outside the directory (outbound, dialplan internals)."""
    for entry in directory(session, call_centre):
        if entry.extension == extension:
            return entry
    raise InvalidField(
        "Aktarım hedefi rehberde yok.",
        "The transfer target is not in the directory.",
        field="target",
    )
