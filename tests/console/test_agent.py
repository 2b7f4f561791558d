"""The agent screen without a PBX: the call panel (screen-pop content), the call's ticket
through the one intake path, and what the screen does when Asterisk is down."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import func, select

from models import (
    AuditAction,
    AuditEvent,
    CallRecord,
    Channel,
    Notification,
    NotificationChannel,
    OutboxStatus,
    Role,
    Ticket,
    TicketContact,
    TicketStatus,
)
from tests.console.conftest import PASSWORD, ConsoleEnv, csrf, csrf_from
from tests.console.samples import answered_call, ayse
from tests.factories import valid_tc


def test_call_panel_shows_greeting_card_history_and_audits_the_opening(
    console_env: ConsoleEnv,
) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    citizen = ayse(db)
    earlier = answered_call(db, now, agent, recordings=console_env.recordings, ended=True)
    call = answered_call(db, now, agent)
    client = console_env.login(Role.AGENT)
    response = client.get(f"/agent/calls/{call.call_id}", headers={"X-Requested-With": "fetch"})
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html  # a fragment for the screen's script
    assert f"Açık Kapı, ben {agent.first_name}, size nasıl yardımcı olabilirim?" in html
    assert "AYŞE YILMAZ" in html
    assert "41*******16" in html and "41339237316" not in html  # masked TC only
    assert "0505 361 88 77" in html and "Yıldıztepe" in html  # phones, neighbourhood
    placeholder = db.get(Ticket, call.ticket_id)
    assert placeholder is not None and placeholder.reference_code in html
    assert "Önceki görüşmeler" in html and "Dinle" in html  # the earlier call's recording
    assert earlier.call_id in html
    assert 'name="csrf_token"' in html and 'id="ticket-form"' in html
    assert f'value="{citizen.id}"' in html  # the form carries the caller's citizen
    opened = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == AuditAction.CITIZEN_OPENED, AuditEvent.call_id == call.call_id
        )
    ).all()
    assert len(opened) == 1 and opened[0].citizen_id == citizen.id
    assert opened[0].actor_id == agent.id and opened[0].reason.startswith("screen pop")


def test_the_agent_screen_shows_the_current_call_after_a_reload(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent)
    page = console_env.login(Role.AGENT).get("/agent").text
    assert f'data-call-id="{call.call_id}"' in page
    assert "Santral (Asterisk) şu anda yanıt vermiyor" in page  # the PBX is down in tests


def test_an_agent_cannot_open_another_agents_call(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent)
    other = db.scalars(
        select(type(agent)).where(type(agent).role == Role.AGENT, type(agent).id != agent.id)
    ).first()
    assert other is not None
    other.password_hash = agent.password_hash
    db.flush()
    client = console_env.client()
    token = csrf_from(client.get("/login").text)
    client.post(
        "/login", data={"username": other.username, "password": PASSWORD, "csrf_token": token}
    )
    refused = client.get(f"/agent/calls/{call.call_id}", headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_permitted"
    chief = console_env.login(Role.UNIT_CHIEF)  # unit chiefs see every call
    assert chief.get(f"/agent/calls/{call.call_id}").status_code == 200


def _ticket_form(client: FlaskClient, call: CallRecord, **fields: str) -> dict[str, str]:
    page = client.get(f"/agent/calls/{call.call_id}", headers={"X-Requested-With": "fetch"}).text
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
    assert token
    data = {
        "csrf_token": csrf(client),
        "form_token": token.group(1),
        "citizen_id": str(call.citizen_id or ""),
        "phone": "0505 361 88 77",
        "ticket_type": "yol_bozuklugu",
        "description": "Menekşe Sokak'ta derin çukur, araçlar zarar görüyor.",
        "neighbourhood": "Yıldıztepe",
        "address": "Menekşe Sokak No: 23",
    }
    data.update(fields)
    return data


def test_ticket_from_the_call_opens_through_intake_and_absorbs_the_placeholder(
    console_env: ConsoleEnv,
) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent)
    placeholder_id = call.ticket_id
    client = console_env.login(Role.AGENT)
    data = _ticket_form(client, call)
    response = client.post(f"/agent/calls/{call.call_id}/ticket", data=data)
    assert response.status_code == 302
    page = client.get(response.location)
    db.expire_all()
    record = db.scalar(select(CallRecord).where(CallRecord.call_id == call.call_id))
    assert record is not None and record.ticket_id != placeholder_id
    ticket = db.get(Ticket, record.ticket_id)
    assert ticket is not None and ticket.reference_code is not None
    assert ticket.reference_code in page.text and "Başvuru kaydedildi" in page.text
    assert ticket.channel is Channel.PHONE and ticket.received_by_id == agent.id
    assert ticket.ticket_type.code == "yol_bozuklugu" and ticket.citizen_id == ayse(db).id
    assert ticket.department is not None and ticket.department.code == "FEN_ISLERI"
    # The placeholder opened at answer is merged into it: the call's contact moved along.
    placeholder = db.get(Ticket, placeholder_id)
    assert placeholder is not None and placeholder.status is TicketStatus.MERGED
    assert placeholder.merged_into_id == ticket.id
    refs = db.scalars(
        select(TicketContact.external_ref).where(TicketContact.ticket_id == ticket.id)
    ).all()
    assert call.call_id in refs
    # The acknowledgement with the reference code is in the outbox.
    sms = db.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.channel == NotificationChannel.SMS
        )
    ).all()
    assert [n.recipient for n in sms] == ["+905053618877"]
    assert sms[0].payload.get("reference_code") == ticket.reference_code
    assert sms[0].status is OutboxStatus.PENDING and sms[0].available_at <= now
    # The placeholder's own acknowledgement was held back at answer and is now withdrawn:
    # the caller gets one SMS, with the code of the ticket the agent wrote (decision 0023).
    held = db.scalars(select(Notification).where(Notification.ticket_id == placeholder_id)).all()
    assert [(n.idempotency_key, n.status) for n in held] == [
        (f"ack:ticket:{placeholder_id}", OutboxStatus.WITHDRAWN)
    ]
    assert held[0].available_at > now
    # The citizen's history shows the placeholder as merged into the new ticket.
    history = client.get(f"/citizens/{ayse(db).id}?why=kontrol").text
    assert f"→ {ticket.reference_code}" in history
    # Submitting the same form again (double click, reload) changes nothing.
    tickets = db.scalar(select(func.count(Ticket.id)))
    contacts = db.scalar(select(func.count(TicketContact.id)))
    again = client.post(f"/agent/calls/{call.call_id}/ticket", data=data)
    assert again.status_code == 302 and again.location == response.location
    db.expire_all()
    assert db.scalar(select(func.count(Ticket.id))) == tickets
    assert db.scalar(select(func.count(TicketContact.id))) == contacts


def test_resolved_at_first_contact(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent)
    client = console_env.login(Role.AGENT)
    data = _ticket_form(
        client,
        call,
        ticket_type="borc_sorgulama",
        description="Emlak vergisi borcunu sordu.",
        resolved_at_first_contact="1",
        resolution="Borç bilgisi telefonda verildi.",
    )
    response = client.post(f"/agent/calls/{call.call_id}/ticket", data=data)
    assert response.status_code == 302
    db.expire_all()
    record = db.scalar(select(CallRecord).where(CallRecord.call_id == call.call_id))
    assert record is not None
    ticket = db.get(Ticket, record.ticket_id)
    assert ticket is not None and ticket.status is TicketStatus.RESOLVED
    assert (
        ticket.resolved_at_first_contact and ticket.resolution == "Borç bilgisi telefonda verildi."
    )


def test_an_unknown_caller_gets_a_citizen_from_the_form(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent, caller="0532 765 43 21")
    client = console_env.login(Role.AGENT)
    tc = valid_tc(771)
    data = _ticket_form(client, call, phone="", first_name="ismail", last_name="ışık", tc_number=tc)
    response = client.post(f"/agent/calls/{call.call_id}/ticket", data=data)
    assert response.status_code == 302, response.text
    db.expire_all()
    record = db.scalar(select(CallRecord).where(CallRecord.call_id == call.call_id))
    assert record is not None
    ticket = db.get(Ticket, record.ticket_id)
    assert ticket is not None and ticket.citizen is not None
    assert ticket.citizen.tc_number == tc
    assert (ticket.citizen.first_name, ticket.citizen.last_name) == ("İsmail", "Işık")
    assert "+905327654321" in [p.e164 for p in ticket.citizen.phones]  # the caller's number


def test_invalid_form_input_is_refused_in_turkish_and_nothing_is_written(
    console_env: ConsoleEnv,
) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent)
    client = console_env.login(Role.AGENT)
    data = _ticket_form(client, call, tc_number="12345678901")
    response = client.post(f"/agent/calls/{call.call_id}/ticket", data=data)
    assert response.status_code == 400 and "kontrol haneleri" in response.text
    db.expire_all()
    record = db.scalar(select(CallRecord).where(CallRecord.call_id == call.call_id))
    assert record is not None and record.ticket_id == call.ticket_id  # still the placeholder


def test_queue_actions_report_a_pbx_that_is_down(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.AGENT)
    token = csrf(client)
    for path, data in (
        ("/agent/queue/login", {}),
        ("/agent/ready", {}),
        ("/agent/pause", {"reason": "mola"}),
        ("/agent/wrapup", {}),
        ("/agent/queue/logout", {}),
    ):
        response = client.post(
            path, data={"csrf_token": token, **data}, headers={"Accept": "application/json"}
        )
        assert response.status_code == 400, path
        assert response.get_json()["code"] == "pbx_unavailable", path
    bad = client.post(
        "/agent/pause",
        data={"csrf_token": token, "reason": "uyku"},
        headers={"Accept": "application/json"},
    )
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_field"
    state = client.get("/agent/state").get_json()
    assert state["state"] == "unknown" and "yanıt vermiyor" in state["error"]


def test_transfer_only_to_listed_targets(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    call = answered_call(db, now, agent)
    client = console_env.login(Role.AGENT)
    token = csrf(client)
    json = {"Accept": "application/json"}
    bad = client.post(
        f"/agent/calls/{call.call_id}/transfer",
        data={"csrf_token": token, "target": "9999"},
        headers=json,
    )
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid_field"
    listed = client.post(
        f"/agent/calls/{call.call_id}/transfer",
        data={"csrf_token": token, "target": "201"},
        headers=json,
    )
    assert listed.get_json()["code"] == "pbx_unavailable"  # allowed; the PBX is down here
