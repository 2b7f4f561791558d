"""One person (one number) a campaign must reach, with its retry state (R5.6)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import AttemptStatus, CampaignTargetStatus, Language


class CampaignTarget(Base):
    __tablename__ = "campaign_targets"
    __table_args__ = (
        # "<phone>:<ticket id or ''>": a number is called once per ticket per campaign.
        UniqueConstraint("campaign_id", "dedupe_key"),
        Index("ix_campaign_targets_due", "campaign_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    dedupe_key: Mapped[str] = mapped_column(String(48))
    phone_e164: Mapped[str] = mapped_column(String(16))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    callback_task_id: Mapped[int | None] = mapped_column(ForeignKey("callback_tasks.id"))
    display_name: Mapped[str | None] = mapped_column(String(160))
    language: Mapped[Language] = mapped_column(enum_type(Language), default=Language.TR)
    status: Mapped[CampaignTargetStatus] = mapped_column(enum_type(CampaignTargetStatus))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_outcome: Mapped[AttemptStatus | None] = mapped_column(enum_type(AttemptStatus))
    # What the call achieved, e.g. the survey result ("complete", "partial", "failed").
    result: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
