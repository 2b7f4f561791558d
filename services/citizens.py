"""Finding or creating the citizen behind a contact (R2.4, R6.1).

Rules, in order:
1. An explicit citizen id (chosen by staff) wins; a TC number that contradicts it is refused.
2. A TC number identifies exactly one citizen; an unknown TC creates one.
3. Without a TC number, a phone number shared by exactly one citizen identifies them; a
   phone shared by several people identifies nobody (all are recorded as candidates).
4. Without either, an e-mail address known for exactly one citizen identifies them.
Two different TC numbers are never merged, and a match found only by phone is recorded as
a :class:`~models.PossibleCitizenMatch` for staff to review, never merged automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Citizen, CitizenPhone, Language
from services.errors import IdentityConflict, UnknownEntity
from services.identity import NormalisedPhone


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


@dataclass
class CitizenResolution:
    citizen: Citizen | None
    match: str  # "id", "tc", "phone", "email", "new", "ambiguous", "none"
    candidates: list[Citizen] = field(default_factory=list)


def citizens_by_phone(session: Session, e164: str) -> list[Citizen]:
    """Citizens that have ``e164`` among their phones, oldest first."""
    return list(
        session.scalars(
            select(Citizen)
            .join(CitizenPhone, CitizenPhone.citizen_id == Citizen.id)
            .where(CitizenPhone.e164 == e164)
            .order_by(Citizen.id)
        )
    )


def citizen_by_tc(session: Session, tc_number: str) -> Citizen | None:
    return session.scalar(select(Citizen).where(Citizen.tc_number == tc_number))


def resolve_citizen(
    session: Session, now: datetime, identity: CitizenIdentity
) -> CitizenResolution:
    """Find or create the citizen for ``identity`` and bring their record up to date.

    Guarantees: never assigns a TC number that another citizen holds, never overwrites a
    known name or TC number, adds a new phone to the identified citizen, flushes new rows
    (ids are available) but does not commit.
    """
    resolution = _identify(session, identity)
    if resolution.citizen is None and resolution.match == "new":
        resolution.citizen = _create(session, now, identity)
    if resolution.citizen is not None:
        _update(session, now, resolution.citizen, identity)
    return resolution


def _identify(session: Session, identity: CitizenIdentity) -> CitizenResolution:
    phone_holders: list[Citizen] = (
        citizens_by_phone(session, identity.phone.e164) if identity.phone else []
    )
    if identity.citizen_id is not None:
        citizen = session.get(Citizen, identity.citizen_id)
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
            holder = citizen_by_tc(session, identity.tc_number)
            if holder is not None and holder.id != citizen.id:
                raise IdentityConflict(
                    "Bu TC kimlik numarası başka bir vatandaş kaydında kayıtlı.",
                    "This TC number belongs to another citizen record.",
                )
        return CitizenResolution(citizen, "id", _unidentified(phone_holders, citizen))
    if identity.tc_number:
        citizen = citizen_by_tc(session, identity.tc_number)
        if citizen is not None:
            return CitizenResolution(citizen, "tc", _unidentified(phone_holders, citizen))
        return CitizenResolution(None, "new", _unidentified(phone_holders, None))
    if identity.phone:
        if len(phone_holders) == 1:
            return CitizenResolution(phone_holders[0], "phone")
        if len(phone_holders) > 1:
            return CitizenResolution(None, "ambiguous", phone_holders)
        return CitizenResolution(None, "new")
    if identity.email:
        by_email = list(session.scalars(select(Citizen).where(Citizen.email == identity.email)))
        if len(by_email) == 1:
            return CitizenResolution(by_email[0], "email")
        if len(by_email) > 1:
            return CitizenResolution(None, "ambiguous", by_email)
        return CitizenResolution(None, "new")
    return CitizenResolution(None, "none")


def _unidentified(holders: list[Citizen], chosen: Citizen | None) -> list[Citizen]:
    """Phone holders without a TC number who might be the same person as ``chosen``."""
    return [c for c in holders if c is not chosen and c.tc_number is None]


def _create(session: Session, now: datetime, identity: CitizenIdentity) -> Citizen:
    citizen = Citizen(
        tc_number=identity.tc_number,
        first_name=identity.first_name,
        last_name=identity.last_name,
        email=identity.email,
        preferred_language=identity.language or Language.TR,
        household_id=identity.household_id,
        special_groups=[],
        created_at=now,
        updated_at=now,
    )
    session.add(citizen)
    session.flush()
    return citizen


def _update(session: Session, now: datetime, citizen: Citizen, identity: CitizenIdentity) -> None:
    changed = False
    for attr in ("tc_number", "first_name", "last_name", "email", "household_id"):
        value = getattr(identity, attr)
        if value and not getattr(citizen, attr):
            setattr(citizen, attr, value)
            changed = True
    if identity.language and identity.language != citizen.preferred_language:
        citizen.preferred_language = identity.language
        changed = True
    if identity.phone is not None:
        seen = session.execute(
            update(CitizenPhone)
            .where(CitizenPhone.citizen_id == citizen.id, CitizenPhone.e164 == identity.phone.e164)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        if seen.rowcount == 0:  # type: ignore[attr-defined]
            session.add(
                CitizenPhone(
                    citizen_id=citizen.id,
                    e164=identity.phone.e164,
                    raw=identity.phone.raw,
                    phone_type=identity.phone.phone_type,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            changed = True
    if changed:
        citizen.updated_at = now
        session.flush()
