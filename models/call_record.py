"""One inbound conversation as the PBX saw it (R1.2, R4.2, R4.4, R4.6).

Keyed on ``call_id``: the Uniqueid of the citizen's inbound channel, inherited by every leg
as ``__CALL_ID`` so that transfers, agent legs and recordings all point back to one record.
The AMI listener writes it idempotently: replaying events sets the same values again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import CallOutcome, Language

AWAITING_TICKET = "answered_at IS NOT NULL AND ticket_id IS NULL AND ticket_refusal IS NULL"


class CallRecord(Base):
    __tablename__ = "call_records"
    __table_args__ = (
        Index("ix_call_records_caller", "caller_e164", "entered_at"),
        Index("ix_call_records_outcome", "outcome", "entered_at"),
        # Answered calls whose ticket is still to be opened (services.call_records): a
        # handful at any time, found after a crash without scanning every call.
        Index(
            "ix_call_records_awaiting_ticket",
            "answered_at",
            postgresql_where=text(AWAITING_TICKET),
            sqlite_where=text(AWAITING_TICKET),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    linked_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(120))
    caller_raw: Mapped[str | None] = mapped_column(String(64))
    caller_e164: Mapped[str | None] = mapped_column(String(16))
    caller_name: Mapped[str | None] = mapped_column(String(120))
    dialled_number: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[Language | None] = mapped_column(enum_type(Language))
    via_switchboard: Mapped[bool] = mapped_column(default=False)
    queue: Mapped[str | None] = mapped_column(String(80))
    agent_interface: Mapped[str | None] = mapped_column(String(120))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # joined the queue
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[int | None]
    talk_seconds: Mapped[int | None]
    outcome: Mapped[CallOutcome] = mapped_column(enum_type(CallOutcome))
    # [{"kind": "blind"|"attended"|"switchboard", "from": ..., "to": ..., "at": iso}, ...]
    transfer_chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recording_path: Mapped[str | None] = mapped_column(String(300))
    end_cause: Mapped[str | None] = mapped_column(String(60))  # Hangup Cause-txt of the caller leg
    # Why something expected did not happen (e.g. no callback task: withheld caller ID).
    note: Mapped[str | None] = mapped_column(String(300))
    # Why intake refused the ticket of this answered call; such a call is not tried again.
    ticket_refusal: Mapped[str | None] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
