"""Test data builders (valid TC numbers, phone numbers, intake requests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from models import Channel, Citizen, CitizenPhone, Language, PhoneType
from services.intake_request import IntakeRequest

IST = ZoneInfo("Europe/Istanbul")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An Istanbul wall-clock moment as the aware UTC instant the services take."""
    return datetime(year, month, day, hour, minute, tzinfo=IST).astimezone(UTC)


def valid_tc(seed: int) -> str:
    """A checksum-valid TC number derived from ``seed`` (different seeds, different numbers)."""
    base = f"{(seed % 900_000_000) + 100_000_000:09d}"
    d = [int(c) for c in base]
    d10 = (7 * (d[0] + d[2] + d[4] + d[6] + d[8]) - (d[1] + d[3] + d[5] + d[7])) % 10
    d11 = (sum(d) + d10) % 10
    return f"{base}{d10}{d11}"


def mobile(seed: int) -> str:
    """A valid Turkish mobile number written the way people say it: ``0532 xxx xx xx``."""
    digits = f"{seed % 10_000_000:07d}"
    return f"0532 {digits[:3]} {digits[3:5]} {digits[5:]}"


def mobile_e164(seed: int) -> str:
    return f"+90532{seed % 10_000_000:07d}"


def request(channel: Channel = Channel.DESK, **fields: Any) -> IntakeRequest:
    """A complete request: every field any channel may require is filled."""
    defaults: dict[str, Any] = {
        "description": "Sokağımızdaki çukur tehlike yaratıyor.",
        "ticket_type_code": "yol_bozuklugu",
        "first_name": "Ayşe",
        "last_name": "Yılmaz",
        "neighbourhood": None,
        "address_text": "Atatürk Caddesi No: 12",
        "social_handle": "@ayse_yilmaz",
    }
    defaults.update(fields)
    return IntakeRequest(channel=channel, **defaults)


def add_citizen(session: Session, now: datetime, e164: str, **fields: Any) -> Citizen:
    """A citizen row with one mobile phone ``e164`` (flushed), written directly for tests
    that need exact data the intake path would normalise (odd names, special groups)."""
    citizen = Citizen(
        preferred_language=fields.pop("preferred_language", Language.TR),
        special_groups=fields.pop("special_groups", []),
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(citizen)
    session.flush()
    session.add(
        CitizenPhone(
            citizen_id=citizen.id,
            e164=e164,
            raw=e164,
            phone_type=PhoneType.MOBILE,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return citizen
