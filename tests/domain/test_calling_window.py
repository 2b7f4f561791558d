"""The calling window of outbound campaigns (R5.6): weekdays, local hours, holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from models import Holiday
from services.calling_window import CallingWindow, HolidayDates, holiday_dates

IST = ZoneInfo("Europe/Istanbul")
WEEKDAYS = CallingWindow(
    days=frozenset({1, 2, 3, 4, 5}), start=time(10), end=time(19), skip_holidays=True
)
NO_HOLIDAYS: frozenset[date] = frozenset()


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=IST)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (at(2026, 11, 24, 10, 0), True),  # Tuesday, opening minute
        (at(2026, 11, 24, 9, 59), False),  # before hours
        (at(2026, 11, 24, 18, 59), True),
        (at(2026, 11, 24, 19, 0), False),  # the end is exclusive
        (at(2026, 11, 28, 12, 0), False),  # Saturday
        (at(2026, 11, 29, 12, 0), False),  # Sunday
    ],
)
def test_is_open_follows_days_and_local_hours(moment: datetime, open_: bool) -> None:
    assert WEEKDAYS.is_open(moment, NO_HOLIDAYS) is open_
    assert WEEKDAYS.is_open(moment.astimezone(UTC), NO_HOLIDAYS) is open_  # any zone


def test_next_open_is_now_when_open_and_next_opening_otherwise() -> None:
    tuesday = at(2026, 11, 24, 11, 30)
    assert WEEKDAYS.next_open(tuesday, NO_HOLIDAYS) == tuesday.astimezone(UTC)
    assert WEEKDAYS.next_open(tuesday, NO_HOLIDAYS).tzinfo == UTC
    assert WEEKDAYS.next_open(at(2026, 11, 24, 7, 0), NO_HOLIDAYS) == at(2026, 11, 24, 10)
    assert WEEKDAYS.next_open(at(2026, 11, 24, 19, 0), NO_HOLIDAYS) == at(2026, 11, 25, 10)
    # Friday evening → Monday morning (10:00 Istanbul is 07:00 UTC).
    monday = WEEKDAYS.next_open(at(2026, 11, 27, 20, 0), NO_HOLIDAYS)
    assert monday == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def test_holidays_close_the_day_unless_the_campaign_calls_on_holidays() -> None:
    wednesday = date(2026, 11, 25)
    holidays = {wednesday}
    assert not WEEKDAYS.is_open(at(2026, 11, 25, 12), holidays)
    assert WEEKDAYS.next_open(at(2026, 11, 24, 20), holidays) == at(2026, 11, 26, 10)
    every_day = CallingWindow(WEEKDAYS.days, WEEKDAYS.start, WEEKDAYS.end, skip_holidays=False)
    assert every_day.is_open(at(2026, 11, 25, 12), holidays)


def test_half_day_eve_closes_the_afternoon_only() -> None:
    eve = HolidayDates(full=(), half_days=[date(2026, 10, 28)])
    assert WEEKDAYS.is_open(at(2026, 10, 28, 12, 59), eve)
    assert not WEEKDAYS.is_open(at(2026, 10, 28, 13, 0), eve)
    assert WEEKDAYS.next_open(at(2026, 10, 28, 14), eve) == at(2026, 10, 29, 10)
    late = CallingWindow(WEEKDAYS.days, time(14), time(19), skip_holidays=True)
    assert late.next_open(at(2026, 10, 28, 9), eve) == at(2026, 10, 29, 14)


def test_window_refuses_nonsense_and_naive_moments() -> None:
    with pytest.raises(ValueError):
        CallingWindow(frozenset(), time(10), time(19), True)
    with pytest.raises(ValueError):
        CallingWindow(frozenset({8}), time(10), time(19), True)
    with pytest.raises(ValueError):
        CallingWindow(frozenset({1}), time(19), time(10), True)
    with pytest.raises(ValueError):
        WEEKDAYS.is_open(datetime(2026, 11, 24, 12), NO_HOLIDAYS)


def test_holiday_dates_reads_the_table_with_half_days_apart(session: Session) -> None:
    # The bundled calendar: 28 October 2026 is a half-day eve, the 29th a public holiday.
    days = holiday_dates(session, date(2026, 10, 27), date(2026, 10, 30))
    assert date(2026, 10, 29) in days and date(2026, 10, 28) not in days
    assert days.half_days == {date(2026, 10, 28)}
    session.add(Holiday(day=date(2026, 12, 2), name_tr="Yerel tatil", name_en="Local holiday"))
    session.flush()
    assert holiday_dates(session, date(2026, 12, 1), date(2026, 12, 3)) == {date(2026, 12, 2)}
    assert not WEEKDAYS.is_open(
        at(2026, 12, 2, 12), holiday_dates(session, date(2026, 12, 2), date(2026, 12, 2))
    )
