"""The SMS fallback of the satisfaction survey (R5.2): "reply with a digit".

When a survey target could not be reached by phone, one SMS asks the citizen to rate the
service 1–5 by replying with a digit. This row is that request: the number it went to (a
reply is matched by the sender's number, so it is indexed), until when a reply counts, and
the first reply's answer. ``request_key`` is also the outbox idempotency key of the SMS and
the ``SurveyAnswer.call_id`` of the answer, so the request, its message and its answer are
each written once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import Language


class SurveySmsRequest(Base):
    __tablename__ = "survey_sms_requests"
    __table_args__ = (Index("ix_survey_sms_requests_phone_expires", "phone_e164", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)  # "survey-sms:<t>:<c>"
    phone_e164: Mapped[str] = mapped_column(String(16))
    language: Mapped[Language] = mapped_column(enum_type(Language))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    target_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_targets.id"), index=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # replies count until then
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[int | None]
    reply_ref: Mapped[str | None] = mapped_column(String(120))  # provider id of the reply
