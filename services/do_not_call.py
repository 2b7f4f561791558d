"""The do-not-call list: numbers no campaign may ever dial, citizen or not (R5.6, KVKK).

Numbers are stored in E.164 (:func:`services.identity.normalise_phone`); a citizen's own
``do_not_call`` / ``consent_calls`` flags are honoured separately by
:mod:`services.campaign_targets`. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditAction, DoNotCallNumber, StaffUser
from services import audit
from services.identity import normalise_phone

__all__ = ["add_do_not_call", "blocked_numbers", "list_do_not_call", "remove_do_not_call"]

_CHUNK = 500  # bound parameters per IN (...) list


def add_do_not_call(
    session: Session, *, actor: StaffUser | None, now: datetime, phone: str, reason: str | None
) -> DoNotCallNumber:
    """Put ``phone`` on the list (idempotent: an existing entry is returned unchanged).

    Raises :class:`~services.errors.InvalidPhoneNumber` for a number that cannot be read.
    """
    e164 = normalise_phone(phone).e164
    existing = session.get(DoNotCallNumber, e164)
    if existing is not None:
        return existing
    text = " ".join((reason or "").split())[:200] or None
    row = DoNotCallNumber(
        phone_e164=e164,
        reason=text,
        added_at=now,
        added_by_id=actor.id if actor is not None else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        now,
        AuditAction.DO_NOT_CALL_CHANGED,
        reason=text,
        phone=e164,
        change="added",
    )
    return row


def remove_do_not_call(
    session: Session, *, actor: StaffUser | None, now: datetime, phone: str
) -> bool:
    """Take ``phone`` off the list; False when it was not on it."""
    e164 = normalise_phone(phone).e164
    existing = session.get(DoNotCallNumber, e164)
    if existing is None:
        return False
    session.delete(existing)
    session.flush()
    audit.record(session, actor, now, AuditAction.DO_NOT_CALL_CHANGED, phone=e164, change="removed")
    return True


def blocked_numbers(session: Session, phones: Collection[str]) -> set[str]:
    """The subset of ``phones`` (E.164) that are on the list; one query per 500 numbers."""
    wanted = sorted(set(phones))
    found: set[str] = set()
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        found.update(
            session.scalars(
                select(DoNotCallNumber.phone_e164).where(DoNotCallNumber.phone_e164.in_(chunk))
            )
        )
    return found


def list_do_not_call(session: Session, *, limit: int) -> tuple[int, list[DoNotCallNumber]]:
    """How many numbers are on the list, and the newest ``limit`` of them. Reads only."""
    total = session.scalar(select(func.count()).select_from(DoNotCallNumber)) or 0
    rows = session.scalars(
        select(DoNotCallNumber)
        .order_by(DoNotCallNumber.added_at.desc(), DoNotCallNumber.phone_e164)
        .limit(limit)
    ).all()
    return total, list(rows)
