"""Outbox of notifications: written in the same transaction as the change that causes them.

Workers dispatch pending rows; ``idempotency_key`` is unique so a retried change or a
replayed event never queues the same message twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_type
from models.enums import Language, NotificationChannel, OutboxStatus

if TYPE_CHECKING:
    from models.ticket import Ticket


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_dispatch", "status", "available_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[NotificationChannel] = mapped_column(enum_type(NotificationChannel))
    recipient: Mapped[str] = mapped_column(String(254))  # E.164, e-mail address or staff id
    template: Mapped[str] = mapped_column(String(80))
    language: Mapped[Language] = mapped_column(enum_type(Language))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Declared so the unit of work writes the ticket row first (one flush per intake).
    ticket: Mapped[Ticket | None] = relationship()
    status: Mapped[OutboxStatus] = mapped_column(enum_type(OutboxStatus))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(120))
    # SMS delivery receipts (issue 5): the provider's final state and when it was reached.
    delivery_status: Mapped[str | None] = mapped_column(String(20))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
