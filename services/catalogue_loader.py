"""Seed the database from the bundled data files: holidays, catalogue and demo data.

Files live in ``acikkapi/data/`` (``holidays_tr.json``, ``catalogue.json``, ``demo.json``).

Shared guarantees of every loader here:

* **Insert-missing only.** Rows are found by their natural key (holiday date, escalation
  policy code, unit code, institution code, ticket-type code, neighbourhood name, TC number,
  username). A row that already exists is left exactly as it is, because the catalogue is
  edited by staff at run time (R3.5): staff edits always win over the bundled file. The
  only exception is
  :func:`load_holidays`, whose bundled names and half-day flags are the official calendar.
* **Idempotent.** Running a loader twice inserts nothing the second time and never creates
  duplicates; the returned counts are the rows inserted (or updated) by *this* call.
* **Never commits.** Loaders only ``add`` and ``flush``; the caller commits or rolls back.
* **Validates before writing a row.** Unknown enum values, unknown unit/institution codes
  and types routed to both or neither of a department and an institution raise
  :class:`CatalogueDataError` (a ``ValueError``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import acikkapi
from models import (
    Citizen,
    CitizenPhone,
    Department,
    EscalationPolicy,
    ExternalInstitution,
    Holiday,
    Household,
    Language,
    LegalClock,
    Neighbourhood,
    Role,
    SlaUnit,
    StaffUser,
    TicketKind,
    TicketType,
)
from models.department import UNIT_LEVELS
from services.identity import normalise_phone, normalise_tc_number
from services.working_calendar import load_bundled_days_off

__all__ = [
    "CatalogueDataError",
    "CatalogueNotLoaded",
    "data_path",
    "load_catalogue",
    "load_demo",
    "load_holidays",
]


class CatalogueDataError(ValueError):
    """A bundled data file is malformed or refers to something that does not exist."""


class CatalogueNotLoaded(RuntimeError):
    """Demo data was loaded before the catalogue (units) it refers to."""


def data_path(name: str) -> Path:
    """Path of a bundled data file inside the ``acikkapi`` package."""
    return Path(acikkapi.__file__).parent / "data" / name


def _read_json(name: str) -> dict[str, Any]:
    raw: Any = json.loads(data_path(name).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise CatalogueDataError(f"{name} must contain a JSON object")
    return raw


def _items(data: dict[str, Any], key: str, name: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CatalogueDataError(f"{name}: {key!r} must be a list of objects")
    return value


def _opt_str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return None if value is None else str(value)


# --------------------------------------------------------------------------- holidays


def load_holidays(session: Session) -> int:
    """Upsert :class:`models.Holiday` rows from the bundled Turkish holiday list.

    Missing days are inserted; for existing days the names and the half-day flag are set to
    the bundled values. Days present only in the database (added by staff) are kept.
    Returns the number of rows inserted or changed (0 on a repeated run). Never commits.
    """
    existing = {h.day: h for h in session.scalars(select(Holiday))}
    changed = 0
    for day_off in load_bundled_days_off():
        row = existing.get(day_off.day)
        if row is None:
            session.add(
                Holiday(
                    day=day_off.day,
                    name_tr=day_off.name_tr,
                    name_en=day_off.name_en,
                    half_day=day_off.half_day,
                )
            )
            changed += 1
        elif (row.name_tr, row.name_en, row.half_day) != (
            day_off.name_tr,
            day_off.name_en,
            day_off.half_day,
        ):
            row.name_tr = day_off.name_tr
            row.name_en = day_off.name_en
            row.half_day = day_off.half_day
            changed += 1
    session.flush()
    return changed


# --------------------------------------------------------------------------- catalogue


def load_catalogue(session: Session, now: datetime) -> dict[str, int]:
    """Insert the missing escalation policies, units, external institutions and ticket types
    of ``catalogue.json``.

    Guarantees:

    * Escalation policies (:class:`models.EscalationPolicy`, R3.3) are matched by ``code``
      and validated (reminder 1–99 %, delays ≥ 0 and non-decreasing up the ladder); existing
      policies are not touched. A unit's ``escalation_policy`` is set while the unit has
      none (like the liaison slots of :func:`load_demo`): a unit without one uses the
      ``default`` policy, so staff who want the default explicitly point the unit to it.

    * Units (:class:`models.Department`) are matched by ``code``; a new unit's parent is set
      after every unit exists, so the file order does not matter. Existing units, including
      their parent and liaisons, are not touched.
    * External institutions and ticket types are matched by ``code``; existing rows are not
      touched, so an SLA or routing changed by staff survives a reload (R3.5).
    * Every ticket type in the file routes to exactly one of a department or an external
      institution (R2.6), and its kind, SLA unit and legal clock are valid enum values.
    * Idempotent; never commits. Returns the number of rows inserted per table:
      ``{"escalation_policies": n, "departments": n, "escalation_policy_assignments": n,
      "external_institutions": n, "ticket_types": n}``.

    ``now`` is accepted for symmetry with :func:`load_demo` (catalogue rows carry no
    timestamps).
    """
    del now
    name = "catalogue.json"
    data = _read_json(name)
    counts = {
        "escalation_policies": 0,
        "departments": 0,
        "escalation_policy_assignments": 0,
        "external_institutions": 0,
        "ticket_types": 0,
    }
    policies = _load_escalation_policies(session, data, name, counts)

    # Units: insert missing, then link the parents of the new ones.
    units = {d.code: d for d in session.scalars(select(Department))}
    new_units: list[tuple[Department, str | None]] = []
    for item in _items(data, "units", name):
        code = str(item["code"])
        level = str(item["level"])
        if level not in UNIT_LEVELS:
            raise CatalogueDataError(f"{name}: unit {code}: unknown level {level!r}")
        if code in units:
            continue
        unit = Department(
            code=code,
            name_tr=str(item["name_tr"]),
            name_en=str(item["name_en"]),
            level=level,
            email=_opt_str(item, "email"),
            phone_extension=_opt_str(item, "phone_extension"),
            is_active=True,
        )
        session.add(unit)
        units[code] = unit
        new_units.append((unit, _opt_str(item, "parent")))
        counts["departments"] += 1
    for unit, parent_code in new_units:
        if parent_code is None:
            continue
        parent = units.get(parent_code)
        if parent is None:
            raise CatalogueDataError(f"{name}: unit {unit.code}: unknown parent {parent_code!r}")
        unit.parent = parent
    for item in _items(data, "units", name):
        policy_code = _opt_str(item, "escalation_policy")
        if policy_code is None:
            continue
        policy = policies.get(policy_code)
        if policy is None:
            raise CatalogueDataError(
                f"{name}: unit {item['code']}: unknown escalation policy {policy_code!r}"
            )
        unit = units[str(item["code"])]
        if unit.escalation_policy_id is None and unit.escalation_policy is None:
            unit.escalation_policy = policy
            counts["escalation_policy_assignments"] += 1
    session.flush()

    # External institutions.
    institutions = {i.code: i for i in session.scalars(select(ExternalInstitution))}
    for item in _items(data, "external_institutions", name):
        code = str(item["code"])
        if code in institutions:
            continue
        institution = ExternalInstitution(
            code=code,
            name_tr=str(item["name_tr"]),
            name_en=str(item["name_en"]),
            phone=_opt_str(item, "phone"),
            email=_opt_str(item, "email"),
            website=_opt_str(item, "website"),
        )
        session.add(institution)
        institutions[code] = institution
        counts["external_institutions"] += 1
    session.flush()

    # Ticket types.
    existing_types = set(session.scalars(select(TicketType.code)))
    for item in _items(data, "ticket_types", name):
        code = str(item["code"])
        try:
            kind = TicketKind(item["default_kind"])
            sla_unit = SlaUnit(item["sla_unit"])
            legal_clock = LegalClock(item.get("legal_clock", LegalClock.NONE.value))
        except ValueError as exc:
            raise CatalogueDataError(f"{name}: ticket type {code}: {exc}") from exc
        dept_code = _opt_str(item, "department")
        inst_code = _opt_str(item, "external_institution")
        if (dept_code is None) == (inst_code is None):
            raise CatalogueDataError(
                f"{name}: ticket type {code} must route to exactly one of a department "
                "or an external institution"
            )
        sla_hours = int(item["sla_hours"])
        if sla_hours <= 0:
            raise CatalogueDataError(f"{name}: ticket type {code}: sla_hours must be > 0")
        department = units.get(dept_code) if dept_code is not None else None
        target_institution = institutions.get(inst_code) if inst_code is not None else None
        if dept_code is not None and department is None:
            raise CatalogueDataError(f"{name}: ticket type {code}: unknown unit {dept_code!r}")
        if inst_code is not None and target_institution is None:
            raise CatalogueDataError(
                f"{name}: ticket type {code}: unknown institution {inst_code!r}"
            )
        if code in existing_types:
            continue
        session.add(
            TicketType(
                code=code,
                name_tr=str(item["name_tr"]),
                name_en=str(item["name_en"]),
                default_kind=kind,
                department=department,
                external_institution=target_institution,
                sla_hours=sla_hours,
                sla_unit=sla_unit,
                legal_clock=legal_clock,
                description=_opt_str(item, "description"),
                is_active=True,
            )
        )
        existing_types.add(code)
        counts["ticket_types"] += 1
    session.flush()
    return counts


def _hours(item: dict[str, Any], key: str, where: str, *, required: bool) -> int | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CatalogueDataError(f"{where}: {key} must be a whole number of hours >= 0")
    return value


def _load_escalation_policies(
    session: Session, data: dict[str, Any], name: str, counts: dict[str, int]
) -> dict[str, EscalationPolicy]:
    """Insert the missing escalation policies; return every policy by code."""
    policies = {p.code: p for p in session.scalars(select(EscalationPolicy))}
    for item in _items(data, "escalation_policies", name):
        code = str(item["code"])
        where = f"{name}: escalation policy {code}"
        percent = item.get("reminder_percent", 80)
        if not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 99:
            raise CatalogueDataError(f"{where}: reminder_percent must be 1..99")
        superior = _hours(item, "superior_unit_after_hours", where, required=True)
        deputy = _hours(item, "deputy_mayor_after_hours", where, required=False)
        mayor = _hours(item, "mayor_after_hours", where, required=False)
        assert superior is not None
        ladder = [h for h in (superior, deputy, mayor) if h is not None]
        if ladder != sorted(ladder):
            raise CatalogueDataError(f"{where}: delays must not decrease up the ladder")
        if code in policies:
            continue
        policy = EscalationPolicy(
            code=code,
            name_tr=str(item["name_tr"]),
            name_en=str(item["name_en"]),
            reminder_percent=percent,
            superior_unit_after_hours=superior,
            deputy_mayor_after_hours=deputy,
            mayor_after_hours=mayor,
            notify_email=bool(item.get("notify_email", True)),
            notify_sms=bool(item.get("notify_sms", True)),
        )
        session.add(policy)
        policies[code] = policy
        counts["escalation_policies"] += 1
    session.flush()
    return policies


# --------------------------------------------------------------------------- demo data


def load_demo(session: Session, now: datetime, *, demo_password: str = "") -> dict[str, int]:
    """Insert the missing demo neighbourhoods, citizens, staff and liaisons of ``demo.json``.

    Guarantees:

    * Requires :func:`load_catalogue` first: raises :class:`CatalogueNotLoaded` when a unit
      the demo data refers to does not exist, before writing anything.
    * Neighbourhoods are matched by name, citizens by TC number, staff by username; existing
      rows (and their phones and households) are left untouched. Households are matched by
      (neighbourhood, street, building, door), so family members share one household.
    * Every citizen phone is stored as E.164 with its raw form and type, via
      :func:`services.identity.normalise_phone`; TC numbers are validated with
      :func:`services.identity.normalise_tc_number`.
    * Staff users get ``created_at=now`` and no password, unless ``demo_password`` is given:
      then every demo staff user without a password gets it (console sign-in, decision 0016).
    * A department's primary/backup liaison is set only while the slot is empty, and only to a
      staff user of that same department (else :class:`CatalogueDataError`).
    * Idempotent; never commits. Returns the rows inserted (liaison slots filled) per kind.
    """
    name = "demo.json"
    data = _read_json(name)
    counts = {
        "neighbourhoods": 0,
        "households": 0,
        "citizens": 0,
        "citizen_phones": 0,
        "staff_users": 0,
        "liaison_assignments": 0,
    }
    staff_items = _items(data, "staff", name)
    liaisons_raw: Any = data.get("liaisons", {})
    if not isinstance(liaisons_raw, dict):
        raise CatalogueDataError(f"{name}: 'liaisons' must be an object")

    units = {d.code: d for d in session.scalars(select(Department))}
    needed = {str(s["department"]) for s in staff_items if s.get("department") is not None}
    needed |= {str(code) for code in liaisons_raw}
    missing = sorted(needed - units.keys())
    if missing:
        raise CatalogueNotLoaded(
            "load_catalogue() must run before load_demo(); missing units: " + ", ".join(missing)
        )

    # Neighbourhoods.
    hoods = {n.name: n for n in session.scalars(select(Neighbourhood))}
    for item in _items(data, "neighbourhoods", name):
        hood_name = str(item["name"])
        if hood_name in hoods:
            continue
        muhtar_phone = _opt_str(item, "muhtar_phone")
        visit = _opt_str(item, "mayor_last_visit_on")
        hood = Neighbourhood(
            name=hood_name,
            muhtar_name=_opt_str(item, "muhtar_name"),
            muhtar_phone_e164=normalise_phone(muhtar_phone).e164 if muhtar_phone else None,
            area=_opt_str(item, "area"),
            latitude=item.get("latitude"),
            longitude=item.get("longitude"),
            mayor_last_visit_on=date.fromisoformat(visit) if visit else None,
        )
        session.add(hood)
        hoods[hood_name] = hood
        counts["neighbourhoods"] += 1
    session.flush()

    # Citizens, their households and phones.
    known_tcs = set(
        session.scalars(select(Citizen.tc_number).where(Citizen.tc_number.is_not(None)))
    )
    for item in _items(data, "citizens", name):
        tc_number = normalise_tc_number(str(item["tc_number"]))
        if tc_number in known_tcs:
            continue
        household = _household(session, hoods, item.get("address"), counts)
        citizen = Citizen(
            tc_number=tc_number,
            first_name=_opt_str(item, "first_name"),
            last_name=_opt_str(item, "last_name"),
            email=_opt_str(item, "email"),
            preferred_language=Language(item.get("preferred_language", Language.TR.value)),
            household=household,
            special_groups=[str(g) for g in item.get("special_groups", [])],
            created_at=now,
            updated_at=now,
        )
        seen_phones: set[str] = set()
        for raw in item.get("phones", []):
            phone = normalise_phone(str(raw))
            if phone.e164 in seen_phones:
                continue
            seen_phones.add(phone.e164)
            citizen.phones.append(
                CitizenPhone(
                    e164=phone.e164,
                    raw=phone.raw,
                    phone_type=phone.phone_type,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            counts["citizen_phones"] += 1
        session.add(citizen)
        known_tcs.add(tc_number)
        counts["citizens"] += 1
    session.flush()

    # Staff users.
    users = {u.username: u for u in session.scalars(select(StaffUser))}
    codes = {u.staff_code: u.username for u in users.values()}
    for item in staff_items:
        username = str(item["username"])
        if username in users:
            continue
        staff_code = str(item["staff_code"])
        if staff_code in codes:
            raise CatalogueDataError(
                f"{name}: staff code {staff_code} of {username} is already used by "
                f"{codes[staff_code]}"
            )
        role = Role(item["role"])
        if role is Role.SYSTEM:
            raise CatalogueDataError(f"{name}: {username}: demo staff cannot have role system")
        dept_code = _opt_str(item, "department")
        staff_phone = _opt_str(item, "phone")
        user = StaffUser(
            username=username,
            full_name=str(item["full_name"]),
            staff_code=staff_code,
            role=role,
            department_id=units[dept_code].id if dept_code is not None else None,
            languages=[str(lang) for lang in item.get("languages", ["tr"])],
            email=_opt_str(item, "email"),
            phone_e164=normalise_phone(staff_phone).e164 if staff_phone else None,
            sip_extension=_opt_str(item, "sip_extension"),
            password_hash=None,
            is_active=True,
            created_at=now,
        )
        session.add(user)
        users[username] = user
        codes[staff_code] = username
        counts["staff_users"] += 1
    session.flush()

    # Liaison assignments (R3.1): fill empty slots only.
    for unit_code, pair in liaisons_raw.items():
        if not isinstance(pair, dict):
            raise CatalogueDataError(f"{name}: liaisons[{unit_code!r}] must be an object")
        unit = units[str(unit_code)]
        for slot in ("primary", "backup"):
            liaison_name = pair.get(slot)
            if liaison_name is None:
                continue
            liaison = users.get(str(liaison_name))
            if liaison is None:
                raise CatalogueDataError(f"{name}: liaison {liaison_name!r} is not a staff user")
            if liaison.department_id != unit.id:
                raise CatalogueDataError(
                    f"{name}: liaison {liaison_name} does not belong to unit {unit_code}"
                )
            if slot == "primary" and unit.primary_liaison_id is None:
                unit.primary_liaison_id = liaison.id
                counts["liaison_assignments"] += 1
            elif slot == "backup" and unit.backup_liaison_id is None:
                unit.backup_liaison_id = liaison.id
                counts["liaison_assignments"] += 1
    session.flush()
    if demo_password:
        from services.staff_auth import set_demo_passwords

        demo_users = [users[str(item["username"])] for item in staff_items]
        counts["demo_passwords"] = set_demo_passwords(session, demo_users, demo_password)
    return counts


def _household(
    session: Session,
    hoods: dict[str, Neighbourhood],
    address: Any,
    counts: dict[str, int],
) -> Household | None:
    """The household at ``address`` (found or created), or ``None`` without an address."""
    if not isinstance(address, dict):
        return None
    hood_name = _opt_str(address, "neighbourhood")
    hood = hoods.get(hood_name) if hood_name is not None else None
    if hood_name is not None and hood is None:
        raise CatalogueDataError(f"demo.json: unknown neighbourhood {hood_name!r}")
    street = _opt_str(address, "street")
    building_no = _opt_str(address, "building_no")
    door_no = _opt_str(address, "door_no")
    hood_id = hood.id if hood is not None else None
    found = session.scalars(
        select(Household).where(
            Household.neighbourhood_id.is_not_distinct_from(hood_id),
            Household.street.is_not_distinct_from(street),
            Household.building_no.is_not_distinct_from(building_no),
            Household.door_no.is_not_distinct_from(door_no),
        )
    ).first()
    if found is not None:
        return found
    parts = [p for p in (street, f"No: {building_no}" if building_no else None) if p]
    text = " ".join(parts)
    if door_no:
        text += f" D: {door_no}"
    if hood is not None:
        text += f", {hood.name} Mahallesi"
    household = Household(
        neighbourhood=hood,
        street=street,
        building_no=building_no,
        door_no=door_no,
        address_text=text or None,
        latitude=hood.latitude if hood is not None else None,
        longitude=hood.longitude if hood is not None else None,
    )
    session.add(household)
    session.flush()
    counts["households"] += 1
    return household
