"""When a campaign may call: ISO weekdays, local hours, holidays skipped (R5.6).

Pure logic (no database) except :func:`holiday_dates`, which reads the ``holidays`` table.
Local time is Europe/Istanbul; every input must be aware, every output is aware UTC.

Holidays are passed as any ``Container[date]``: a date in it closes the whole day. A
half-day eve (arife, ``Holiday.half_day``) closes only the afternoon: :func:`holiday_dates`
returns a :class:`HolidayDates` whose ``half_days`` lists those eves, and
:meth:`CallingWindow.is_open` closes them from :data:`HALF_DAY_CUTOFF` (13:00, the same
cut-off as the working calendar) onwards.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Holiday
from services.working_calendar import HALF_DAY_CUTOFF

if TYPE_CHECKING:
    from models import Campaign

__all__ = ["HALF_DAY_CUTOFF", "LOCAL_TZ", "CallingWindow", "HolidayDates", "holiday_dates"]

LOCAL_TZ = ZoneInfo("Europe/Istanbul")
_SEARCH_DAYS = 400  # more than a year of closed days cannot happen with a non-empty window


class HolidayDates(set[date]):
    """Full days off (the set itself) plus the half-day eves whose afternoon is closed."""

    def __init__(self, full: Iterable[date] = (), half_days: Iterable[date] = ()) -> None:
        super().__init__(full)
        self.half_days: frozenset[date] = frozenset(half_days)


def holiday_dates(session: Session, start: date, end: date) -> HolidayDates:
    """The days off in ``[start, end]`` (inclusive) from the ``holidays`` table.

    Full holidays are members of the returned set; half-day eves are not members but are
    listed in ``.half_days`` (their afternoon is closed, see :class:`CallingWindow`).
    """
    rows = session.execute(
        select(Holiday.day, Holiday.half_day).where(Holiday.day.between(start, end))
    ).all()
    return HolidayDates(
        full=(d for d, half in rows if not half), half_days=(d for d, half in rows if half)
    )


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


def parse_days(days: str) -> frozenset[int]:
    """``"12345"`` → ``{1, 2, 3, 4, 5}``; :class:`ValueError` on anything but digits 1–7."""
    if not days or any(ch not in "1234567" for ch in days):
        raise ValueError(f"window days must be ISO weekday digits 1-7, got {days!r}")
    return frozenset(int(ch) for ch in days)


@dataclass(frozen=True)
class CallingWindow:
    """The weekly local-time window in which a campaign may dial (R5.6)."""

    days: frozenset[int]  # ISO weekdays 1 (Monday) .. 7 (Sunday)
    start: time  # local Europe/Istanbul, start < end
    end: time
    skip_holidays: bool = True

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(1, 8)):
            raise ValueError(f"window days must be a non-empty subset of 1..7: {self.days}")
        if self.start >= self.end:
            raise ValueError(f"window must end after it starts: {self.start}–{self.end}")

    @classmethod
    def of(cls, campaign: Campaign) -> CallingWindow:
        """The window stored on ``campaign``."""
        return cls(
            days=parse_days(campaign.window_days),
            start=campaign.window_start,
            end=campaign.window_end,
            skip_holidays=campaign.skip_holidays,
        )

    def _end_on(self, day: date, holidays: Container[date]) -> time | None:
        """Local closing time on ``day``, or None when the day is closed altogether."""
        if day.isoweekday() not in self.days:
            return None
        if not self.skip_holidays:
            return self.end
        if day in holidays:
            return None
        half_days: Container[date] = getattr(holidays, "half_days", ())
        if day in half_days:
            end = min(self.end, HALF_DAY_CUTOFF)
            return end if end > self.start else None
        return self.end

    def is_open(self, now: datetime, holidays: Container[date]) -> bool:
        """True when ``now`` (aware) falls inside ``[start, end)`` on an open local day."""
        local = _aware_utc(now).astimezone(LOCAL_TZ)
        end = self._end_on(local.date(), holidays)
        return end is not None and self.start <= local.time() < end

    def next_open(self, now: datetime, holidays: Container[date]) -> datetime:
        """``now`` (as UTC) when open, else the next local opening moment, as aware UTC.

        Raises :class:`ValueError` if nothing opens within :data:`_SEARCH_DAYS` days (every
        allowed weekday a holiday), which a real calendar never produces.
        """
        utc_now = _aware_utc(now)
        if self.is_open(utc_now, holidays):
            return utc_now
        local = utc_now.astimezone(LOCAL_TZ)
        day = local.date()
        for offset in range(_SEARCH_DAYS):
            current = day + timedelta(days=offset)
            end = self._end_on(current, holidays)
            if end is None:
                continue
            opening = datetime.combine(current, self.start, tzinfo=LOCAL_TZ)
            if offset == 0 and local.time() >= self.start:
                continue  # today's window already started: it is over (we are not open)
            return opening.astimezone(UTC)
        raise ValueError("calling window never opens within a year")
