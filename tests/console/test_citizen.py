"""The citizen's record, TC reveal and recordings (always audited), search, the audit page."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from models import AuditAction, AuditEvent, Role
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import AYSE_TC, answered_call, ayse, sample_ticket
from tests.factories import add_citizen

JSON = {"Accept": "application/json"}


def _audits(env: ConsoleEnv, action: AuditAction) -> list[AuditEvent]:
    return list(
        env.db.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def test_citizen_record_with_tickets_sla_and_calls(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    citizen = ayse(db)
    ticket = sample_ticket(db, now)
    answered_call(db, now, console_env.user(Role.AGENT), recordings=console_env.recordings)
    client = console_env.login(Role.DESK_STAFF)
    page = client.get(f"/citizens/{citizen.id}?why=masada+başvuru").text
    assert "AYŞE YILMAZ" in page and AYSE_TC not in page
    assert ticket.reference_code in page and "kalan" in page  # open, with its SLA clock
    assert "Menekşe Sokak" in page  # household address
    opened = _audits(console_env, AuditAction.CITIZEN_OPENED)
    assert opened[-1].reason == "masada başvuru" and opened[-1].citizen_id == citizen.id
    # The SLA clock moves with the console's clock: past the deadline it says so.
    console_env.clock.advance(days=60)
    client = console_env.login(Role.DESK_STAFF)  # (the old session has long expired)
    assert "SLA aşıldı" in client.get(f"/citizens/{citizen.id}?why=x").text


def test_tc_reveal_needs_a_reason_and_is_audited(console_env: ConsoleEnv) -> None:
    citizen = ayse(console_env.db)
    client = console_env.login(Role.AGENT)
    token = csrf(client)
    url = f"/citizens/{citizen.id}/tc"
    refused = client.post(url, data={"csrf_token": token, "reason": " "}, headers=JSON)
    assert refused.status_code == 400 and refused.get_json()["code"] == "missing_field"
    assert _audits(console_env, AuditAction.TC_REVEALED) == []
    shown = client.post(url, data={"csrf_token": token, "reason": "kimlik doğrulama"}, headers=JSON)
    assert shown.status_code == 200 and shown.get_json() == {"tc_number": AYSE_TC}
    revealed = _audits(console_env, AuditAction.TC_REVEALED)
    assert len(revealed) == 1 and revealed[0].reason == "kimlik doğrulama"
    assert revealed[0].ip == "127.0.0.1"
    # Without scripts: a page with the number.
    page = client.post(url, data={"csrf_token": token, "reason": "form ile"})
    assert AYSE_TC in page.text


def test_recording_is_released_with_a_reason_to_that_user_only(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    call = answered_call(db, now, console_env.user(Role.AGENT), recordings=console_env.recordings)
    agent = console_env.login(Role.AGENT)
    url = f"/calls/{call.call_id}/recording"
    no_reason = agent.post(url, data={"csrf_token": csrf(agent)}, headers=JSON)
    assert no_reason.status_code == 400
    grant = agent.post(
        url, data={"csrf_token": csrf(agent), "reason": "şikayet incelemesi"}, headers=JSON
    )
    link = grant.get_json()["url"]
    audio = agent.get(link)
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert audio.data[:4] == b"RIFF"
    played = _audits(console_env, AuditAction.RECORDING_PLAYED)
    assert len(played) == 1 and played[0].call_id == call.call_id
    assert played[0].reason == "şikayet incelemesi"
    # The link is bound to the user who gave the reason, and to that call.
    supervisor = console_env.login(Role.SUPERVISOR)
    assert supervisor.get(link).status_code == 403
    assert agent.get(link.replace(call.call_id, "1795000000.999")).status_code == 403
    assert agent.get(url).status_code == 403  # no grant
    desk = console_env.login(Role.DESK_STAFF)  # no recordings for the desk
    assert desk.post(url, data={"csrf_token": csrf(desk), "reason": "merak"}).status_code == 403


def test_recording_path_outside_the_folder_is_never_served(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    call = answered_call(db, now, console_env.user(Role.AGENT), recordings=console_env.recordings)
    call.recording_path = "../../etc/passwd"
    db.flush()
    agent = console_env.login(Role.AGENT)
    grant = agent.post(
        f"/calls/{call.call_id}/recording",
        data={"csrf_token": csrf(agent), "reason": "deneme"},
        headers=JSON,
    )
    assert grant.status_code == 404 and grant.get_json()["code"] == "unknown_entity"


def test_search_by_phone_in_any_form_tc_code_and_name(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    citizen = ayse(db)
    ticket = sample_ticket(db, now)
    client = console_env.login(Role.AGENT)
    link = f"/citizens/{citizen.id}?"
    for query in ("0505 361 88 77", "+90 505 361 8877", "5053618877", "(0505) 361-88-77"):
        page = client.get("/search", query_string={"q": query}).text
        assert link in page, query
        assert ticket.reference_code in page, query
    assert link in client.get("/search", query_string={"q": AYSE_TC}).text
    code = ticket.reference_code or ""
    by_code = client.get("/search", query_string={"q": code.lower().replace("-", " ")}).text
    assert f">{code}</a>" in by_code and link in by_code
    for name in ("ayse yilmaz", "AYŞE", "Yılmaz", "yil"):
        assert link in client.get("/search", query_string={"q": name}).text, name


def test_name_search_folds_turkish_letters_both_ways(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    isik = add_citizen(db, now, "+905329990011", first_name="Işık", last_name="Çağlayan")
    inci = add_citizen(db, now, "+905329990022", first_name="İnci", last_name="Işıklı")
    client = console_env.login(Role.SUPERVISOR)

    def ids(query: str) -> set[int]:
        page = client.get("/search", query_string={"q": query}).text
        return {int(m) for m in re.findall(r"/citizens/(\d+)\?", page)}

    assert isik.id in ids("ISIK") and isik.id in ids("ışık") and isik.id in ids("isik")
    assert isik.id in ids("caglayan") and isik.id in ids("ÇAĞLAYAN")
    assert inci.id in ids("INCI") and inci.id in ids("inci") and inci.id in ids("İNCİ")
    assert ids("ışıklı") == {inci.id}  # "Işıklı" starts with "ışıklı"; "Işık" does not
    assert ids("inci isik") == {inci.id}  # every word must match


def test_search_errors_are_explained(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.AGENT)
    assert "kontrol haneleri" in client.get("/search?q=12345678901").text
    assert "en az 2" in client.get("/search?q=a").text


def test_liaisons_search_tickets_but_never_citizens(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    sample_ticket(db, now)
    page = console_env.login(Role.DEPARTMENT_LIAISON).get("/search?q=0505 361 88 77").text
    assert 'id="citizen-results"' not in page and "/citizens/" not in page


def test_audit_page_lists_and_filters(console_env: ConsoleEnv) -> None:
    citizen = ayse(console_env.db)
    agent = console_env.login(Role.AGENT)
    agent.get(f"/citizens/{citizen.id}?why=telefonla+arayan")
    agent.post(
        f"/citizens/{citizen.id}/tc",
        data={"csrf_token": csrf(agent), "reason": "kimlik teyidi"},
        headers=JSON,
    )
    supervisor = console_env.login(Role.SUPERVISOR)
    page = supervisor.get("/audit").text
    agent_user = console_env.user(Role.AGENT)
    assert "telefonla arayan" in page and "kimlik teyidi" in page and agent_user.full_name in page
    only_tc = supervisor.get("/audit?action=tc_revealed").text
    assert "kimlik teyidi" in only_tc and "telefonla arayan" not in only_tc
    by_citizen = supervisor.get(f"/audit?citizen={citizen.id}").text
    assert "kimlik teyidi" in by_citizen
    count = console_env.db.scalar(select(func.count(AuditEvent.id)))
    assert count and count >= 4  # two sign-ins, the opening, the reveal
    assert console_env.login(Role.AGENT).get("/audit").status_code == 403
