"""IVR satisfaction survey questions and answers (R5.2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class SurveyQuestion(Base):
    __tablename__ = "survey_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    position: Mapped[int]
    text_tr: Mapped[str] = mapped_column(String(300))
    text_en: Mapped[str] = mapped_column(String(300))
    prompt: Mapped[str] = mapped_column(String(80))  # audio prompt name, e.g. "survey-q1"
    min_answer: Mapped[int] = mapped_column(default=1)
    max_answer: Mapped[int] = mapped_column(default=5)
    is_active: Mapped[bool] = mapped_column(default=True)


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("call_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64))
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    answer: Mapped[int]
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The campaign call that asked (None for an inbound or agent-led survey).
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("call_attempts.id"), index=True)
    # How the answer came: "ivr" (keypad), "sms" (digit reply), "agent" (agent-led).
    channel: Mapped[str] = mapped_column(String(8), default="ivr", server_default="ivr")
