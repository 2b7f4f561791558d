"""The working calendar as stored in the database (holidays are editable rows)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Holiday
from services.working_calendar import DayOff, WorkingCalendar

_CACHE_KEY = "acikkapi.working_calendar"
# Calendars built from identical holiday rows are identical: share them across sessions
# (building one and warming its day cache costs milliseconds; reading the rows does not).
_Row = tuple[date, str, str, bool]
_BUILT: dict[tuple[_Row, ...], WorkingCalendar] = {}


def get_calendar(session: Session) -> WorkingCalendar:
    """The calendar built from the ``holidays`` table as this session sees it.

    Edits to the table are seen by the next session (the rows are read once per session);
    a calendar is rebuilt only when the rows differ from every calendar built before.
    """
    cached = session.info.get(_CACHE_KEY)
    if isinstance(cached, WorkingCalendar):
        return cached
    rows: tuple[_Row, ...] = tuple(
        (r[0], r[1], r[2], r[3])
        for r in session.execute(
            select(Holiday.day, Holiday.name_tr, Holiday.name_en, Holiday.half_day).order_by(
                Holiday.day
            )
        )
    )
    calendar = _BUILT.get(rows)
    if calendar is None:
        calendar = WorkingCalendar(
            DayOff(day=d, name_tr=tr, name_en=en, half_day=half) for d, tr, en, half in rows
        )
        if len(_BUILT) > 8:
            _BUILT.clear()
        _BUILT[rows] = calendar
    session.info[_CACHE_KEY] = calendar
    return calendar


def forget_calendar(session: Session) -> None:
    """Drop the session's calendar (after editing holidays inside the same session)."""
    session.info.pop(_CACHE_KEY, None)
