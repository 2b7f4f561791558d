"""The working calendar as stored in the database (holidays are editable rows)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Holiday
from services.working_calendar import DayOff, WorkingCalendar

_CACHE_KEY = "acikkapi.working_calendar"


def get_calendar(session: Session) -> WorkingCalendar:
    """The calendar built from the ``holidays`` table, cached for the session's lifetime.

    A session is one unit of work, so holiday edits are seen by the next session.
    """
    cached = session.info.get(_CACHE_KEY)
    if isinstance(cached, WorkingCalendar):
        return cached
    rows = session.scalars(select(Holiday)).all()
    calendar = WorkingCalendar(
        DayOff(day=h.day, name_tr=h.name_tr, name_en=h.name_en, half_day=h.half_day) for h in rows
    )
    session.info[_CACHE_KEY] = calendar
    return calendar


def forget_calendar(session: Session) -> None:
    """Drop the cached calendar (after editing holidays inside the same session)."""
    session.info.pop(_CACHE_KEY, None)
