"""SLA deadlines set at intake on the Turkish working calendar (R2.3, engineering.md §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from models import StaffUser
from services.intake import open_ticket
from tests.factories import request, valid_tc

IST = ZoneInfo("Europe/Istanbul")


def _local(moment: datetime) -> datetime:
    return moment.astimezone(IST).replace(tzinfo=None)


def _open_at(session: Session, agent: StaffUser, when: datetime, seed: int, code: str) -> datetime:
    utc = when.astimezone(UTC)
    return open_ticket(
        session, agent, utc, request(tc_number=valid_tc(seed), ticket_type_code=code)
    ).ticket.due_at


def test_friday_evening_request_is_due_after_the_weekend(
    session: Session, agent: StaffUser
) -> None:
    # genel: 8 working hours. Friday 27 Nov 2026 17:00 → 30 min Friday, then Monday
    # 08:30–12:30 (4 h) and, after the lunch break, 13:30–17:00 (3.5 h).
    due = _open_at(session, agent, datetime(2026, 11, 27, 17, 0, tzinfo=IST), 700, "genel")
    assert _local(due) == datetime(2026, 11, 30, 17, 0)


def test_kurban_bayrami_is_skipped(session: Session, agent: StaffUser) -> None:
    # Arife 26 May 2026 (half day, morning only), 27–30 May holiday, 31 May Sunday.
    due = _open_at(session, agent, datetime(2026, 5, 26, 11, 0, tzinfo=IST), 701, "genel")
    # 1.5 h on the arife morning, then 6.5 h on Monday 1 June from 08:30.
    assert _local(due) == datetime(2026, 6, 1, 16, 0)


def test_calendar_hours_ignore_holidays(session: Session, agent: StaffUser) -> None:
    # cenaze_hizmetleri runs on calendar hours (funerals do not wait for Monday).
    start = datetime(2026, 5, 27, 10, 0, tzinfo=IST)
    due = _open_at(session, agent, start, 702, "cenaze_hizmetleri")
    assert due > start.astimezone(UTC)
    assert (due - start.astimezone(UTC)).total_seconds() <= 24 * 3600


def test_right_to_information_has_a_legal_clock(session: Session, agent: StaffUser) -> None:
    start = datetime(2026, 5, 26, 9, 0, tzinfo=IST)
    ticket = open_ticket(
        session,
        agent,
        start.astimezone(UTC),
        request(tc_number=valid_tc(703), ticket_type_code="bilgi_edinme_hakki"),
    ).ticket
    assert ticket.legal_due_at is not None
    # 15 working days after 26 May 2026, skipping Kurban Bayramı: 19 June, end of day.
    assert _local(ticket.legal_due_at) == datetime(2026, 6, 19, 17, 30)
    assert ticket.due_at <= ticket.legal_due_at


def test_petition_has_thirty_day_clock(session: Session, agent: StaffUser) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=IST)
    ticket = open_ticket(
        session,
        agent,
        start.astimezone(UTC),
        request(tc_number=valid_tc(704), ticket_type_code="cimer"),
    ).ticket
    assert ticket.legal_due_at is not None
    assert _local(ticket.legal_due_at) == datetime(2026, 4, 1, 9, 0)
