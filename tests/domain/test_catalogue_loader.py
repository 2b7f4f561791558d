"""The bundled catalogue and demo data load cleanly, idempotently and make sense (R2.6, R2.7,
R3.1, R3.3, R7.1, R9.1, R9.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from stdnum.tr import tckimlik

from models import (
    Base,
    Citizen,
    CitizenPhone,
    Department,
    ExternalInstitution,
    Holiday,
    Household,
    Neighbourhood,
    Role,
    StaffUser,
    TicketType,
)
from services.catalogue_loader import CatalogueNotLoaded, load_catalogue, load_demo, load_holidays

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# R2.7 call reason -> the ticket-type code that supports it.
R2_7_TYPES = {
    "information": "bilgi_talebi",
    "debt payment": "borc_odeme",
    "debt inquiry": "borc_sorgulama",
    "zoning status": "imar_durumu",
    "complaint": "sikayet",
    "suggestion": "oneri",
    "environmental cleaning": "cevre_temizligi",
    "social and cultural events": "sosyal_kulturel_etkinlik",
    "road damage": "yol_bozuklugu",
    "water leak": "su_kacagi",
    "sewage overflow": "kanalizasyon_tasmasi",
    "noise": "gurultu",
    "natural gas": "dogalgaz",
    "air pollution": "hava_kirliligi",
    "stray animals": "sahipsiz_hayvan",
    "funeral services": "cenaze_hizmetleri",
    "birth services": "dogum_hizmetleri",
    "electricity": "elektrik_arizasi",
}

COUNTED = (
    Holiday,
    Department,
    ExternalInstitution,
    TicketType,
    Neighbourhood,
    Household,
    Citizen,
    CitizenPhone,
    StaffUser,
)


def _load_all(session: Session) -> None:
    load_holidays(session)
    load_catalogue(session, NOW)
    load_demo(session, NOW)


def _counts(session: Session) -> dict[str, int]:
    return {
        model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in COUNTED
    }


@pytest.fixture
def loaded(session: Session) -> Session:
    _load_all(session)
    return session


def test_loading_twice_is_idempotent(session: Session) -> None:
    _load_all(session)
    first = _counts(session)
    liaisons_first = {
        d.code: (d.primary_liaison_id, d.backup_liaison_id)
        for d in session.scalars(select(Department))
    }

    assert load_holidays(session) == 0
    assert set(load_catalogue(session, NOW).values()) == {0}
    assert set(load_demo(session, NOW).values()) == {0}

    assert _counts(session) == first
    assert all(n > 0 for n in first.values()), first
    liaisons_second = {
        d.code: (d.primary_liaison_id, d.backup_liaison_id)
        for d in session.scalars(select(Department))
    }
    assert liaisons_second == liaisons_first


def test_reload_keeps_staff_edits_to_the_catalogue(loaded: Session) -> None:
    road = loaded.scalars(select(TicketType).where(TicketType.code == "yol_bozuklugu")).one()
    road.sla_hours = 12
    loaded.flush()
    load_catalogue(loaded, NOW)
    loaded.refresh(road)
    assert road.sla_hours == 12


def test_demo_requires_the_catalogue() -> None:
    # An empty schema of its own: the shared ``session`` fixture may already be seeded.
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as empty:
        with pytest.raises(CatalogueNotLoaded):
            load_demo(empty, NOW)
        assert empty.scalar(select(func.count()).select_from(StaffUser)) == 0
    engine.dispose()


def test_every_r2_7_reason_has_a_type(loaded: Session) -> None:
    codes = set(loaded.scalars(select(TicketType.code)))
    missing = {reason for reason, code in R2_7_TYPES.items() if code not in codes}
    assert not missing
    assert "genel" in codes


def test_every_type_routes_to_exactly_one_place(loaded: Session) -> None:
    types = list(loaded.scalars(select(TicketType)))
    assert types
    for t in types:
        assert (t.department_id is None) != (t.external_institution_id is None), t.code
        assert t.sla_hours > 0, t.code


def test_outside_responsibility_types_are_referred_externally(loaded: Session) -> None:
    for code in ("su_kacagi", "kanalizasyon_tasmasi", "dogalgaz", "elektrik_arizasi"):
        t = loaded.scalars(select(TicketType).where(TicketType.code == code)).one()
        assert t.department_id is None and t.external_institution_id is not None, code


def test_generic_type_goes_to_the_coordination_centre(loaded: Session) -> None:
    genel = loaded.scalars(select(TicketType).where(TicketType.code == "genel")).one()
    assert genel.department is not None and genel.department.code == "ACIK_KAPI"


def test_every_unit_ladder_reaches_the_mayor(loaded: Session) -> None:
    units = list(loaded.scalars(select(Department)))
    directorates = [u for u in units if u.level == "directorate"]
    assert len(directorates) >= 15
    for unit in units:
        ladder = unit.ladder()
        assert ladder[-1].code == "BASKAN", unit.code
        assert ladder[-1].level == "mayor"
    for unit in directorates:
        assert any(u.level == "deputy_mayor" for u in unit.ladder()), unit.code


def test_every_role_except_system_has_demo_staff(loaded: Session) -> None:
    roles = set(loaded.scalars(select(StaffUser.role)))
    assert roles >= set(Role) - {Role.SYSTEM}
    assert Role.SYSTEM not in roles


def test_at_least_two_english_speaking_agents(loaded: Session) -> None:
    agents = list(loaded.scalars(select(StaffUser).where(StaffUser.role == Role.AGENT)))
    assert len(agents) >= 6  # 3 shifts x 2 agents (R9.3)
    assert sum(1 for a in agents if "en" in a.languages) >= 2


def test_demo_citizens_have_unique_valid_tc_numbers(loaded: Session) -> None:
    tcs = [c.tc_number for c in loaded.scalars(select(Citizen))]
    assert len(tcs) >= 40
    assert all(tc is not None for tc in tcs)
    assert len(set(tcs)) == len(tcs)
    for tc in tcs:
        assert tckimlik.is_valid(tc), tc


def test_demo_citizen_phones_are_e164(loaded: Session) -> None:
    for citizen in loaded.scalars(select(Citizen)):
        assert citizen.phones, citizen.tc_number
        for phone in citizen.phones:
            assert phone.e164.startswith("+90") and len(phone.e164) == 13, phone.e164


def test_every_liaison_belongs_to_the_department_they_serve(loaded: Session) -> None:
    served = 0
    for unit in loaded.scalars(select(Department)):
        for liaison in (unit.primary_liaison, unit.backup_liaison):
            if liaison is None:
                continue
            served += 1
            assert liaison.department_id == unit.id, (unit.code, liaison.username)
            assert liaison.role == Role.DEPARTMENT_LIAISON
        if unit.primary_liaison is not None:
            assert unit.backup_liaison is not None, unit.code
            assert unit.primary_liaison_id != unit.backup_liaison_id
    assert served >= 18  # primary + backup for at least the 9 main directorates


def test_neighbourhoods_have_muhtars_and_areas(loaded: Session) -> None:
    hoods = list(loaded.scalars(select(Neighbourhood)))
    assert len(hoods) == 12
    assert all(h.muhtar_name and h.muhtar_phone_e164 for h in hoods)
    north = [h for h in hoods if h.area == "kuzey"]
    assert any(h.mayor_last_visit_on is None for h in north)
    assert any(h.mayor_last_visit_on is not None for h in hoods)
