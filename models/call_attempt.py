"""One dial of one campaign target. Its id is the AMI ``ChannelId`` of the call (R5.6).

``UNIQUE (target_id, number)`` makes a second dial of the same attempt impossible: a worker
that claims attempt *n* of a target owns it; another claim of *n* fails in the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import AttemptStatus


class CallAttempt(Base):
    __tablename__ = "call_attempts"
    __table_args__ = (
        UniqueConstraint("target_id", "number"),
        Index("ix_call_attempts_campaign_status", "campaign_id", "status"),
        Index("ix_call_attempts_status_lease", "status", "lease_until"),
    )

    # A UUID string: Asterisk uses it as the Uniqueid of the originated channel.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("campaign_targets.id"))
    number: Mapped[int]  # 1 for the first attempt of the target, 2 for its first retry, ...
    status: Mapped[AttemptStatus] = mapped_column(enum_type(AttemptStatus))
    worker: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    originated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hangup_cause: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(String(200))
