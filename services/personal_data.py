"""Access to a citizen's personal data, always audited (KVKK, Law 6698).

Each function checks the actor's role (:mod:`services.permissions`), does the read, and
appends an audit event with the reason in the caller's transaction (the caller commits; if
it does not, neither the access nor its record happened). A missing or too short reason is
refused before anything is read.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditAction, CallRecord, Citizen, StaffUser
from services import audit
from services.citizen_history import CitizenHistory, citizen_history
from services.errors import UnknownEntity
from services.permissions import RECORDINGS, require_personal_data


def open_citizen(
    session: Session,
    actor: StaffUser,
    now: datetime,
    citizen_id: int,
    reason: str,
    *,
    ip: str | None = None,
    call_id: str | None = None,
) -> CitizenHistory:
    """The citizen's history (:func:`services.citizen_history.citizen_history`), with the
    opening recorded as ``citizen_opened`` (``reason``: why, e.g. the call or the search)."""
    require_personal_data(actor)
    audit.clean_reason(reason)
    history = citizen_history(session, now, citizen_id)
    audit.record(
        session,
        actor,
        now,
        AuditAction.CITIZEN_OPENED,
        citizen_id=citizen_id,
        call_id=call_id,
        reason=reason,
        ip=ip,
    )
    return history


def reveal_tc(
    session: Session,
    actor: StaffUser,
    now: datetime,
    citizen_id: int,
    reason: str,
    *,
    ip: str | None = None,
) -> str:
    """The citizen's full TC number, recorded as ``tc_revealed`` with ``reason``.
    :class:`UnknownEntity` when there is no such citizen or no TC number is known."""
    require_personal_data(actor)
    audit.clean_reason(reason)
    tc_number = session.scalar(select(Citizen.tc_number).where(Citizen.id == citizen_id))
    if not tc_number:
        raise UnknownEntity(
            "Bu vatandaşın kayıtlı TC kimlik numarası yok.",
            "No TC identity number is known for this citizen.",
            id=citizen_id,
        )
    audit.record(
        session, actor, now, AuditAction.TC_REVEALED, citizen_id=citizen_id, reason=reason, ip=ip
    )
    return tc_number


def release_recording(
    session: Session,
    actor: StaffUser,
    now: datetime,
    call_id: str,
    reason: str,
    *,
    ip: str | None = None,
) -> str:
    """The recording file of call ``call_id`` (relative to the PBX's recordings folder),
    released for playback and recorded as ``recording_played`` with ``reason``.

    :class:`UnknownEntity` when there is no such call or it has no (usable) recording: a
    stored path that is absolute or climbs out of the folder is never returned.
    """
    require_personal_data(actor, RECORDINGS)
    audit.clean_reason(reason)
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    path = PurePosixPath(record.recording_path) if record and record.recording_path else None
    if record is None or path is None or path.is_absolute() or ".." in path.parts:
        raise UnknownEntity(
            "Bu görüşmenin ses kaydı yok.", "There is no recording of this call.", call_id=call_id
        )
    audit.record(
        session,
        actor,
        now,
        AuditAction.RECORDING_PLAYED,
        citizen_id=record.citizen_id,
        ticket_id=record.ticket_id,
        call_id=call_id,
        reason=reason,
        ip=ip,
    )
    return str(path)
