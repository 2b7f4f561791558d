"""The mayor's weekly call list screen (R5.4) through the real console on SQLite and
PostgreSQL: the supervisor's hand draw (published through the outbox), the office's list
page, recording a result with a follow-up ticket, the printable PDF and the report."""

from __future__ import annotations

import io

import pypdf
from sqlalchemy import select

from models import (
    Channel,
    MayorCallEntry,
    MayorCallList,
    MayorCallResult,
    Notification,
    Role,
    Ticket,
)
from services.actors import system_actor
from services.intake import open_ticket
from tests.console.conftest import ConsoleEnv, csrf
from tests.factories import at, mobile, request, valid_tc

HOODS = ["Yıldıztepe", "Çamlıbel", "Kuzeykent", "Ihlamurdere"]
TYPES = ["yol_bozuklugu", "cevre_temizligi", "gurultu", "park_bakimi"]


def _past_week_tickets(env: ConsoleEnv) -> list[Ticket]:
    """Four tickets of the week before the console's clock (Tuesday 24 November 2026)."""
    db, robot = env.db, system_actor(env.db, "tests", env.clock())
    tickets = []
    for i in range(4):
        when = at(2026, 11, 17 + i, 11)
        values = {
            "tc_number": valid_tc(8800 + i),
            "phone": mobile(8800 + i),
            "first_name": "Gül",
            "last_name": f"Öztürk{i}",
            "neighbourhood": HOODS[i],
            "ticket_type_code": TYPES[i],
            "received_at": when,
        }
        tickets.append(open_ticket(db, robot, when, request(Channel.PHONE, **values)).ticket)
    db.flush()
    return tickets


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_draw_list_record_result_pdf_and_report(console_env: ConsoleEnv) -> None:
    db = console_env.db
    tickets = _past_week_tickets(console_env)
    codes = {t.reference_code for t in tickets}

    supervisor = console_env.login(Role.SUPERVISOR)
    page = supervisor.get("/mayor")
    assert page.status_code == 200 and 'id="mayor-draw"' in page.text
    drawn = supervisor.post("/mayor/draw", data={"csrf_token": csrf(supervisor)})
    assert drawn.status_code == 302
    db.expire_all()
    call_list = db.scalars(select(MayorCallList)).one()
    assert call_list.week_start.isoformat() == "2026-11-23"
    assert call_list.published_at is not None
    assert call_list.drawn_by_id == console_env.user(Role.SUPERVISOR).id
    assert {e.ticket.reference_code for e in call_list.entries} == codes
    mails = db.scalars(
        select(Notification).where(Notification.idempotency_key.like(f"mayor-%:{call_list.id}:%"))
    ).all()
    assert {m.template for m in mails} == {"mayor_weekly_list"}  # no earlier list to report
    # Drawing again the same week keeps the list.
    again = supervisor.post(
        "/mayor/draw", data={"csrf_token": csrf(supervisor)}, follow_redirects=True
    )
    assert "zaten çekilmiş" in again.text
    assert len(db.scalars(select(MayorCallList)).all()) == 1

    office = console_env.login(Role.MAYORS_OFFICE)
    listing = office.get("/mayor")
    assert listing.status_code == 200
    for ticket in tickets:
        assert ticket.reference_code in listing.text
    assert "Gül Öztürk0" in listing.text and 'id="mayor-draw"' not in listing.text
    first = call_list.entries[0]
    recorded = office.post(
        "/mayor/record",
        data={
            "csrf_token": csrf(office),
            "entry_id": str(first.id),
            "list_id": str(call_list.id),
            "result": "reached",
            "called_at": "2026-11-24T11:15",
            "notes": "Başkanımıza teşekkür etti.",
            "follow_up": "Parktaki bank kırık, değiştirilsin.",
        },
        follow_redirects=True,
    )
    assert recorded.status_code == 200
    assert "Takip başvurusu açıldı" in recorded.text
    db.expire_all()
    entry = db.get(MayorCallEntry, first.id)
    assert entry is not None and entry.result is MayorCallResult.REACHED
    assert entry.called_at == at(2026, 11, 24, 11, 15)
    assert entry.recorded_by_id == console_env.user(Role.MAYORS_OFFICE).id
    follow = db.get(Ticket, entry.follow_up_ticket_id)
    assert follow is not None and follow.channel is Channel.MAYORS_OFFICE
    assert follow.reference_code in recorded.text
    # The office may open its follow-up ticket (channel mayor's office).
    assert office.get(f"/tickets/{follow.id}").status_code == 200

    refused = office.post(
        "/mayor/record",
        data={"csrf_token": csrf(office), "entry_id": str(first.id), "result": "pending"},
        follow_redirects=True,
    )
    assert "Arama sonucu geçersiz" in refused.text

    pdf = office.get(f"/mayor/pdf?list={call_list.id}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    text = _pdf_text(pdf.data)
    for ticket in tickets:
        assert ticket.reference_code in text
    assert "Başkanlık Haftalık Arama Listesi" in text and "ulaşıldı" in text

    report = supervisor.get(f"/mayor/report?list={call_list.id}")
    assert report.status_code == 200
    assert "1 / 4 arama tamamlandı" in report.text
    assert follow.reference_code in report.text


def test_empty_state_and_who_may_see_the_list(console_env: ConsoleEnv) -> None:
    office = console_env.login(Role.MAYORS_OFFICE)
    page = office.get("/mayor")
    assert page.status_code == 200 and 'id="mayor-empty"' in page.text
    assert office.get("/mayor/pdf").status_code == 404
    assert office.get("/mayor/report").status_code == 200
    draw = office.post(
        "/mayor/draw",
        data={"csrf_token": csrf(office)},
        headers={"Accept": "application/json"},
    )
    assert draw.status_code == 403
    agent = console_env.login(Role.AGENT)
    assert agent.get("/mayor", headers={"Accept": "application/json"}).status_code == 403


def test_the_pdf_follows_the_screen_language(console_env: ConsoleEnv) -> None:
    _past_week_tickets(console_env)
    supervisor = console_env.login(Role.SUPERVISOR)
    supervisor.post("/mayor/draw", data={"csrf_token": csrf(supervisor)})
    supervisor.post("/language", data={"lang": "en", "csrf_token": csrf(supervisor)})
    text = _pdf_text(supervisor.get("/mayor/pdf").data)
    assert "The Mayor's Weekly Call List" in text
    page = supervisor.get("/mayor")
    assert "Printable PDF" in page.text and "Save the result" in page.text
