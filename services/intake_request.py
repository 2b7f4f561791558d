"""What a channel hands to the one intake path, and how it is validated (R1, R2.1).

Channel code fills an :class:`IntakeRequest` with what it parsed (raw strings are fine) and
calls :func:`services.intake.open_ticket`, which turns it into a :class:`ValidIntake`
(:func:`check`, then :func:`complete` on the row of :func:`catalogue_query`) or raises a
typed :class:`~services.errors.DomainError` before anything is written. The catalogue
(ticket type, neighbourhood) is read afresh for every contact, in one statement that the
intake path shares with its locks: no cache can go stale after a catalogue edit, and no
extra round trip is spent on it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, literal_column, null, select

from models import (
    Channel,
    ExternalInstitution,
    Language,
    LegalClock,
    Neighbourhood,
    SlaUnit,
    TicketKind,
    TicketType,
)
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
    # Hold the acknowledgement until then (None: send at once). A call's placeholder ticket
    # uses it: the agent's own ticket usually replaces the placeholder first (call_desk).
    acknowledge_at: datetime | None = None


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
class TicketTypeInfo:
    """The catalogue row of a ticket type as read for one contact (a value, not an ORM
    object): what validation, routing and the SLA need."""

    id: int
    code: str
    default_kind: TicketKind
    department_id: int | None
    external_institution_id: int | None
    sla_hours: int
    sla_unit: SlaUnit
    legal_clock: LegalClock


@dataclass(frozen=True)
class ValidIntake:
    """A validated request: canonical values and the catalogue rows it refers to."""

    channel: Channel
    description: str
    ticket_type: TicketTypeInfo
    institution: InstitutionInfo | None  # the external institution the type is referred to
    kind: TicketKind
    identity: CitizenIdentity
    social_handle: str | None
    language: Language | None
    neighbourhood_id: int | None
    address_text: str | None
    place_key: str | None
    latitude: float | None
    longitude: float | None
    place_of_application: str | None
    external_ref: str | None
    received_at: datetime
    resolved_at_first_contact: bool
    resolution: str | None
    acknowledge_at: datetime | None

    @property
    def contact_name(self) -> str | None:
        parts = [p for p in (self.identity.first_name, self.identity.last_name) if p]
        return " ".join(parts) or None


@dataclass(frozen=True)
class CheckedRequest:
    """A request whose own fields are checked and normalised (no database needed yet);
    :func:`catalogue_query` and :func:`complete` finish the validation."""

    request: IntakeRequest
    channel: Channel
    description: str
    identity: CitizenIdentity
    social_handle: str | None
    address_text: str | None
    latitude: float | None
    longitude: float | None
    neighbourhood_name: str | None
    ticket_type_code: str
    external_ref: str | None


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


def check(now: datetime, request: IntakeRequest) -> CheckedRequest:
    """The checks that need no database, in the order they are applied."""
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
    lat, lon = request.latitude, request.longitude
    if (lat is None) != (lon is None):
        raise InvalidField(
            "Konum için enlem ve boylam birlikte verilmelidir.",
            "Latitude and longitude must be given together.",
            field="location",
        )
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidField("Konum geçersiz.", "The location is out of range.", field="location")
    language = Language(request.language) if request.language else None
    return CheckedRequest(
        request=request,
        channel=channel,
        description=description,
        identity=CitizenIdentity(
            citizen_id=request.citizen_id,
            tc_number=tc,
            phone=phone,
            email=email,
            first_name=first,
            last_name=last,
            language=language,
        ),
        social_handle=_clean(request.social_handle),
        address_text=_clean(request.address_text),
        latitude=lat,
        longitude=lon,
        neighbourhood_name=_clean(request.neighbourhood),
        ticket_type_code=_clean(request.ticket_type_code) or DEFAULT_TICKET_TYPE,
        external_ref=_clean(request.external_ref),
    )


@dataclass(frozen=True)
class InstitutionInfo:
    """The external institution a type is referred to, as read with the type."""

    id: int
    code: str
    name_tr: str
    name_en: str
    phone: str | None


_TYPE_FIELDS = tuple(f.name for f in fields(TicketTypeInfo))
_INSTITUTION_FIELDS = tuple(f.name for f in fields(InstitutionInfo))


def catalogue_query(
    *, neighbourhood: bool, also: tuple[ColumnElement[Any], ...] = ()
) -> Select[Any]:
    """One statement that returns exactly one row: the active ticket type named by the
    parameter ``type_code`` (``tt_*`` columns, NULL when unknown or inactive) with its
    external institution (``ei_*``), the id of the neighbourhood named by
    ``neighbourhood_name`` (with ``neighbourhood``; else NULL) and the columns ``also``, so
    that a caller can read other things in the same round trip. Build it once per shape and
    execute it with :func:`catalogue_params`."""
    types, institutions = TicketType.__table__, ExternalInstitution.__table__
    hood: ColumnElement[Any] = (
        select(Neighbourhood.id)
        .where(Neighbourhood.name == bindparam("neighbourhood_name"))
        .scalar_subquery()
        if neighbourhood
        else null()
    )
    one = select(literal_column("1").label("one")).subquery("one")
    return (
        select(
            *(types.c[name].label(f"tt_{name}") for name in _TYPE_FIELDS),
            *(institutions.c[name].label(f"ei_{name}") for name in _INSTITUTION_FIELDS),
            hood.label("neighbourhood_id"),
            *also,
        )
        .select_from(one)
        .outerjoin(
            types,
            and_(types.c.code == bindparam("type_code"), types.c.is_active.is_(True)),
        )
        .outerjoin(institutions, institutions.c.id == types.c.external_institution_id)
    )


def catalogue_params(checked: CheckedRequest) -> dict[str, Any]:
    """The parameters of :func:`catalogue_query` for ``checked``."""
    params: dict[str, Any] = {"type_code": checked.ticket_type_code}
    if checked.neighbourhood_name is not None:
        params["neighbourhood_name"] = checked.neighbourhood_name
    return params


def complete(checked: CheckedRequest, now: datetime, row: Row[Any]) -> ValidIntake:
    """Finish validating ``checked`` with the ``row`` of :func:`catalogue_query`."""
    request = checked.request
    identity = checked.identity
    neighbourhood_id = row.neighbourhood_id
    if checked.neighbourhood_name is not None and neighbourhood_id is None:
        name = checked.neighbourhood_name
        raise UnknownEntity(
            f"Mahalle bulunamadı: {name}.",
            f"Unknown neighbourhood: {name}.",
            field="neighbourhood",
        )
    handle, address = checked.social_handle, checked.address_text
    present = {
        "description": bool(checked.description),
        "first_name": identity.first_name is not None,
        "last_name": identity.last_name is not None,
        "contact": any(
            (identity.tc_number, identity.phone, identity.email, handle, request.citizen_id)
        ),
        "email": identity.email is not None,
        "phone": identity.phone is not None,
        "tc_number": identity.tc_number is not None,
        "social_handle": handle is not None,
        "place": any((neighbourhood_id, address, checked.latitude is not None)),
        "neighbourhood": neighbourhood_id is not None,
    }
    for required in sorted(REQUIRED_BY_CHANNEL[checked.channel]):
        if not present[required]:
            raise _missing(required)

    if row.tt_id is None:
        code = checked.ticket_type_code
        raise UnknownEntity(
            f"Başvuru türü bulunamadı: {code}.",
            f"Unknown ticket type: {code}.",
            field="ticket_type",
        )
    values = row._mapping
    ticket_type = TicketTypeInfo(**{name: values[f"tt_{name}"] for name in _TYPE_FIELDS})
    institution = (
        InstitutionInfo(**{name: values[f"ei_{name}"] for name in _INSTITUTION_FIELDS})
        if values["ei_id"] is not None
        else None
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

    external_ref = checked.external_ref
    if external_ref is not None and len(external_ref) > 120:
        raise InvalidField(
            "Dış referans çok uzun.", "external_ref is too long.", field="external_ref"
        )

    return ValidIntake(
        channel=checked.channel,
        description=checked.description,
        ticket_type=ticket_type,
        institution=institution,
        kind=TicketKind(request.kind) if request.kind else ticket_type.default_kind,
        identity=identity,
        social_handle=handle,
        language=identity.language,
        neighbourhood_id=neighbourhood_id,
        address_text=address,
        place_key=fold_key(address)[:200] if address else None,
        latitude=checked.latitude,
        longitude=checked.longitude,
        place_of_application=_clean(request.place_of_application),
        external_ref=external_ref,
        received_at=received_at,
        resolved_at_first_contact=request.resolved_at_first_contact,
        resolution=resolution,
        acknowledge_at=request.acknowledge_at,
    )
