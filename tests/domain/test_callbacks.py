"""Callback tasks (FastAGI callback_request, AMI listener) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CallbackReason, CallbackStatus, CallbackTask, Citizen, Language
from services.callbacks import (
    next_staffed_moment,
    pending_callbacks,
    request_callback,
)
from services.errors import InvalidField, InvalidPhoneNumber, MissingField, UnknownEntity
from services.service_hours import StaffedHours, parse_service_hours
from tests.factories import mobile, mobile_e164

IST = ZoneInfo("Europe/Istanbul")


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(CallbackTask)) or 0


def test_abandoned_call_becomes_one_pending_task(session: Session, now: datetime) -> None:
    task = request_callback(
        session,
        now,
        call_id="1764300000.11",
        raw_phone="0505 361 88 77",
        reason="abandoned",
        language="tr",
        queue="cagri-merkezi",
    )
    assert task.id is not None and task.status is CallbackStatus.PENDING
    assert task.phone_e164 == "+905053618877" and task.phone_raw == "0505 361 88 77"
    assert task.due_at == now and task.requested_at == now and task.attempts == 0
    ayse = session.scalar(select(Citizen).where(Citizen.tc_number == "41339237316"))
    assert ayse is not None and task.citizen_id == ayse.id  # the phone identifies her
    again = request_callback(
        session,
        now + timedelta(seconds=5),
        call_id="1764300000.11",
        raw_phone="0532 999 99 99",
        reason=CallbackReason.ABANDONED,
        language="en",
    )
    assert again.id == task.id and again.phone_e164 == "+905053618877"
    other_reason = request_callback(
        session,
        now,
        call_id="1764300000.11",
        raw_phone="05053618877",
        reason="ivr_request",
        language=Language.TR,
    )
    assert other_reason.id != task.id


def test_withheld_number_cannot_be_called_back(session: Session, now: datetime) -> None:
    before = _count(session)
    for raw in ("anonymous", "", None, "0532\udcff1234567"):
        with pytest.raises(InvalidPhoneNumber):
            request_callback(
                session, now, call_id="c-w", raw_phone=raw, reason="abandoned", language="tr"
            )
    assert _count(session) == before


def test_bad_arguments_are_typed_errors(session: Session, now: datetime) -> None:
    with pytest.raises(MissingField):
        request_callback(
            session, now, call_id=" ", raw_phone=mobile(1), reason="abandoned", language="tr"
        )
    with pytest.raises(InvalidField) as bad_reason:
        request_callback(
            session, now, call_id="c-b", raw_phone=mobile(1), reason="later", language="tr"
        )
    assert "geri arama" in bad_reason.value.message("tr")
    with pytest.raises(InvalidField):
        request_callback(
            session, now, call_id="c-b", raw_phone=mobile(1), reason="abandoned", language="de"
        )
    with pytest.raises(UnknownEntity):
        request_callback(
            session,
            now,
            call_id="c-b",
            raw_phone=mobile(1),
            reason="abandoned",
            language="tr",
            citizen_id=10**9,
        )


def _at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=IST).astimezone(UTC)


def test_out_of_hours_request_is_due_when_staff_arrive(session: Session) -> None:
    hours = parse_service_hours("09:00-24:00")
    task = request_callback(
        session,
        _at(2, 30),
        call_id="c-night",
        raw_phone=mobile(2),
        reason="out_of_hours",
        language="en",
        staffed_hours=hours,
    )
    assert task.due_at == _at(9) and task.language is Language.EN
    day = request_callback(
        session,
        _at(23, 59),
        call_id="c-day",
        raw_phone=mobile(3),
        reason="ivr_request",
        language="tr",
        staffed_hours=hours,
    )
    assert day.due_at == _at(23, 59)


def test_staffed_hours_rules() -> None:
    assert parse_service_hours("24/7") is None
    assert next_staffed_moment(_at(3), None) == _at(3)
    nine_to_five = StaffedHours(time(9), time(17))
    assert next_staffed_moment(_at(17), nine_to_five) == _at(9, day=25)
    assert next_staffed_moment(_at(8, 59), nine_to_five) == _at(9)
    night = parse_service_hours("22:00-06:00")  # over midnight
    assert night is not None
    assert next_staffed_moment(_at(23), night) == _at(23)
    assert next_staffed_moment(_at(5, 59), night) == _at(5, 59)
    assert next_staffed_moment(_at(12), night) == _at(22)
    for bad in ("9-17", "25:00-26:00", "09:00-24:30", "sabah"):
        with pytest.raises(InvalidField):
            parse_service_hours(bad)


def test_pending_callbacks_longest_due_first(session: Session, now: datetime) -> None:
    hours = StaffedHours(time(9), time(0))
    late = request_callback(
        session,
        _at(1),
        call_id="p-1",
        raw_phone=mobile(11),
        reason="out_of_hours",
        language="tr",
        staffed_hours=hours,
    )
    early = request_callback(
        session,
        _at(9, 30),
        call_id="p-2",
        raw_phone=mobile(12),
        reason="abandoned",
        language="tr",
    )
    done = request_callback(
        session,
        _at(9, 10),
        call_id="p-3",
        raw_phone=mobile(13),
        reason="abandoned",
        language="tr",
    )
    done.status = CallbackStatus.DONE
    session.flush()
    ids = [t.id for t in pending_callbacks(session, 100)]
    assert ids.index(late.id) < ids.index(early.id) and done.id not in ids
    due_now = [t.id for t in pending_callbacks(session, 100, due_before=_at(9, 15))]
    assert late.id in due_now and early.id not in due_now
    assert late.phone_e164 == mobile_e164(11)
