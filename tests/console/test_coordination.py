"""The coordination desk: every incoming ticket; forward (both liaisons notified), re-route,
refer, merge duplicates after a preview of both, split (through the one intake path)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from models import (
    Channel,
    Department,
    Notification,
    NotificationChannel,
    Role,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import ayse, sample_ticket

JSON = {"Accept": "application/json"}


def _events(env: ConsoleEnv, ticket: Ticket, action: TimelineAction) -> list[TicketEvent]:
    return list(
        env.db.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
            .order_by(TicketEvent.id)
        )
    )


def _department(env: ConsoleEnv, code: str) -> Department:
    found = env.db.scalar(select(Department).where(Department.code == code))
    assert found is not None
    return found


def test_the_desk_lists_tickets_waiting_to_be_routed(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    waiting = sample_ticket(db, now, channel=Channel.PHONE)
    client = console_env.login(Role.AGENT)
    page = client.get("/coordination").text
    assert waiting.reference_code in page
    forwarded = client.post(
        f"/coordination/{waiting.id}/forward",
        data={"department": "FEN_ISLERI", "csrf_token": csrf(client)},
    )
    assert forwarded.status_code == 302
    assert waiting.reference_code not in client.get("/coordination").text  # routed: gone
    assert waiting.reference_code in client.get("/coordination?view=open").text
    only_zabita = client.get("/coordination?view=open&department=ZABITA").text
    assert waiting.reference_code not in only_zabita


def test_forward_notifies_the_primary_and_the_backup_liaison(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE, type_code="gurultu")  # Zabıta
    fen = _department(console_env, "FEN_ISLERI")
    primary, backup = fen.primary_liaison, fen.backup_liaison
    assert primary is not None and backup is not None and primary.id != backup.id
    client = console_env.login(Role.SUPERVISOR)
    response = client.post(
        f"/coordination/{ticket.id}/forward",
        data={
            "department": "FEN_ISLERI",
            "note": "Yol çalışması gürültüsü",
            "csrf_token": csrf(client),
        },
    )
    assert response.status_code == 302
    db.refresh(ticket)
    assert ticket.status is TicketStatus.FORWARDED and ticket.department_id == fen.id
    sent = db.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id,
            Notification.template == "ticket_forwarded_to_liaison",
        )
    ).all()
    console_to = {n.recipient for n in sent if n.channel is NotificationChannel.CONSOLE}
    email_to = {n.recipient for n in sent if n.channel is NotificationChannel.EMAIL}
    assert console_to == {str(primary.id), str(backup.id)}
    assert email_to == {primary.email, backup.email} and None not in email_to
    [event] = _events(console_env, ticket, TimelineAction.FORWARDED)
    assert event.note == "Yol çalışması gürültüsü"
    page = client.get(f"/coordination/{ticket.id}").text
    assert "birime iletildi" in page  # the timeline, with its label


def test_a_liaison_cannot_coordinate(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    client = console_env.login(Role.DEPARTMENT_LIAISON)
    response = client.post(
        f"/coordination/{ticket.id}/forward",
        data={"department": "ZABITA", "csrf_token": csrf(client)},
        headers=JSON,
    )
    assert response.status_code == 403 and response.get_json()["code"] == "role_not_permitted"
    db.refresh(ticket)
    assert ticket.status is TicketStatus.NEW


def test_reroute_by_type_and_refer_externally(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE, type_code="genel")
    client = console_env.login(Role.AGENT)
    token = csrf(client)
    client.post(
        f"/coordination/{ticket.id}/reclassify",
        data={"ticket_type": "su_kacagi", "csrf_token": token},
    )
    db.refresh(ticket)
    assert ticket.ticket_type.code == "su_kacagi"
    refused = client.post(
        f"/coordination/{ticket.id}/refer",
        data={"institution": "YOK", "csrf_token": token},
        headers=JSON,
    )
    assert refused.status_code == 404
    client.post(
        f"/coordination/{ticket.id}/refer",
        data={"institution": "SKI", "note": "Ana boru", "csrf_token": token},
    )
    db.refresh(ticket)
    assert ticket.status is TicketStatus.REFERRED_EXTERNALLY and ticket.department_id is None
    told = db.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.template == "ticket_referred"
        )
    ).all()
    assert len(told) == 1 and told[0].channel is NotificationChannel.SMS
    assert told[0].payload["institution"].startswith("Büyükşehir Su")


def test_merge_preview_shows_both_tickets_then_merges(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    first = sample_ticket(db, now, channel=Channel.PHONE)
    second = sample_ticket(
        db,
        now + timedelta(minutes=5),
        channel=Channel.MAYORS_OFFICE,
        type_code="tehlikeli_yol_bozuklugu",
    )
    second.description = "Menekşe Sokak'taki çukur büyüdü, araçlar zarar görüyor."
    db.flush()
    client = console_env.login(Role.AGENT)
    page = client.get(f"/coordination/{second.id}").text
    assert "Olası tekrarlar" in page and first.reference_code in page  # same person, open
    preview = client.get(f"/coordination/{second.id}/merge?into={first.reference_code}")
    assert preview.status_code == 200
    html = preview.text
    assert second.reference_code in html and first.reference_code in html
    assert "Sokakta çukur var." in html and "araçlar zarar görüyor" in html  # both descriptions
    assert "Tekrar (birleştirilecek)" in html and "Hedef (kalacak)" in html
    assert "Başvuruların türleri farklı." in html  # a warning, not a refusal
    assert html.count("Özel Kalem") >= 1 and "telefon" in html  # each side's contacts
    assert db.scalar(select(Ticket.status).where(Ticket.id == second.id)) is TicketStatus.NEW
    merged = client.post(
        f"/coordination/{second.id}/merge", data={"into_id": first.id, "csrf_token": csrf(client)}
    )
    assert merged.status_code == 302 and merged.location.endswith(f"/coordination/{first.id}")
    db.refresh(second)
    assert second.status is TicketStatus.MERGED and second.merged_into_id == first.id
    channels = set(
        db.scalars(select(TicketContact.channel).where(TicketContact.ticket_id == first.id))
    )
    assert channels == {Channel.PHONE, Channel.MAYORS_OFFICE}


def test_merge_preview_refuses_an_impossible_pair(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    client = console_env.login(Role.AGENT)
    itself = client.get(f"/coordination/{ticket.id}/merge?into_id={ticket.id}", headers=JSON)
    assert itself.status_code == 400
    unknown = client.get(f"/coordination/{ticket.id}/merge?into=ZZZZ-9999", headers=JSON)
    assert unknown.status_code in (400, 404)
    empty = client.get(f"/coordination/{ticket.id}/merge")
    assert empty.status_code == 200 and 'name="into"' in empty.text  # asks for the target


def test_split_opens_the_other_part_through_intake(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    original = sample_ticket(db, now - timedelta(hours=2), channel=Channel.PHONE)
    client = console_env.login(Role.AGENT)
    page = client.get(f"/coordination/{original.id}").text
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
    assert token is not None
    console_env.clock.advance(minutes=10)
    form = {
        "ticket_type": "cop_toplanmadi",
        "description": "Ayrıca sokağın çöpü üç gündür toplanmadı.",
        "form_token": token.group(1),
        "csrf_token": csrf(client),
    }
    response = client.post(f"/coordination/{original.id}/split", data=form)
    assert response.status_code == 302
    part_id = int(response.location.rsplit("/", 1)[1])
    part = db.get(Ticket, part_id)
    assert part is not None and part.id != original.id
    assert part.ticket_type.code == "cop_toplanmadi"
    assert part.department is not None and part.department.code == "TEMIZLIK_ISLERI"
    assert part.citizen_id == ayse(db).id and part.channel is Channel.PHONE
    assert part.received_at == original.received_at  # deadlines count from the application
    assert part.description == form["description"]
    [into] = _events(console_env, original, TimelineAction.SPLIT)
    [came_from] = _events(console_env, part, TimelineAction.SPLIT)
    assert into.data["split_into"] == part.reference_code
    assert came_from.data["split_from"] == original.reference_code
    ack = db.scalars(
        select(Notification).where(
            Notification.ticket_id == part.id, Notification.template == "ticket_opened"
        )
    ).all()
    assert len(ack) == 1  # the citizen gets the new part's reference code
    db.refresh(original)
    assert original.ticket_type.code == "yol_bozuklugu" and original.status is TicketStatus.NEW
    # The same form again (a double click): nothing new.
    again = client.post(f"/coordination/{original.id}/split", data=form)
    assert again.status_code == 302
    assert len(_events(console_env, original, TimelineAction.SPLIT)) == 1
    assert db.scalars(
        select(Ticket.id).where(
            Ticket.citizen_id == part.citizen_id, Ticket.ticket_type_id == part.ticket_type_id
        )
    ).all() == [part.id]


def test_split_into_the_persons_open_ticket_of_that_type_is_not_counted_twice(
    console_env: ConsoleEnv,
) -> None:
    db, now = console_env.db, console_env.clock()
    existing = sample_ticket(db, now, channel=Channel.PHONE, type_code="cop_toplanmadi")
    original = sample_ticket(db, now, channel=Channel.MAYORS_OFFICE)
    client = console_env.login(Role.UNIT_CHIEF)
    response = client.post(
        f"/coordination/{original.id}/split",
        data={
            "ticket_type": "cop_toplanmadi",
            "description": "Çöp de toplanmıyor.",
            "form_token": "a" * 32,
            "csrf_token": csrf(client),
        },
    )
    assert response.status_code == 302 and response.location.endswith(
        f"/coordination/{existing.id}"
    )
    contacts = db.scalars(
        select(TicketContact.channel).where(TicketContact.ticket_id == existing.id)
    ).all()
    assert sorted(contacts) == sorted([Channel.PHONE, Channel.MAYORS_OFFICE])


def test_split_refuses_the_same_type_and_closed_tickets(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    client = console_env.login(Role.AGENT)
    token = csrf(client)
    same = client.post(
        f"/coordination/{ticket.id}/split",
        data={
            "ticket_type": "yol_bozuklugu",
            "description": "x",
            "form_token": "b" * 32,
            "csrf_token": token,
        },
        headers=JSON,
    )
    assert same.status_code == 400 and same.get_json()["code"] == "invalid_field"
    # Without a script the refusal comes back on the ticket's page, in Turkish.
    shown = client.post(
        f"/coordination/{ticket.id}/split",
        data={
            "ticket_type": "cop_toplanmadi",
            "description": " ",
            "form_token": "c" * 32,
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    assert "Ayrılacak bölümün açıklaması gerekli." in shown.text
    assert _events(console_env, ticket, TimelineAction.SPLIT) == []
