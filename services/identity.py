"""Validation and normalisation of identity data: TC numbers, phone numbers, e-mail addresses.

Pure functions: no database. Each either returns the canonical form or raises a typed
:class:`~services.errors.DomainError`; input is never silently altered into something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, number_type
from stdnum.exceptions import ValidationError
from stdnum.tr import tckimlik

from models.enums import PhoneType
from services.errors import InvalidEmail, InvalidPhoneNumber, InvalidTcNumber

_WHITESPACE = re.compile(r"[\s\u00a0]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ANONYMOUS_CALLER_IDS = frozenset({"", "anonymous", "unknown", "restricted", "private", "gizli"})


def normalise_tc_number(raw: str) -> str:
    """Return the 11-digit TC identity number or raise :class:`InvalidTcNumber`.

    Spaces are allowed between digits; anything else that is not a digit is refused. The
    checksum proves the format only, not that the person exists.
    """
    compact = _WHITESPACE.sub("", raw or "")
    if not compact:
        raise InvalidTcNumber("TC kimlik numarası boş.", "The TC identity number is empty.")
    if not compact.isascii() or not compact.isdigit():
        raise InvalidTcNumber(
            "TC kimlik numarası yalnızca rakamlardan oluşmalıdır.",
            "The TC identity number must contain digits only.",
            value=raw,
        )
    if len(compact) != 11:
        raise InvalidTcNumber(
            f"TC kimlik numarası 11 haneli olmalıdır ({len(compact)} hane girildi).",
            f"The TC identity number must have 11 digits ({len(compact)} given).",
            value=raw,
        )
    try:
        return str(tckimlik.validate(compact))
    except ValidationError as exc:
        raise InvalidTcNumber(
            "TC kimlik numarası geçersiz (kontrol haneleri tutmuyor).",
            "The TC identity number is not valid (check digits do not match).",
            value=raw,
        ) from exc


@dataclass(frozen=True)
class NormalisedPhone:
    e164: str
    raw: str
    phone_type: PhoneType


def normalise_phone(raw: str, region: str = "TR") -> NormalisedPhone:
    """Parse a phone number written in any usual Turkish form into E.164.

    ``0532 123 45 67``, ``(532) 123 4567``, ``+90 532…``, ``0090 532…`` all give
    ``+905321234567``. Raises :class:`InvalidPhoneNumber` for anything that is not a valid
    number (including withheld caller IDs); the raw form is kept beside the E.164 one.
    """
    text = (raw or "").strip()
    if text.lower() in ANONYMOUS_CALLER_IDS:
        raise InvalidPhoneNumber(
            "Telefon numarası yok (gizli numara).",
            "No phone number (withheld caller ID).",
            value=raw,
        )
    if not text.isprintable() or len(text) > 40:
        raise InvalidPhoneNumber(
            "Telefon numarası okunamadı.", "The phone number could not be read.", value=raw
        )
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(
            f"Telefon numarası anlaşılamadı: {text}",
            f"The phone number could not be understood: {text}",
            value=raw,
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(
            f"Geçerli bir telefon numarası değil: {text}",
            f"Not a valid phone number: {text}",
            value=raw,
        )
    kind = number_type(parsed)
    if kind in (PhoneNumberType.MOBILE,):
        phone_type = PhoneType.MOBILE
    elif kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        phone_type = PhoneType.HOME
    else:
        phone_type = PhoneType.OTHER
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    return NormalisedPhone(e164=e164, raw=text, phone_type=phone_type)


def is_mobile(e164: str) -> bool:
    """True when SMS can reach the number (Turkish or foreign mobile)."""
    return number_type(phonenumbers.parse(e164, None)) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def normalise_email(raw: str) -> str:
    """Return the trimmed address with a lower-cased domain, or raise :class:`InvalidEmail`."""
    text = (raw or "").strip()
    if not _EMAIL.match(text) or len(text) > 254:
        raise InvalidEmail(
            f"Geçerli bir e-posta adresi değil: {text}",
            f"Not a valid e-mail address: {text}",
            value=raw,
        )
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"
