"""A note typed by a switchboard operator (or an agent) about a live call (R1.11, R4.2).

Keyed on the call's ``call_id`` — the id every leg of the call shares — so the note travels
with the call: whoever the call is transferred to sees it on the call's page (screen pop).
Notes are appended, never edited or deleted: the ORM refuses it, as for the ticket timeline.
Written by :mod:`services.call_notes`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime
from models.ticket_event import AppendOnlyError


class CallNote(Base):
    __tablename__ = "call_notes"
    __table_args__ = (Index("ix_call_notes_call_at", "call_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("call_records.call_id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    text: Mapped[str] = mapped_column(Text)
    # Where the author sent the call with this note (an internal extension), if anywhere.
    transfer_target: Mapped[str | None] = mapped_column(String(20))


@event.listens_for(CallNote, "before_update")
@event.listens_for(CallNote, "before_delete")
def _refuse_change(_mapper: Any, _conn: Any, target: CallNote) -> None:
    raise AppendOnlyError(f"call note {target.id} is append-only")
