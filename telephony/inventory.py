"""Who has a phone: the endpoints and extensions the PBX configuration is rendered from.

Source of truth is the database (staff users with a ``sip_extension``, departments with a
``phone_extension``). When the database is missing, not migrated or holds no telephony
staff (a fresh clone, the test session), the packaged demo and catalogue data are used, so
``acikkapi asterisk render`` always produces a bootable configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from acikkapi.settings import Settings

AGENT = "agent"
OPERATOR = "switchboard_operator"
MAYORS_OFFICE = "mayors_office"
DEPARTMENT = "department"
STAFF = "staff"  # any other staff member with a phone


@dataclass(frozen=True)
class Phone:
    """One SIP endpoint: extension number, display name, kind and spoken languages."""

    extension: str
    name: str
    kind: str
    languages: tuple[str, ...] = ("tr",)


@dataclass(frozen=True)
class Inventory:
    """Every phone the PBX knows, and where the list came from ("database" or "demo")."""

    phones: tuple[Phone, ...]
    source: str
    notes: tuple[str, ...] = field(default=())

    def of_kind(self, kind: str) -> tuple[Phone, ...]:
        """Phones of one kind, ordered by extension."""
        return tuple(p for p in self.phones if p.kind == kind)

    @property
    def agents(self) -> tuple[Phone, ...]:
        return self.of_kind(AGENT)

    @property
    def english_agents(self) -> tuple[Phone, ...]:
        return tuple(p for p in self.agents if "en" in p.languages)

    @property
    def operators(self) -> tuple[Phone, ...]:
        return self.of_kind(OPERATOR)


def _valid_extension(value: str | None) -> bool:
    return bool(value) and value is not None and value.isdigit() and 2 <= len(value) <= 6


def _kind_for_role(role: str) -> str:
    return {
        "agent": AGENT,
        "switchboard_operator": OPERATOR,
        "mayors_office": MAYORS_OFFICE,
    }.get(role, STAFF)


def _build(staff: list[dict[str, Any]], units: list[dict[str, Any]], source: str) -> Inventory:
    phones: dict[str, Phone] = {}
    notes: list[str] = []
    for person in staff:
        ext = person.get("sip_extension")
        if not _valid_extension(ext):
            continue
        assert isinstance(ext, str)
        langs = tuple(str(lang) for lang in person.get("languages") or ("tr",))
        kind = _kind_for_role(str(person.get("role")))
        phones[ext] = Phone(ext, str(person.get("full_name") or ext), kind, langs)
    for unit in units:
        ext = unit.get("phone_extension")
        if not _valid_extension(ext):
            continue
        assert isinstance(ext, str)
        if ext in phones:
            notes.append(f"department extension {ext} clashes with a staff phone; skipped")
            continue
        name = str(unit.get("name_tr") or unit.get("code") or ext)
        phones[ext] = Phone(ext, name, DEPARTMENT, ("tr",))
    ordered = tuple(sorted(phones.values(), key=lambda p: (len(p.extension), p.extension)))
    return Inventory(ordered, source, tuple(notes))


def demo_inventory() -> Inventory:
    """The phones of the packaged demo staff (``demo.json``) and catalogue units."""
    data = resources.files("acikkapi") / "data"
    demo = json.loads((data / "demo.json").read_text(encoding="utf-8"))
    catalogue = json.loads((data / "catalogue.json").read_text(encoding="utf-8"))
    return _build(list(demo["staff"]), list(catalogue["units"]), "demo")


def database_inventory(settings: Settings) -> Inventory | None:
    """The phones recorded in the database, or ``None`` when it cannot be read or has none.

    Never creates a database file: a SQLite URL pointing at a missing file yields ``None``.
    """
    if settings.is_sqlite:
        path = settings.database_url.split("///", 1)[-1]
        from pathlib import Path

        if not path or path == ":memory:" or not Path(path).exists():
            return None
    try:
        from sqlalchemy import select

        from acikkapi.db import engine_from_settings
        from models import Department, StaffUser

        engine = engine_from_settings(settings)
        try:
            with engine.connect() as conn:
                staff_rows = conn.execute(
                    select(
                        StaffUser.full_name,
                        StaffUser.role,
                        StaffUser.languages,
                        StaffUser.sip_extension,
                    ).where(StaffUser.sip_extension.is_not(None), StaffUser.is_active.is_(True))
                ).all()
                unit_rows = conn.execute(
                    select(Department.code, Department.name_tr, Department.phone_extension).where(
                        Department.phone_extension.is_not(None), Department.is_active.is_(True)
                    )
                ).all()
        finally:
            engine.dispose()
    except Exception:
        return None
    staff = [
        {
            "full_name": r.full_name,
            "role": str(r.role.value if hasattr(r.role, "value") else r.role),
            "languages": list(r.languages or ["tr"]),
            "sip_extension": r.sip_extension,
        }
        for r in staff_rows
    ]
    if not any(_kind_for_role(s["role"]) == AGENT for s in staff):
        return None
    units = [
        {"code": r.code, "name_tr": r.name_tr, "phone_extension": r.phone_extension}
        for r in unit_rows
    ]
    return _build(staff, units, "database")


def load_inventory(settings: Settings, *, prefer_database: bool = True) -> Inventory:
    """The phones to configure: from the database when it has agents, else the demo data."""
    if prefer_database:
        found = database_inventory(settings)
        if found is not None:
            return found
    return demo_inventory()
