"""The access audit log (KVKK): record and list who saw which personal data, when and why.

:func:`record` appends one :class:`~models.AuditEvent` in the caller's transaction (never
commits). Access to personal data (:data:`PERSONAL_DATA`) always needs a reason a person can
read: a TC reveal or a recording playback asks the staff member for it; opening a citizen
record records the context (screen pop of call X, search for Y). :func:`list_events` is the
supervisor's view, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditAction, AuditEvent, StaffUser
from services.errors import MissingField

PERSONAL_DATA = frozenset(
    {AuditAction.CITIZEN_OPENED, AuditAction.TC_REVEALED, AuditAction.RECORDING_PLAYED}
)
REASON_MIN = 3  # characters: "x" is not a reason
REASON_MAX = 300


def clean_reason(reason: str | None) -> str:
    """The reason as stored (whitespace collapsed, at most :data:`REASON_MAX` characters);
    :class:`MissingField` when it is shorter than :data:`REASON_MIN` characters."""
    text = " ".join((reason or "").split())
    if len(text) < REASON_MIN:
        raise MissingField(
            "Bu kişisel veriye erişmek için bir gerekçe yazın.",
            "Give a reason for accessing this personal data.",
            field="reason",
        )
    return text[:REASON_MAX]


def record(
    session: Session,
    actor: StaffUser | None,
    now: datetime,
    action: AuditAction,
    *,
    username: str | None = None,
    citizen_id: int | None = None,
    ticket_id: int | None = None,
    call_id: str | None = None,
    reason: str | None = None,
    ip: str | None = None,
    **data: Any,
) -> AuditEvent:
    """Append one audit event (flushed, not committed) and return it.

    Guarantees: personal-data actions carry a reason (:func:`clean_reason` raises before
    anything is written) and the acting staff member; ``username`` defaults to the actor's
    (it is what was typed for a failed sign-in with an unknown name); the row can never be
    changed or deleted afterwards (the model refuses it).
    """
    if action in PERSONAL_DATA:
        if actor is None:
            raise ValueError(f"{action.value} needs an acting staff member")
        text = clean_reason(reason)
    else:
        text = " ".join((reason or "").split())[:REASON_MAX]
    event = AuditEvent(
        at=now,
        actor_id=actor.id if actor is not None else None,
        username=(username or (actor.username if actor is not None else ""))[:80],
        action=action,
        citizen_id=citizen_id,
        ticket_id=ticket_id,
        call_id=call_id[:64] if call_id else None,
        reason=text,
        ip=ip[:45] if ip else None,
        data=data,
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class AuditFilter:
    """What the supervisor asks for; every field optional."""

    action: AuditAction | None = None
    actor_id: int | None = None
    citizen_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # paging: events older than this one


def list_events(
    session: Session, wanted: AuditFilter | None = None, limit: int = 100
) -> Sequence[AuditEvent]:
    """Audit events matching ``wanted``, newest first (rows are appended in time order, so
    the id orders them and pages by ``before_id``), at most ``limit``. Reads only."""
    wanted = wanted or AuditFilter()
    query = select(AuditEvent)
    if wanted.action is not None:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.actor_id is not None:
        query = query.where(AuditEvent.actor_id == wanted.actor_id)
    if wanted.citizen_id is not None:
        query = query.where(AuditEvent.citizen_id == wanted.citizen_id)
    if wanted.since is not None:
        query = query.where(AuditEvent.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEvent.at < wanted.until)
    if wanted.before_id is not None:
        query = query.where(AuditEvent.id < wanted.before_id)
    query = query.order_by(AuditEvent.id.desc()).limit(max(1, limit))
    return list(session.scalars(query))
