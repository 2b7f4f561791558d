"""The working calendar as stored in the database (holidays are editable rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

from sqlalchemy import ColumnElement, String, bindparam, case, cast, func, literal_column, select
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


# ---------------------------------------------------------------------------------------------
# A window of the calendar, read along another statement (the intake path's first one).
#
# Working-time arithmetic from a start to a deadline looks only at the local dates between
# the two. A calendar built from the holidays inside a window of dates therefore gives the
# same deadlines as the full calendar whenever start and deadline both lie well inside the
# window; :meth:`HolidayWindow.covers` checks that, and the caller falls back to
# :func:`get_calendar` when it does not (an SLA longer than the window).

WINDOW_DAYS = 400  # covers the longest SLA or legal clock of the catalogue by far
_MARGIN = timedelta(days=2)  # UTC dates vs. local (Europe/Istanbul) dates, both ways
_WINDOWED: dict[frozenset[tuple[date, bool]], WorkingCalendar] = {}


@cache
def holidays_in_window(dialect_name: str) -> ColumnElement[str | None]:
    """A scalar subquery: the holidays of a window as one ``day:h|f,…`` string (NULL: none),
    to add to another statement so that reading them costs no round trip of its own.

    Parameters ``holidays_first`` and ``holidays_last`` (:meth:`HolidayWindow.params`).
    Built once per dialect, with the aggregate and its literals written out, so that an
    execution needs no post-compile rendering (``aggregate_strings`` would need one).
    """
    item = (
        cast(Holiday.day, String)
        + literal_column("':'")
        + case((Holiday.half_day, literal_column("'h'")), else_=literal_column("'f'"))
    )
    aggregate = "string_agg" if dialect_name == "postgresql" else "group_concat"
    return (
        select(getattr(func, aggregate)(item, literal_column("','"), type_=String))
        .where(Holiday.day.between(bindparam("holidays_first"), bindparam("holidays_last")))
        .scalar_subquery()
    )


@dataclass(frozen=True)
class HolidayWindow:
    """The dates ``first``..``last`` (inclusive) whose holidays are read."""

    first: date
    last: date

    @classmethod
    def starting(cls, start: datetime) -> HolidayWindow:
        first = start.astimezone(UTC).date() - _MARGIN
        return cls(first, first + timedelta(days=WINDOW_DAYS))

    def params(self) -> dict[str, date]:
        """The parameters of :func:`holidays_in_window` for this window."""
        return {"holidays_first": self.first, "holidays_last": self.last}

    def covers(self, *moments: datetime | None) -> bool:
        """True when every moment lies far enough inside the window for its calendar."""
        for moment in moments:
            if moment is None:
                continue
            day = moment.astimezone(UTC).date()
            if not (self.first + _MARGIN <= day and day + _MARGIN <= self.last):
                return False
        return True


def window_calendar(aggregated: str | None) -> WorkingCalendar | None:
    """The calendar of the holidays read by :func:`holidays_in_window` (``None`` when the
    text cannot be read back, e.g. an unusual server date style: use :func:`get_calendar`).

    Calendars are shared across sessions: equal holiday sets give the same calendar.
    """
    days: set[tuple[date, bool]] = set()
    for item in (aggregated or "").split(","):
        if not item:
            continue
        text, _, kind = item.rpartition(":")
        try:
            days.add((date.fromisoformat(text), kind == "h"))
        except ValueError:
            return None
    key = frozenset(days)
    calendar = _WINDOWED.get(key)
    if calendar is None:
        calendar = WorkingCalendar(
            DayOff(day=d, name_tr="", name_en="", half_day=half) for d, half in key
        )
        if len(_WINDOWED) > 16:
            _WINDOWED.clear()
        _WINDOWED[key] = calendar
    return calendar
