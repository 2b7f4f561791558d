"""Finding or creating the citizen behind a contact (R2.4, R6.1).

Rules, in order:
1. An explicit citizen id (chosen by staff) wins; a TC number that contradicts it is refused.
2. A TC number identifies exactly one citizen; an unknown TC creates one.
3. Without a TC number, a phone number shared by exactly one citizen identifies them; a
   phone shared by several people identifies nobody (all are recorded as candidates).
4. Without either, an e-mail address known for exactly one citizen identifies them.
Two different TC numbers are never merged, and a match found only by phone is recorded as
a :class:`~models.PossibleCitizenMatch` for staff to review, never merged automatically.

The intake path resolves citizens with Core statements built once per process (one look-up
by id, TC number and phone together), and works with :class:`KnownCitizen` values rather
than ORM objects; an ORM object of the same citizen in the session is kept in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Executable,
    Integer,
    Select,
    bindparam,
    cast,
    exists,
    false,
    insert,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import Citizen, CitizenPhone, Language
from services.errors import IdentityConflict, UnknownEntity
from services.identity import NormalisedPhone
from services.locks import citizen_lock, uses_locks


@dataclass(frozen=True)
class CitizenIdentity:
    """Validated identity data from one contact."""

    citizen_id: int | None = None
    tc_number: str | None = None
    phone: NormalisedPhone | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language: Language | None = None
    household_id: int | None = None


@dataclass(frozen=True)
class KnownCitizen:
    """A citizen's row as intake uses it (read with the look-up; not an ORM object)."""

    id: int
    tc_number: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    preferred_language: Language
    household_id: int | None
    consent_sms: bool


@dataclass
class CitizenResolution:
    citizen: KnownCitizen | None
    match: str  # "id", "tc", "phone", "email", "new", "ambiguous", "none"
    candidates: list[KnownCitizen] = field(default_factory=list)


_BY_PHONE = (
    select(Citizen)
    .join(CitizenPhone, CitizenPhone.citizen_id == Citizen.id)
    .where(CitizenPhone.e164 == bindparam("e164"))
    .order_by(Citizen.id)
)
_BY_TC = select(Citizen).where(Citizen.tc_number == bindparam("tc_number"))


def citizens_by_phone(session: Session, e164: str) -> list[Citizen]:
    """Citizens that have ``e164`` among their phones, oldest first."""
    return list(session.scalars(_BY_PHONE, {"e164": e164}))


def citizen_by_tc(session: Session, tc_number: str) -> Citizen | None:
    """The citizen holding ``tc_number``, if any."""
    return session.scalars(_BY_TC, {"tc_number": tc_number}).first()


def resolve_citizen(
    session: Session, now: datetime, identity: CitizenIdentity
) -> CitizenResolution:
    """Find or create the citizen for ``identity`` and bring their record up to date.

    Guarantees: never assigns a TC number that another citizen holds, never overwrites a
    known name or TC number, adds a new phone to the identified citizen (else marks it seen
    now), writes at once (ids are available; the session's pending changes are flushed
    first) but does not commit. The citizen is looked up by id, TC number and phone in one
    statement, which also locks the citizens it finds (PostgreSQL; until the transaction
    ends, in id order): what the caller reads next includes the work of any transaction
    that held one of them before. Call it after locking the identity keys
    (:mod:`services.locks`): what the look-up reads decides what is written.
    """
    return settle(session, now, identity, look_up(session, identity))


@dataclass(frozen=True)
class CitizenLookup:
    """What :func:`look_up` read: the citizens named by the identity's id, TC number or
    phone (oldest first, each with whether they hold that phone) and the caller's column."""

    found: list[tuple[KnownCitizen, bool]]
    also: Any = None


def look_up(
    session: Session,
    identity: CitizenIdentity,
    *,
    also: ColumnElement[Any] | None = None,
    also_params: Mapping[str, Any] | None = None,
) -> CitizenLookup:
    """The reading half of :func:`resolve_citizen` (writes nothing; locks as it does).

    ``also``, a scalar subquery built once by the caller (parameters ``also_params``), is
    read in the same statement, so that a caller that must read something after its locks
    and before any write spends no round trip of its own on it.
    """
    session.flush()  # the look-up sees what the caller has pending
    conn = session.connection()
    by_phone, by_tc = identity.phone is not None, bool(identity.tc_number)
    by_id = identity.citizen_id is not None
    if not (by_phone or by_tc or by_id or also is not None):
        return CitizenLookup([])
    params: dict[str, Any] = dict(also_params or {})
    if identity.phone is not None:
        params["e164"] = identity.phone.e164
    if by_tc:
        params["tc_number"] = identity.tc_number
    if by_id:
        params["citizen_id"] = identity.citizen_id
    statement = _lookup_statement(by_phone, by_tc, by_id, uses_locks(session), also)
    found, extra = [], None
    for row in conn.execute(statement, params):
        if row.id is None:  # the row that carries ``also``
            extra = row.also
        else:
            found.append((_known(row._mapping), bool(row.holds_phone)))
    found.sort(key=lambda pair: pair[0].id)
    return CitizenLookup(found, extra)


def settle(
    session: Session, now: datetime, identity: CitizenIdentity, lookup: CitizenLookup
) -> CitizenResolution:
    """The deciding and writing half of :func:`resolve_citizen`, on what :func:`look_up`
    read for the same ``identity`` in the same transaction."""
    conn = session.connection()
    resolution, holds_phone = _identify(conn, identity, lookup.found, uses_locks(session))
    if resolution.citizen is None and resolution.match == "new":
        resolution.citizen = _create(conn, now, identity)
    elif resolution.citizen is not None:
        resolution.citizen = _update(session, conn, now, resolution.citizen, identity, holds_phone)
    return resolution


_COLUMNS = (
    Citizen.id,
    Citizen.tc_number,
    Citizen.first_name,
    Citizen.last_name,
    Citizen.email,
    Citizen.preferred_language,
    Citizen.household_id,
    Citizen.consent_sms,
)


def _locking(query: Select[*tuple[Any, ...]], locking: bool) -> Select[*tuple[Any, ...]]:
    """``query`` (ordered by citizen id) with each citizen it returns locked, in id order."""
    if not locking:
        return query
    found = query.subquery("found")
    return select(*found.c, citizen_lock(found.c.id).label("locked"))


@cache
def _lookup_statement(
    by_phone: bool, by_tc: bool, by_id: bool, locking: bool, also: ColumnElement[Any] | None
) -> Executable:
    """The citizens named by a phone, a TC number and/or an id, oldest first, each with
    whether they hold that phone (and, with ``locking``, locked), plus one row (``id`` NULL)
    carrying the scalar ``also``: one statement, each branch an index look-up (built once
    per shape, so that executing it costs no statement building or cache-key work)."""
    citizens = _citizens_statement(by_phone, by_tc, by_id, locking)
    if also is None:
        assert citizens is not None
        return citizens
    if citizens is None:
        return select(null().label("id"), also.label("also"))
    found = citizens.subquery("citizens")
    return union_all(
        select(*found.c, cast(null(), also.type).label("also")),
        select(*(null().label(column.key) for column in found.c), also.label("also")),
    )


def _citizens_statement(
    by_phone: bool, by_tc: bool, by_id: bool, locking: bool
) -> Select[*tuple[Any, ...]] | None:
    if not (by_phone or by_tc or by_id):
        return None
    e164: BindParameter[str] = bindparam("e164")
    other = Citizen.__table__.alias("by_tc")
    branches: list[Select[*tuple[Any, ...]]] = []
    if by_phone:
        branches.append(select(CitizenPhone.citizen_id).where(CitizenPhone.e164 == e164))
    if by_tc:
        branches.append(select(other.c.id).where(other.c.tc_number == bindparam("tc_number")))
    if by_id:
        branches.append(select(bindparam("citizen_id", type_=Integer)))
    holds = (
        exists().where(CitizenPhone.citizen_id == Citizen.id, CitizenPhone.e164 == e164)
        if by_phone
        else false()
    )
    named: Any = branches[0] if len(branches) == 1 else union_all(*branches)
    query = (
        select(*_COLUMNS, holds.label("holds_phone"))
        .where(Citizen.id.in_(named))
        .order_by(Citizen.id)
    )
    return _locking(query, locking)


_BY_EMAIL = {
    locking: _locking(
        select(*_COLUMNS).where(Citizen.email == bindparam("email")).order_by(Citizen.id),
        locking,
    )
    for locking in (False, True)
}


_KNOWN_FIELDS = tuple(column.key for column in _COLUMNS)  # KnownCitizen's fields


def _known(row: Mapping[Any, Any]) -> KnownCitizen:
    """The citizen of a row of :data:`_COLUMNS` (or of the values written for one)."""
    return KnownCitizen(**{name: row[name] for name in _KNOWN_FIELDS})


def _identify(
    conn: Connection,
    identity: CitizenIdentity,
    found: list[tuple[KnownCitizen, bool]],
    locking: bool,
) -> tuple[CitizenResolution, bool]:
    """The resolution and whether the chosen citizen already holds the contact's phone."""
    holders = [c for c, held in found if held]
    if identity.citizen_id is not None:
        citizen = next((c for c, _ in found if c.id == identity.citizen_id), None)
        if citizen is None:
            raise UnknownEntity(
                f"Vatandaş kaydı bulunamadı (#{identity.citizen_id}).",
                f"No citizen record #{identity.citizen_id}.",
            )
        if identity.tc_number and citizen.tc_number and citizen.tc_number != identity.tc_number:
            raise IdentityConflict(
                "Girilen TC kimlik numarası seçilen vatandaşın numarasıyla uyuşmuyor.",
                "The TC number given does not match the selected citizen's.",
            )
        if identity.tc_number and citizen.tc_number is None:
            holder = next((c for c, _ in found if c.tc_number == identity.tc_number), None)
            if holder is not None and holder.id != citizen.id:
                raise IdentityConflict(
                    "Bu TC kimlik numarası başka bir vatandaş kaydında kayıtlı.",
                    "This TC number belongs to another citizen record.",
                )
        resolution = CitizenResolution(citizen, "id", _unidentified(holders, citizen))
        return resolution, citizen in holders
    if identity.tc_number:
        citizen = next((c for c, _ in found if c.tc_number == identity.tc_number), None)
        if citizen is not None:
            resolution = CitizenResolution(citizen, "tc", _unidentified(holders, citizen))
            return resolution, citizen in holders
        return CitizenResolution(None, "new", _unidentified(holders, None)), False
    if identity.phone:
        if len(holders) == 1:
            return CitizenResolution(holders[0], "phone"), True
        if len(holders) > 1:
            return CitizenResolution(None, "ambiguous", holders), False
        return CitizenResolution(None, "new"), False
    if identity.email:
        rows = conn.execute(_BY_EMAIL[locking], {"email": identity.email})
        by_email = [_known(row._mapping) for row in rows]
        if len(by_email) == 1:
            return CitizenResolution(by_email[0], "email"), False
        if len(by_email) > 1:
            return CitizenResolution(None, "ambiguous", by_email), False
        return CitizenResolution(None, "new"), False
    return CitizenResolution(None, "none"), False


def _unidentified(holders: list[KnownCitizen], chosen: KnownCitizen | None) -> list[KnownCitizen]:
    """Phone holders without a TC number who might be the same person as ``chosen``."""
    return [c for c in holders if c != chosen and c.tc_number is None]


# Core statements built once; columns not given take their defaults.
_INSERT_CITIZEN = insert(Citizen).returning(Citizen.id, Citizen.consent_sms)
_INSERT_PHONE = insert(CitizenPhone)
_TOUCH_PHONE = (
    update(CitizenPhone)
    .where(
        CitizenPhone.citizen_id == bindparam("b_citizen_id"),
        CitizenPhone.e164 == bindparam("b_e164"),
    )
    .values(last_seen_at=bindparam("b_seen"))
)
_UPDATE_CITIZEN = update(Citizen).where(Citizen.id == bindparam("b_id"))


def _create(conn: Connection, now: datetime, identity: CitizenIdentity) -> KnownCitizen:
    values: dict[str, Any] = {
        "tc_number": identity.tc_number,
        "first_name": identity.first_name,
        "last_name": identity.last_name,
        "email": identity.email,
        "preferred_language": identity.language or Language.TR,
        "household_id": identity.household_id,
        "special_groups": [],
        "created_at": now,
        "updated_at": now,
    }
    row = conn.execute(_INSERT_CITIZEN, values).one()
    if identity.phone is not None:
        conn.execute(_INSERT_PHONE, _phone_values(row.id, identity.phone, now))
    return _known({**values, **row._mapping})  # id and consent_sms as the row has them


def _phone_values(citizen_id: int, phone: NormalisedPhone, now: datetime) -> dict[str, Any]:
    return {
        "citizen_id": citizen_id,
        "e164": phone.e164,
        "raw": phone.raw,
        "phone_type": phone.phone_type,
        "created_at": now,
        "last_seen_at": now,
    }


def _update(
    session: Session,
    conn: Connection,
    now: datetime,
    citizen: KnownCitizen,
    identity: CitizenIdentity,
    holds_phone: bool,
) -> KnownCitizen:
    changes: dict[str, Any] = {}
    for attr in ("tc_number", "first_name", "last_name", "email", "household_id"):
        value = getattr(identity, attr)
        if value and not getattr(citizen, attr):
            changes[attr] = value
    if identity.language and identity.language != citizen.preferred_language:
        changes["preferred_language"] = identity.language
    phone = identity.phone
    if phone is not None and holds_phone:  # read after the lock on this phone was taken
        conn.execute(
            _TOUCH_PHONE, {"b_citizen_id": citizen.id, "b_e164": phone.e164, "b_seen": now}
        )
    elif phone is not None:
        conn.execute(_INSERT_PHONE, _phone_values(citizen.id, phone, now))
        changes["updated_at"] = now
    if not changes:
        return citizen
    changes["updated_at"] = now
    conn.execute(_UPDATE_CITIZEN, {"b_id": citizen.id, **changes})
    loaded = session.identity_map.get(session.identity_key(Citizen, citizen.id))
    if loaded is not None:  # the session's object of this citizen follows its row
        for attr, value in changes.items():
            set_committed_value(loaded, attr, value)
    return replace(citizen, **{k: v for k, v in changes.items() if k != "updated_at"})
