"""Notes that travel with a call (R1.11, R4.2): the switchboard operator types what the
caller wants, transfers the call, and whoever answers it next reads the note on the call's
page (the agent's screen pop fetches ``/agent/calls/<call_id>``).

The note is stored against the call id (:class:`~models.CallNote`), the one id every leg of
a call shares (``__CALL_ID``), so it follows the call through any number of transfers and
stays on the call record afterwards. Notes are appended, never changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CallNote, CallRecord, Role, StaffUser
from services.errors import InvalidField, MissingField, NotPermitted, UnknownEntity

MAX_NOTE = 500
# Who may write a note on a call: the people who pass calls on, and their supervisors.
NOTE_AUTHORS = frozenset({Role.SWITCHBOARD_OPERATOR, Role.AGENT, Role.UNIT_CHIEF, Role.SUPERVISOR})


@dataclass(frozen=True)
class CallNoteLine:
    """A note as screens show it."""

    at: datetime
    author: str
    author_code: str
    text: str
    transfer_target: str | None


def clean_note(text: str) -> str:
    """``text`` without surrounding blanks (possibly empty); :class:`InvalidField` when it
    is longer than :data:`MAX_NOTE` characters. For a form that checks a note before
    acting (the switchboard checks it before the transfer, stores it after)."""
    clean = text.strip()
    if len(clean) > MAX_NOTE:
        raise InvalidField(
            f"Not en çok {MAX_NOTE} karakter olabilir.",
            f"A note can be at most {MAX_NOTE} characters long.",
            field="note",
        )
    return clean


def add_call_note(
    session: Session,
    actor: StaffUser,
    now: datetime,
    call_id: str,
    text: str,
    *,
    transfer_target: str | None = None,
) -> CallNote:
    """Append ``text`` to the notes of call ``call_id``.

    Guarantees: the call exists (:class:`UnknownEntity`), the actor is active and may write
    call notes (:class:`NotPermitted`), the text is not empty and at most
    :data:`MAX_NOTE` characters (surrounding blanks removed); the note is flushed in the
    caller's transaction and never changed afterwards. Never commits.
    """
    if not actor.is_active or actor.role not in NOTE_AUTHORS:
        raise NotPermitted(
            "Görüşmeye not yazma yetkiniz yok.",
            "You are not permitted to write notes on calls.",
            role=actor.role.value,
        )
    clean = clean_note(text)
    if not clean:
        raise MissingField("Not boş olamaz.", "A note cannot be empty.", field="note")
    exists = session.scalar(select(CallRecord.id).where(CallRecord.call_id == call_id))
    if exists is None:
        raise UnknownEntity("Görüşme bulunamadı.", "No such call.", call_id=call_id)
    note = CallNote(
        call_id=call_id,
        at=now,
        author_id=actor.id,
        text=clean,
        transfer_target=transfer_target,
    )
    session.add(note)
    session.flush()
    return note


def notes_for_calls(session: Session, call_ids: Iterable[str]) -> dict[str, list[CallNoteLine]]:
    """The notes of each of ``call_ids``, oldest first (calls without notes are absent).
    One query; reads only."""
    wanted = sorted(set(call_ids))
    if not wanted:
        return {}
    found: dict[str, list[CallNoteLine]] = {}
    rows = session.execute(
        select(CallNote, StaffUser.full_name, StaffUser.staff_code)
        .join(StaffUser, StaffUser.id == CallNote.author_id)
        .where(CallNote.call_id.in_(wanted))
        .order_by(CallNote.at, CallNote.id)
    )
    for note, name, code in rows:
        found.setdefault(note.call_id, []).append(
            CallNoteLine(note.at, name, code, note.text, note.transfer_target)
        )
    return found


def notes_for_call(session: Session, call_id: str) -> list[CallNoteLine]:
    """The notes of call ``call_id``, oldest first. Reads only."""
    return notes_for_calls(session, [call_id]).get(call_id, [])
