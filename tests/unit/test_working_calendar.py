"""Unit tests for services.working_calendar (pure logic, no database)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.working_calendar import DayOff, WorkingCalendar, load_bundled_days_off

IST = ZoneInfo("Europe/Istanbul")
CAL = WorkingCalendar(load_bundled_days_off())
EPSILON = timedelta(microseconds=1)


def ist(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """An aware Istanbul local datetime."""
    return datetime(y, m, d, hh, mm, tzinfo=IST)


def local(moment: datetime) -> datetime:
    return moment.astimezone(IST)


# ---------------------------------------------------------------------------- bundled data


def test_bundled_data_is_sorted_unique_and_covers_2025_to_2030() -> None:
    days = load_bundled_days_off()
    dates = [d.day for d in days]
    assert dates == sorted(dates)
    assert len(dates) == len(set(dates))
    assert {d.year for d in dates} == set(range(2025, 2031))
    # 7 fixed holidays + 28 Oct eve + 2 arife + 3 + 4 bayram days = 17 per year,
    # minus the two collisions (19 May 2027, 23 April 2029).
    per_year = Counter(d.year for d in dates)
    assert per_year == {2025: 17, 2026: 17, 2027: 16, 2028: 17, 2029: 16, 2030: 17}
    for d in days:
        assert d.name_tr and d.name_en


@pytest.mark.parametrize(
    ("ramazan_day1", "kurban_day1"),
    [
        (date(2025, 3, 30), date(2025, 6, 6)),
        (date(2026, 3, 20), date(2026, 5, 27)),
        (date(2027, 3, 9), date(2027, 5, 16)),
        (date(2028, 2, 26), date(2028, 5, 5)),
        (date(2029, 2, 14), date(2029, 4, 24)),
        (date(2030, 2, 4), date(2030, 4, 13)),
    ],
)
def test_religious_holidays_match_diyanet(ramazan_day1: date, kurban_day1: date) -> None:
    by_day = {d.day: d for d in load_bundled_days_off()}
    for first, length, label in ((ramazan_day1, 3, "Ramazan"), (kurban_day1, 4, "Kurban")):
        eve = by_day[first - timedelta(days=1)]
        assert label in eve.name_tr
        for i in range(length):
            entry = by_day[first + timedelta(days=i)]
            assert not entry.half_day
            assert label in entry.name_tr
        assert first + timedelta(days=length) not in by_day or label not in (
            by_day[first + timedelta(days=length)].name_tr
        )


def test_collisions_keep_one_full_entry() -> None:
    by_day = {d.day: d for d in load_bundled_days_off()}
    apr23 = by_day[date(2029, 4, 23)]  # 23 Nisan + Kurban Bayramı arifesi
    assert not apr23.half_day
    assert "Ulusal Egemenlik" in apr23.name_tr and "Kurban" in apr23.name_tr
    may19 = by_day[date(2027, 5, 19)]  # 19 Mayıs + Kurban Bayramı 4. gün
    assert not may19.half_day
    assert "Gençlik" in may19.name_tr and "Kurban" in may19.name_tr
    assert not CAL.is_working_day(date(2029, 4, 23))


def test_full_day_off_wins_over_half_day_in_calendar() -> None:
    day = date(2025, 11, 5)  # a Wednesday
    cal = WorkingCalendar([DayOff(day, "a", "a", half_day=True), DayOff(day, "b", "b")])
    assert not cal.is_working_day(day)
    assert cal.periods_on(day) == ()


# ---------------------------------------------------------------------------- examples


def test_friday_evening_plus_two_hours_is_monday_morning() -> None:
    # 17:00 Friday leaves 30 minutes that day, so 1.5 h remain for Monday 08:30.
    assert local(CAL.add_working_time(ist(2025, 11, 7, 17, 0), timedelta(hours=2))) == ist(
        2025, 11, 10, 10, 0
    )
    # From the close of business on Friday the full 2 h are spent on Monday.
    assert local(CAL.add_working_time(ist(2025, 11, 7, 17, 30), timedelta(hours=2))) == ist(
        2025, 11, 10, 10, 30
    )


def test_received_on_saturday() -> None:
    saturday = ist(2025, 11, 8, 10, 0)
    assert not CAL.is_working_day(saturday.date())
    assert not CAL.is_working_moment(saturday)
    assert local(CAL.next_working_moment(saturday)) == ist(2025, 11, 10, 8, 30)
    assert local(CAL.add_working_time(saturday, timedelta(hours=1))) == ist(2025, 11, 10, 9, 30)


def test_received_during_lunch() -> None:
    lunch = ist(2025, 11, 5, 12, 45)
    assert not CAL.is_working_moment(lunch)
    assert local(CAL.next_working_moment(lunch)) == ist(2025, 11, 5, 13, 30)
    assert local(CAL.add_working_time(lunch, timedelta(hours=1))) == ist(2025, 11, 5, 14, 30)


def test_work_ending_at_period_end_is_due_at_period_end() -> None:
    start = ist(2025, 11, 5, 11, 30)
    assert local(CAL.add_working_time(start, timedelta(hours=1))) == ist(2025, 11, 5, 12, 30)


def test_kurban_bayrami_2026_received_on_arife_morning() -> None:
    # Arife 26 May 2026 (Tue) is a half day; 27–30 May are off; 31 May is a Sunday.
    received = ist(2026, 5, 26, 9, 0)
    assert CAL.is_working_day(date(2026, 5, 26))
    assert CAL.is_working_moment(received)
    for d in range(27, 32):
        assert not CAL.is_working_day(date(2026, 5, d))
    # 3.5 h on the arife morning, then 4.5 h from Monday 1 June 08:30.
    due = local(CAL.add_working_time(received, timedelta(hours=8)))
    assert due == ist(2026, 6, 1, 14, 0)


def test_kurban_bayrami_2026_received_on_arife_afternoon() -> None:
    received = ist(2026, 5, 26, 14, 0)
    assert not CAL.is_working_moment(received)
    assert local(CAL.next_working_moment(received)) == ist(2026, 6, 1, 8, 30)
    assert local(CAL.add_working_time(received, timedelta(hours=2))) == ist(2026, 6, 1, 10, 30)
    assert CAL.working_time_between(received, ist(2026, 6, 1, 8, 30)) == timedelta(0)


def test_add_working_days_15_across_kurban_bayrami_2026() -> None:
    # Receipt day 26 May does not count; bayram + weekend skipped; 1 June is day 1.
    due = local(CAL.add_working_days(ist(2026, 5, 26, 9, 0), 15))
    assert due == ist(2026, 6, 19, 17, 30)


def test_add_working_days_15_across_ramazan_bayrami_2026_counts_half_day() -> None:
    # Received Mon 16 March 2026. 17, 18, 19 (arife, half day) count; 20 March is the
    # first bayram day (Friday), 21–22 fall on the weekend.
    due = local(CAL.add_working_days(ist(2026, 3, 16, 16, 0), 15))
    assert due == ist(2026, 4, 7, 17, 30)
    # A deadline that lands on a half day ends with the morning period.
    assert local(CAL.add_working_days(ist(2026, 3, 16, 16, 0), 3)) == ist(2026, 3, 19, 12, 30)


def test_add_working_days_receipt_time_does_not_matter() -> None:
    early = CAL.add_working_days(ist(2025, 11, 5, 0, 1), 1)
    late = CAL.add_working_days(ist(2025, 11, 5, 23, 59), 1)
    assert early == late == ist(2025, 11, 6, 17, 30)
    with pytest.raises(ValueError):
        CAL.add_working_days(ist(2025, 11, 5, 9, 0), 0)


def test_half_day_eve_28_october() -> None:
    assert CAL.is_working_day(date(2025, 10, 28))
    assert not CAL.is_working_day(date(2025, 10, 29))
    assert CAL.is_working_moment(ist(2025, 10, 28, 12, 0))
    assert not CAL.is_working_moment(ist(2025, 10, 28, 14, 0))
    assert local(CAL.add_working_time(ist(2025, 10, 28, 11, 30), timedelta(hours=2))) == ist(
        2025, 10, 30, 9, 30
    )
    assert CAL.working_time_between(ist(2025, 10, 28), ist(2025, 10, 29)) == timedelta(hours=4)


def test_results_are_utc_and_input_zone_is_irrelevant() -> None:
    start_ist = ist(2025, 11, 5, 10, 0)
    start_ny = start_ist.astimezone(ZoneInfo("America/New_York"))
    a = CAL.add_working_time(start_ist, timedelta(hours=3))
    b = CAL.add_working_time(start_ny, timedelta(hours=3))
    assert a == b
    for result in (
        a,
        CAL.next_working_moment(start_ny),
        CAL.add_working_days(start_ny, 2),
        CAL.add_calendar_time(start_ny, timedelta(hours=1)),
    ):
        assert result.tzinfo is UTC


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 11, 5, 10, 0)
    with pytest.raises(ValueError):
        CAL.is_working_moment(naive)
    with pytest.raises(ValueError):
        CAL.add_working_time(naive, timedelta(hours=1))
    with pytest.raises(ValueError):
        CAL.working_time_between(naive, ist(2025, 11, 6))
    with pytest.raises(ValueError):
        CAL.add_calendar_time(naive, timedelta(hours=1))
    with pytest.raises(ValueError):
        CAL.add_working_time(ist(2025, 11, 5), timedelta(hours=-1))


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar([], periods=())
    with pytest.raises(ValueError):
        WorkingCalendar([], periods=((time(12, 0), time(9, 0)),))
    with pytest.raises(ValueError):
        WorkingCalendar([], periods=((time(9, 0), time(12, 0)), (time(11, 0), time(14, 0))))
    with pytest.raises(ValueError):
        WorkingCalendar([], weekend=frozenset(range(7)))


def test_add_calendar_time_is_plain_addition() -> None:
    start = ist(2025, 10, 28, 16, 0)
    assert CAL.add_calendar_time(start, timedelta(days=2)) == start + timedelta(days=2)


def test_large_sla_round_trips() -> None:
    start = ist(2025, 1, 2, 9, 0)
    due = CAL.add_working_time(start, timedelta(hours=2000))
    assert CAL.working_time_between(start, due) == timedelta(hours=2000)


# ---------------------------------------------------------------------------- properties

moments = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.just(UTC),
)
durations = st.integers(min_value=0, max_value=2000 * 60).map(lambda m: timedelta(minutes=m))
positive_durations = st.integers(min_value=1, max_value=2000 * 60).map(
    lambda m: timedelta(minutes=m)
)


@given(moments, positive_durations)
def test_result_is_inside_or_at_end_of_a_period(start: datetime, amount: timedelta) -> None:
    """For amount > 0 the result r lies in (period_start, period_end] of some period:
    the instant just before r is a working moment (r itself is one, or is a period end)."""
    result = CAL.add_working_time(start, amount)
    assert result.tzinfo is UTC
    assert result > start
    assert CAL.is_working_moment(result - EPSILON)
    is_period_end = any(e == result for _, e in CAL.periods_on(local(result).date()))
    assert CAL.is_working_moment(result) or is_period_end


@given(moments, durations)
def test_between_inverts_add(start: datetime, amount: timedelta) -> None:
    result = CAL.add_working_time(start, amount)
    assert CAL.working_time_between(start, result) == amount


@given(moments, positive_durations)
def test_result_is_the_earliest_such_instant(start: datetime, amount: timedelta) -> None:
    result = CAL.add_working_time(start, amount)
    assert CAL.working_time_between(start, result - EPSILON) < amount


@given(moments, durations, durations)
def test_monotonic_in_amount(start: datetime, a: timedelta, b: timedelta) -> None:
    small, large = sorted((a, b))
    assert CAL.add_working_time(start, small) <= CAL.add_working_time(start, large)


@given(moments, durations, durations)
def test_additive_from_working_moments(start: datetime, a: timedelta, b: timedelta) -> None:
    working_start = CAL.next_working_moment(start)
    assert CAL.is_working_moment(working_start)
    via_a = CAL.add_working_time(working_start, a)
    assert CAL.add_working_time(via_a, b) == CAL.add_working_time(working_start, a + b)


@given(moments, durations, durations)
def test_additive_from_any_moment(start: datetime, a: timedelta, b: timedelta) -> None:
    # Holds for arbitrary starts too, because the result is the *earliest* instant.
    assert CAL.add_working_time(CAL.add_working_time(start, a), b) == CAL.add_working_time(
        start, a + b
    )


@given(moments, positive_durations)
def test_never_lands_on_weekend_or_full_holiday(start: datetime, amount: timedelta) -> None:
    day = local(CAL.add_working_time(start, amount)).date()
    assert day.weekday() < 5
    assert CAL.is_working_day(day)


@given(moments, moments)
def test_between_is_additive_and_bounded(a: datetime, b: datetime) -> None:
    lo, hi = sorted((a, b))
    mid = lo + (hi - lo) / 2
    total = CAL.working_time_between(lo, hi)
    assert total == CAL.working_time_between(lo, mid) + CAL.working_time_between(mid, hi)
    assert timedelta(0) <= total <= hi - lo
    assert CAL.working_time_between(hi, lo) == (timedelta(0) if hi > lo else total)


@given(moments)
def test_next_working_moment(start: datetime) -> None:
    nxt = CAL.next_working_moment(start)
    assert nxt >= start
    assert CAL.is_working_moment(nxt)
    assert CAL.working_time_between(start, nxt) == timedelta(0)
    if CAL.is_working_moment(start):
        assert nxt == start


@given(moments, st.integers(min_value=1, max_value=40))
def test_add_working_days_lands_on_period_end_of_working_day(start: datetime, n: int) -> None:
    due = CAL.add_working_days(start, n)
    day = local(due).date()
    assert CAL.is_working_day(day)
    assert due == CAL.periods_on(day)[-1][1]
    received = local(start).date()
    working_days = [
        received + timedelta(days=i)
        for i in range(1, (day - received).days + 1)
        if CAL.is_working_day(received + timedelta(days=i))
    ]
    assert len(working_days) == n
