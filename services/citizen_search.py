"""Find citizens and tickets from what a caller says (R2.4, R4.3): a phone number in any
Turkish form, a TC number, a reference code, or a name (Turkish-insensitive).

:func:`search` decides what the text is (:func:`classify`), then reads. Read-only. Ticket
hits are limited to what the actor may see (:func:`services.permissions.visible_tickets`);
citizen hits are for roles with personal-data access (the caller of this service checks).
Names match word by word on the start of a first or last name, with İ/I/ı/i, Ş/S, Ğ/G, Ü/U,
Ö/O and Ç/C folded on both sides, so "ISIK", "ışık" and "Işık" find each other.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from models import Citizen, CitizenPhone, Household, Neighbourhood, StaffUser, Ticket, TicketType
from services import reference_code
from services.citizen_history import TicketLine, mask_tc
from services.errors import DomainError, InvalidField
from services.identity import normalise_phone, normalise_tc_number
from services.permissions import visible_tickets
from services.turkish_text import fold_key

LIMIT = 20
NAME_MIN = 2  # characters of a name word


class QueryKind(enum.StrEnum):
    PHONE = "phone"
    TC = "tc"
    REFERENCE = "reference"
    NAME = "name"


@dataclass(frozen=True)
class CitizenHit:
    citizen_id: int
    name: str
    tc_masked: str | None
    phones: tuple[str, ...]  # E.164
    neighbourhood: str | None


@dataclass
class SearchResult:
    query: str
    kind: QueryKind
    citizens: list[CitizenHit] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    lines: tuple[TicketLine, ...] = ()  # filled by the caller when it wants SLA clocks


_DIGITS_ONLY = re.compile(r"^[\d\s().+-]+$")
_CODE = re.compile(r"^[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}$")


def classify(query: str) -> QueryKind:
    """What ``query`` looks like: a reference code (``XXXX-XXXX``), a TC number (11 digits,
    not starting with 0), a phone number (other digit strings, ``+``, spaces, brackets) or a
    name (anything else)."""
    text = query.strip()
    compact = re.sub(r"[\s().+-]", "", text)
    if _CODE.match(text.replace(" ", "")) and not compact.isdigit():
        try:
            reference_code.normalise(text)
            return QueryKind.REFERENCE
        except DomainError:
            pass
    if _DIGITS_ONLY.match(text):
        if len(compact) == 11 and compact.isdigit() and not compact.startswith("0"):
            return QueryKind.TC
        return QueryKind.PHONE
    return QueryKind.NAME


_FOLD = (
    ("İ", "i"),
    ("I", "i"),
    ("ı", "i"),
    ("Ş", "s"),
    ("ş", "s"),
    ("Ğ", "g"),
    ("ğ", "g"),
    ("Ü", "u"),
    ("ü", "u"),
    ("Ö", "o"),
    ("ö", "o"),
    ("Ç", "c"),
    ("ç", "c"),
    ("Â", "a"),
    ("â", "a"),
    ("Î", "i"),
    ("î", "i"),
    ("Û", "u"),
    ("û", "u"),
)


def folded(column: Any) -> ColumnElement[str]:
    """SQL: ``column`` folded like :func:`services.turkish_text.fold_key` for letters (the
    Turkish letters replaced before ``lower()``, which only knows ASCII on SQLite)."""
    expr: Any = func.coalesce(column, "")
    for letter, plain in _FOLD:
        expr = func.replace(expr, letter, plain)
    return func.lower(expr)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_condition(words: list[str]) -> ColumnElement[bool]:
    first, last = folded(Citizen.first_name), folded(Citizen.last_name)
    conditions = []
    for word in words:
        start = _like_escape(word) + "%"
        conditions.append(
            or_(
                first.like(start, escape="\\"),
                first.like("% " + start, escape="\\"),
                last.like(start, escape="\\"),
                last.like("% " + start, escape="\\"),
            )
        )
    return and_(*conditions)


def _citizens(session: Session, condition: ColumnElement[bool], limit: int) -> list[CitizenHit]:
    rows = list(
        session.execute(
            select(Citizen, Neighbourhood.name)
            .outerjoin(Household, Household.id == Citizen.household_id)
            .outerjoin(Neighbourhood, Neighbourhood.id == Household.neighbourhood_id)
            .where(condition)
            .order_by(Citizen.last_name, Citizen.first_name, Citizen.id)
            .limit(limit)
        )
    )
    ids = [c.id for c, _ in rows]
    phones: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for citizen_id, e164 in session.execute(
            select(CitizenPhone.citizen_id, CitizenPhone.e164)
            .where(CitizenPhone.citizen_id.in_(ids))
            .order_by(CitizenPhone.id)
        ):
            phones[citizen_id].append(e164)
    return [
        CitizenHit(c.id, c.display_name, mask_tc(c.tc_number), tuple(phones[c.id]), hood)
        for c, hood in rows
    ]


def _tickets(
    session: Session, actor: StaffUser, condition: ColumnElement[bool], limit: int
) -> list[Ticket]:
    return list(
        session.scalars(
            select(Ticket)
            .join(TicketType, TicketType.id == Ticket.ticket_type_id)
            .where(condition, visible_tickets(actor))
            .order_by(Ticket.received_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
    )


def search(
    session: Session, actor: StaffUser, query: str, *, with_citizens: bool, limit: int = LIMIT
) -> SearchResult:
    """Citizens and tickets matching ``query`` (see the module doc).

    ``with_citizens`` false: only tickets (roles without personal-data access). Raises a
    typed :class:`DomainError` when the text is a malformed phone or TC number or a name
    too short to search (shown to the staff member as it is).
    """
    kind = classify(query)
    result = SearchResult(query=query.strip(), kind=kind)
    if kind is QueryKind.REFERENCE:
        code = reference_code.normalise(query)
        result.tickets = _tickets(session, actor, Ticket.reference_code == code, limit)
        if with_citizens:
            ids = [t.citizen_id for t in result.tickets if t.citizen_id is not None]
            if ids:
                result.citizens = _citizens(session, Citizen.id.in_(ids), limit)
        return result
    if kind is QueryKind.TC:
        tc_number = normalise_tc_number(query)
        citizen_ids = select(Citizen.id).where(Citizen.tc_number == tc_number)
    elif kind is QueryKind.PHONE:
        e164 = normalise_phone(query).e164
        citizen_ids = select(CitizenPhone.citizen_id).where(CitizenPhone.e164 == e164)
    else:
        words = [w for w in fold_key(query).split() if len(w) >= NAME_MIN]
        if not words:
            raise InvalidField(
                f"Aramak için en az {NAME_MIN} harflik bir ad yazın.",
                f"Type a name of at least {NAME_MIN} letters to search.",
                field="q",
            )
        citizen_ids = select(Citizen.id).where(_name_condition(words))
    if with_citizens:
        result.citizens = _citizens(session, Citizen.id.in_(citizen_ids), limit)
    result.tickets = _tickets(session, actor, Ticket.citizen_id.in_(citizen_ids), limit)
    return result
