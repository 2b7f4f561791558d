"""What a survey answer set in motion (R5.2): a supervisor follow-up, or a reopening.

One row per survey (``survey_key``: the ``SurveyAnswer.call_id`` of the survey) and kind:

* ``low_score`` — the citizen gave a low satisfaction score; a supervisor calls them back
  and closes the follow-up with a note (``status`` open → done);
* ``not_solved`` — the citizen said the problem was not solved; the ticket was reopened and
  escalated (``reopened``, ``escalation_step``) — recorded so a replayed survey never
  reopens or escalates twice.

``UNIQUE (survey_key, kind)`` is what makes every outcome happen exactly once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class SurveyFollowUp(Base):
    __tablename__ = "survey_follow_ups"
    __table_args__ = (
        UniqueConstraint("survey_key", "kind"),
        Index("ix_survey_follow_ups_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_key: Mapped[str] = mapped_column(String(64))  # SurveyAnswer.call_id
    kind: Mapped[str] = mapped_column(String(16))  # "low_score" | "not_solved"
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    neighbourhood_id: Mapped[int | None] = mapped_column(ForeignKey("neighbourhoods.id"))
    channel: Mapped[str] = mapped_column(String(8))  # how the answer came: ivr, sms, agent
    score: Mapped[int | None]  # the satisfaction answer (low_score)
    reopened: Mapped[bool] = mapped_column(default=False)  # not_solved: the ticket was reopened
    escalation_step: Mapped[str | None] = mapped_column(String(20))  # not_solved: step taken
    status: Mapped[str] = mapped_column(String(8))  # "open" | "done"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str | None] = mapped_column(String(500))
