"""Access audit log (KVKK, Law 6698): who looked at which personal data, when, why, from where.

Every opening of a citizen record, every reveal of a TC number and every playback of a call
recording is one row, as are console sign-ins (successful or not). Rows are never updated or
deleted: the ORM refuses it, as for the ticket timeline. Written by :mod:`services.audit`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.ticket_event import AppendOnlyError


class AuditAction(enum.StrEnum):
    """What was done. Personal-data access first, then sign-in events."""

    CITIZEN_OPENED = "citizen_opened"  # a citizen's record (card, history) was shown
    TC_REVEALED = "tc_revealed"  # the full TC number was shown (a reason is required)
    RECORDING_PLAYED = "recording_played"  # a call recording was released for playback
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    ACCOUNT_LOCKED = "account_locked"  # too many failed sign-ins: locked for a while
    SIGN_OUT = "sign_out"
    # Outbound (R5.6): who started, paused or stopped calling citizens, and who changed the
    # do-not-call list (data.change says what happened).
    CAMPAIGN_CHANGED = "campaign_changed"
    DO_NOT_CALL_CHANGED = "do_not_call_changed"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_citizen_at", "citizen_id", "at"),
        Index("ix_audit_events_actor_at", "actor_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # None only for a failed sign-in with an unknown user name (``username`` says what was typed).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    username: Mapped[str] = mapped_column(String(80))
    action: Mapped[AuditAction] = mapped_column(enum_type(AuditAction))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    call_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300), default="")
    ip: Mapped[str | None] = mapped_column(String(45))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_change(_mapper: Any, _conn: Any, target: AuditEvent) -> None:
    raise AppendOnlyError(f"audit event {target.id} is append-only")
