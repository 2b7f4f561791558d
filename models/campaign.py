"""An outbound campaign: who to call, when, how often, how fast (R5.1–R5.6).

Written by :mod:`services.campaigns`; dialled by :mod:`services.dialer`.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import CampaignKind, CampaignStatus, CampaignTargetSource, Language


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CampaignKind] = mapped_column(enum_type(CampaignKind))
    status: Mapped[CampaignStatus] = mapped_column(enum_type(CampaignStatus))
    target_source: Mapped[CampaignTargetSource] = mapped_column(enum_type(CampaignTargetSource))
    # How the targets were chosen (period, group, file name): shown on the campaign page.
    target_criteria: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # Text read or sent to the citizen (information, invitation); Turkish, optional English.
    message_tr: Mapped[str | None] = mapped_column(Text)
    message_en: Mapped[str | None] = mapped_column(Text)
    default_language: Mapped[Language] = mapped_column(enum_type(Language), default=Language.TR)
    # Calling window in Europe/Istanbul local time: ISO weekdays ("12345" = Mon–Fri).
    window_days: Mapped[str] = mapped_column(String(7), default="123456")
    window_start: Mapped[time] = mapped_column(Time, default=time(10, 0))
    window_end: Mapped[time] = mapped_column(Time, default=time(19, 0))
    skip_holidays: Mapped[bool] = mapped_column(default=True)
    max_attempts: Mapped[int] = mapped_column(default=3)
    retry_spacing_minutes: Mapped[int] = mapped_column(default=60)
    max_concurrent: Mapped[int] = mapped_column(default=2)
    calls_per_second: Mapped[float] = mapped_column(Float, default=1.0)
    # Pacing: the earliest moment the next attempt may be claimed (1 / calls_per_second apart).
    next_dial_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
