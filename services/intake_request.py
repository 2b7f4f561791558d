"""What a channel hands to the one intake path, and how it is validated (R1, R2.1).

Channel code fills an :class:`IntakeRequest` with what it parsed (raw strings are fine) and
calls :func:`services.intake.open_ticket`. :func:`validate` turns it into a
:class:`ValidIntake` or raises a typed :class:`~services.errors.DomainError` before anything
is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Language, Neighbourhood, TicketKind, TicketType
from services.citizens import CitizenIdentity
from services.errors import InvalidField, MissingField, UnknownEntity
from services.identity import normalise_email, normalise_phone, normalise_tc_number
from services.turkish_text import fold_key, tr_title

DEFAULT_TICKET_TYPE = "genel"  # unclassified: the coordination desk classifies it (R3.1)
MAX_DESCRIPTION = 10_000
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class IntakeRequest:
    """One contact as a channel received it. Every field except ``channel`` is optional;
    which ones are required depends on the channel (:data:`REQUIRED_BY_CHANNEL`)."""

    channel: Channel
    description: str = ""
    ticket_type_code: str | None = None
    kind: TicketKind | None = None
    citizen_id: int | None = None
    tc_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    social_handle: str | None = None
    language: Language | None = None
    neighbourhood: str | None = None  # name of the mahalle
    address_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    place_of_application: str | None = None
    external_ref: str | None = None  # provider message id, call id, CİMER number...
    received_at: datetime | None = None  # when the contact happened (default: now)
    resolved_at_first_contact: bool = False
    resolution: str | None = None


# Fields a channel cannot do without. "contact" = at least one way to reach or identify the
# person (TC number, phone, e-mail, social handle or a known citizen id).
REQUIRED_BY_CHANNEL: dict[Channel, frozenset[str]] = {
    # A caller may withhold their number: the call is still a ticket (the agent fills in).
    Channel.PHONE: frozenset(),
    Channel.SWITCHBOARD: frozenset(),
    Channel.DESK: frozenset({"description", "first_name", "last_name", "contact"}),
    Channel.WEB: frozenset({"description", "first_name", "last_name", "contact"}),
    Channel.EMAIL: frozenset({"description", "email"}),
    Channel.SMS: frozenset({"description", "phone", "tc_number"}),
    Channel.SOCIAL_MEDIA: frozenset({"description", "social_handle"}),
    Channel.PETITION: frozenset({"description", "first_name", "last_name", "contact"}),
    Channel.FIELD_TEAM: frozenset({"description", "place"}),
    Channel.NEIGHBOURHOOD_MEETING: frozenset({"description", "neighbourhood"}),
    Channel.MAYORS_OFFICE: frozenset({"description", "contact"}),
}

_FIELD_NAMES_TR = {
    "description": "açıklama",
    "first_name": "ad",
    "last_name": "soyad",
    "contact": "TC kimlik no, telefon, e-posta veya sosyal medya hesabı",
    "email": "e-posta",
    "phone": "telefon",
    "tc_number": "TC kimlik no",
    "social_handle": "sosyal medya hesabı",
    "place": "mahalle, adres veya konum",
    "neighbourhood": "mahalle",
    "resolution": "çözüm açıklaması",
}


@dataclass(frozen=True)
class ValidIntake:
    """A validated request: canonical values and the catalogue rows it refers to."""

    channel: Channel
    description: str
    ticket_type: TicketType
    kind: TicketKind
    identity: CitizenIdentity
    social_handle: str | None
    language: Language | None
    neighbourhood: Neighbourhood | None
    address_text: str | None
    place_key: str | None
    latitude: float | None
    longitude: float | None
    place_of_application: str | None
    external_ref: str | None
    received_at: datetime
    resolved_at_first_contact: bool
    resolution: str | None

    @property
    def contact_name(self) -> str | None:
        parts = [p for p in (self.identity.first_name, self.identity.last_name) if p]
        return " ".join(parts) or None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def _missing(field: str) -> MissingField:
    return MissingField(
        f"Bu kanal için zorunlu alan eksik: {_FIELD_NAMES_TR.get(field, field)}.",
        f"A required field for this channel is missing: {field}.",
        field=field,
    )


def validate(session: Session, now: datetime, request: IntakeRequest) -> ValidIntake:
    """Check and normalise ``request``; raise a typed error on the first problem found.

    Reads the catalogue (ticket type, neighbourhood) but writes nothing.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    channel = Channel(request.channel)
    description = (request.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidField(
            f"Açıklama çok uzun (en fazla {MAX_DESCRIPTION} karakter).",
            f"The description is too long (at most {MAX_DESCRIPTION} characters).",
            field="description",
        )
    tc = normalise_tc_number(request.tc_number) if request.tc_number else None
    phone = normalise_phone(request.phone) if request.phone and request.phone.strip() else None
    email = normalise_email(request.email) if request.email and request.email.strip() else None
    first = tr_title(f) if (f := _clean(request.first_name)) else None
    last = tr_title(s) if (s := _clean(request.last_name)) else None
    handle = _clean(request.social_handle)
    address = _clean(request.address_text)
    lat, lon = request.latitude, request.longitude
    if (lat is None) != (lon is None):
        raise InvalidField(
            "Konum için enlem ve boylam birlikte verilmelidir.",
            "Latitude and longitude must be given together.",
            field="location",
        )
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidField("Konum geçersiz.", "The location is out of range.", field="location")

    neighbourhood = None
    if name := _clean(request.neighbourhood):
        neighbourhood = session.scalar(select(Neighbourhood).where(Neighbourhood.name == name))
        if neighbourhood is None:
            raise UnknownEntity(
                f"Mahalle bulunamadı: {name}.",
                f"Unknown neighbourhood: {name}.",
                field="neighbourhood",
            )

    present = {
        "description": bool(description),
        "first_name": first is not None,
        "last_name": last is not None,
        "contact": any((tc, phone, email, handle, request.citizen_id)),
        "email": email is not None,
        "phone": phone is not None,
        "tc_number": tc is not None,
        "social_handle": handle is not None,
        "place": any((neighbourhood, address, lat is not None)),
        "neighbourhood": neighbourhood is not None,
    }
    for required in sorted(REQUIRED_BY_CHANNEL[channel]):
        if not present[required]:
            raise _missing(required)

    code = _clean(request.ticket_type_code) or DEFAULT_TICKET_TYPE
    ticket_type = session.scalar(select(TicketType).where(TicketType.code == code))
    if ticket_type is None or not ticket_type.is_active:
        raise UnknownEntity(
            f"Başvuru türü bulunamadı: {code}.",
            f"Unknown ticket type: {code}.",
            field="ticket_type",
        )

    resolution = _clean(request.resolution)
    if request.resolved_at_first_contact and not resolution:
        raise _missing("resolution")

    received_at = request.received_at or now
    if received_at.tzinfo is None:
        raise InvalidField(
            "Başvuru zamanı saat dilimi içermeli.",
            "received_at must be timezone-aware.",
            field="received_at",
        )
    if received_at > now + CLOCK_SKEW:
        raise InvalidField(
            "Başvuru zamanı gelecekte olamaz.",
            "received_at cannot be in the future.",
            field="received_at",
        )

    external_ref = _clean(request.external_ref)
    if external_ref is not None and len(external_ref) > 120:
        raise InvalidField(
            "Dış referans çok uzun.", "external_ref is too long.", field="external_ref"
        )

    return ValidIntake(
        channel=channel,
        description=description,
        ticket_type=ticket_type,
        kind=TicketKind(request.kind) if request.kind else ticket_type.default_kind,
        identity=CitizenIdentity(
            citizen_id=request.citizen_id,
            tc_number=tc,
            phone=phone,
            email=email,
            first_name=first,
            last_name=last,
            language=Language(request.language) if request.language else None,
        ),
        social_handle=handle,
        language=Language(request.language) if request.language else None,
        neighbourhood=neighbourhood,
        address_text=address,
        place_key=fold_key(address)[:200] if address else None,
        latitude=lat,
        longitude=lon,
        place_of_application=_clean(request.place_of_application),
        external_ref=external_ref,
        received_at=received_at,
        resolved_at_first_contact=request.resolved_at_first_contact,
        resolution=resolution,
    )
