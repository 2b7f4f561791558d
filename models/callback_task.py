"""A promise to call a citizen back: abandoned calls, out-of-hours requests (R5.3)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import CallbackReason, CallbackStatus, Language


class CallbackTask(Base):
    __tablename__ = "callback_tasks"
    __table_args__ = (
        UniqueConstraint("call_id", "reason"),  # one task per call and reason: replay-safe
        Index("ix_callback_tasks_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[CallbackReason] = mapped_column(enum_type(CallbackReason))
    status: Mapped[CallbackStatus] = mapped_column(enum_type(CallbackStatus))
    phone_e164: Mapped[str] = mapped_column(String(16))
    phone_raw: Mapped[str | None] = mapped_column(String(64))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    language: Mapped[Language] = mapped_column(enum_type(Language))
    queue: Mapped[str | None] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))
