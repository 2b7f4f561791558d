"""Turkish working calendar: working hours, weekends, public holidays and half-day eves.

Pure logic: no database or framework imports. Holidays are passed in as :class:`DayOff`
values (the bundled list comes from ``acikkapi/data/holidays_tr.json``; in production the
rows live in the database and are editable there).

Conventions used throughout:

* Working time is the union of half-open intervals ``[period_start, period_end)`` of every
  working day, expressed in the calendar's local time zone (``Europe/Istanbul`` by default).
* Every input datetime must be timezone-aware (any zone); naive datetimes raise
  :class:`ValueError`.
* Every returned datetime is timezone-aware UTC (:data:`datetime.timezone.utc`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import acikkapi

__all__ = [
    "DEFAULT_PERIODS",
    "HALF_DAY_CUTOFF",
    "DayOff",
    "WorkingCalendar",
    "load_bundled_days_off",
]

DEFAULT_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 30)),
    (time(13, 30), time(17, 30)),
)
"""Default working periods of a municipal office (lunch break 12:30–13:30)."""

HALF_DAY_CUTOFF = time(13, 0)
"""On a half day (arife) only periods ending at or before this local time are kept."""

_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class DayOff:
    """A public holiday (``half_day=False``) or a half-day eve (``half_day=True``)."""

    day: date
    name_tr: str
    name_en: str
    half_day: bool = False


def _bundled_path() -> Path:
    return Path(acikkapi.__file__).parent / "data" / "holidays_tr.json"


def load_bundled_days_off() -> list[DayOff]:
    """Return the bundled Turkish public holidays (2025–2030), sorted by date.

    Guarantees: one entry per date, sorted ascending. The list is the seed data for the
    database table; the database copy is authoritative at run time.
    """
    raw: Any = json.loads(_bundled_path().read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError("holidays_tr.json must contain a JSON list")
    result: list[DayOff] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError(f"holidays_tr.json: expected an object, got {item!r}")
        result.append(
            DayOff(
                day=date.fromisoformat(str(item["date"])),
                name_tr=str(item["name_tr"]),
                name_en=str(item["name_en"]),
                half_day=bool(item.get("half_day", False)),
            )
        )
    result.sort(key=lambda d: d.day)
    return result


@dataclass(frozen=True)
class _Day:
    """Precomputed working periods of one local date, as UTC instants."""

    periods: tuple[tuple[datetime, datetime], ...]
    total: timedelta


def _require_aware(moment: datetime, name: str = "moment") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


class WorkingCalendar:
    """Working-time arithmetic over working periods, weekends and days off.

    A *working day* is a date that is not a weekend day and not a full day off; half days
    (arife, e.g. 28 October or the eve of a bayram) are working days whose afternoon is off:
    only the periods ending at or before 13:00 local time are kept.

    All methods accept aware datetimes in any zone and return aware UTC datetimes. Per-day
    period lists are computed once and cached, and multi-day spans are skipped a whole day
    at a time, so the cost of every operation is proportional to the number of calendar
    days spanned, never to the amount of time.
    """

    def __init__(
        self,
        days_off: Iterable[DayOff],
        tz: str = "Europe/Istanbul",
        periods: Sequence[tuple[time, time]] = DEFAULT_PERIODS,
        weekend: frozenset[int] = frozenset({5, 6}),
    ) -> None:
        self._tz = ZoneInfo(tz)
        self._periods: tuple[tuple[time, time], ...] = tuple(periods)
        if not self._periods:
            raise ValueError("at least one working period is required")
        previous_end: time | None = None
        for start, end in self._periods:
            if start >= end:
                raise ValueError(f"period {start}–{end} must end after it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError("periods must be sorted and must not overlap")
            previous_end = end
        self._half_periods = tuple(p for p in self._periods if p[1] <= HALF_DAY_CUTOFF)
        if not weekend.issubset(range(7)):
            raise ValueError("weekend days must be weekday numbers 0 (Monday) .. 6 (Sunday)")
        if len(weekend) >= 7:
            raise ValueError("a calendar needs at least one non-weekend weekday")
        self._weekend = frozenset(weekend)
        full: set[date] = set()
        half: set[date] = set()
        for day_off in days_off:
            (half if day_off.half_day else full).add(day_off.day)
        self._full_days_off = frozenset(full)
        self._half_days = frozenset(half - full)  # a full day off wins over a half day
        self._cache: dict[int, _Day] = {}

    # ------------------------------------------------------------------ day-level helpers

    def is_working_day(self, day: date) -> bool:
        """True if ``day`` is neither a weekend day nor a full day off (half days count)."""
        return day.weekday() not in self._weekend and day not in self._full_days_off

    def is_half_day(self, day: date) -> bool:
        """True if ``day`` is a working day with only its morning periods kept."""
        return day in self._half_days and self.is_working_day(day)

    def _day(self, ordinal: int) -> _Day:
        cached = self._cache.get(ordinal)
        if cached is not None:
            return cached
        day = date.fromordinal(ordinal)
        if not self.is_working_day(day):
            local_periods: tuple[tuple[time, time], ...] = ()
        elif day in self._half_days:
            local_periods = self._half_periods
        else:
            local_periods = self._periods
        utc_periods: list[tuple[datetime, datetime]] = []
        total = _ZERO
        for start, end in local_periods:
            s = datetime.combine(day, start, tzinfo=self._tz).astimezone(UTC)
            e = datetime.combine(day, end, tzinfo=self._tz).astimezone(UTC)
            if e > s:  # guards against pathological DST transitions inside a period
                utc_periods.append((s, e))
                total += e - s
        result = _Day(tuple(utc_periods), total)
        self._cache[ordinal] = result
        return result

    def _local_ordinal(self, moment_utc: datetime) -> int:
        return moment_utc.astimezone(self._tz).date().toordinal()

    # ------------------------------------------------------------------ moments

    def is_working_moment(self, moment: datetime) -> bool:
        """True if ``moment`` lies in a working period ``[start, end)`` of its local date.

        Raises :class:`ValueError` for naive datetimes.
        """
        m = _require_aware(moment)
        return any(s <= m < e for s, e in self._day(self._local_ordinal(m)).periods)

    def next_working_moment(self, moment: datetime) -> datetime:
        """Return ``moment`` (as UTC) if it is a working moment, else the next period start.

        The result is always a working moment and never earlier than ``moment``.
        """
        m = _require_aware(moment)
        ordinal = self._local_ordinal(m)
        while True:
            for s, e in self._day(ordinal).periods:
                if e > m:
                    return m if m >= s else s
            ordinal += 1

    # ------------------------------------------------------------------ working-time arithmetic

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """Return the earliest instant ``t >= start`` with
        ``working_time_between(start, t) == amount``.

        Guarantees:

        * ``amount == 0`` returns ``start`` itself (converted to UTC).
        * For ``amount > 0`` the result lies in ``(period_start, period_end]`` of a working
          period: it is a working moment or exactly the end of a period (work that finishes
          at 12:30 is due at 12:30, not at 13:30), so it never falls on a weekend or a full
          day off.
        * Monotonic in ``amount`` and additive:
          ``add_working_time(add_working_time(s, a), b) == add_working_time(s, a + b)``.

        Raises :class:`ValueError` for a negative ``amount`` or a naive ``start``.
        """
        current = _require_aware(start, "start")
        if amount < _ZERO:
            raise ValueError(f"amount must not be negative, got {amount!r}")
        if amount == _ZERO:
            return current
        remaining = amount
        ordinal = self._local_ordinal(current)
        # First (possibly partial) day: only the part of each period after ``current``.
        for s, e in self._day(ordinal).periods:
            if e <= current:
                continue
            begin = s if s > current else current
            available = e - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        # Following days start at local midnight, after ``current``: whole-day skipping.
        while True:
            ordinal += 1
            info = self._day(ordinal)
            if info.total < remaining:
                remaining -= info.total
                continue
            for s, e in info.periods:
                available = e - s
                if remaining <= available:
                    return s + remaining
                remaining -= available

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Return the working time inside ``[start, end)``; ``timedelta(0)`` if end <= start.

        Exact to the microsecond and additive over adjacent intervals.
        """
        s_utc = _require_aware(start, "start")
        e_utc = _require_aware(end, "end")
        if e_utc <= s_utc:
            return _ZERO
        first = self._local_ordinal(s_utc)
        last = self._local_ordinal(e_utc)
        total = _ZERO
        for ordinal in range(first, last + 1):
            info = self._day(ordinal)
            if not info.periods:
                continue
            if first < ordinal < last:
                total += info.total
                continue
            for ps, pe in info.periods:
                lo = ps if ps > s_utc else s_utc
                hi = pe if pe < e_utc else e_utc
                if hi > lo:
                    total += hi - lo
        return total

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """Legal deadline: the end of the last working period of the ``days``-th working day
        after ``start``'s local date (e.g. Law 4982: 15 working days).

        The day of receipt never counts, whatever the time of receipt; half days count as
        full working days (their deadline is the end of the morning period). ``days`` must
        be at least 1, otherwise :class:`ValueError` is raised. A day with no working period
        left (possible only with custom periods that all end after 13:00) is not counted.
        """
        current = _require_aware(start, "start")
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        ordinal = self._local_ordinal(current)
        counted = 0
        while True:
            ordinal += 1
            info = self._day(ordinal)
            if not info.periods:
                continue
            counted += 1
            if counted == days:
                return info.periods[-1][1]

    def add_calendar_time(self, start: datetime, amount: timedelta) -> datetime:
        """Plain elapsed-time addition (ignores working hours), returned as UTC."""
        return _require_aware(start, "start") + amount

    # ------------------------------------------------------------------ introspection

    def periods_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Working periods of local date ``day`` as ``(start, end)`` UTC pairs (may be empty)."""
        return self._day(day.toordinal()).periods

    def __repr__(self) -> str:
        return (
            f"WorkingCalendar(tz={self._tz.key!r}, periods={self._periods!r}, "
            f"weekend={sorted(self._weekend)!r}, days_off={len(self._full_days_off)} full"
            f" + {len(self._half_days)} half)"
        )
