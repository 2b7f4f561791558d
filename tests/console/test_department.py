"""The department inbox: own tickets only; accept, status, notes, photos, resolve with a
message to the citizen (outbox), and more time with a reason (see also
test_department_extension.py for the rules of the extension itself)."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

from sqlalchemy import select

from models import (
    Attachment,
    Channel,
    Notification,
    NotificationChannel,
    Role,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services import sla_clock
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import sample_ticket

JSON = {"Accept": "application/json"}
# A real 1x1 JPEG (what a camera sends, only smaller).
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////"
    "////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQAB"
    "PxA="
)


def test_a_liaison_sees_only_their_own_units_tickets(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    own = sample_ticket(db, now, channel=Channel.PHONE)  # Fen İşleri
    other = sample_ticket(db, now, channel=Channel.PHONE, type_code="gurultu")  # Zabıta
    liaison = console_env.user(Role.DEPARTMENT_LIAISON)
    assert own.department_id == liaison.department_id != other.department_id
    client = console_env.login(Role.DEPARTMENT_LIAISON)
    inbox = client.get("/department").text
    assert own.reference_code in inbox and other.reference_code not in inbox
    assert 'name="department"' not in inbox  # no unit picker for a liaison
    assert client.get(f"/department/{own.id}").status_code == 200
    refused = client.get(f"/department/{other.id}", headers=JSON)
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_permitted"
    asked = client.get("/department?department=ZABITA", headers=JSON)
    assert asked.status_code == 403
    changed = client.post(
        f"/department/{other.id}/note", data={"note": "x", "csrf_token": csrf(client)}, headers=JSON
    )
    assert changed.status_code == 403
    assert not db.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == other.id, TicketEvent.action == TimelineAction.NOTE
        )
    ).all()
    # The supervisor picks the unit.
    supervisor = console_env.login(Role.SUPERVISOR)
    zabita = supervisor.get("/department?department=ZABITA").text
    assert other.reference_code in zabita and own.reference_code not in zabita


def test_accept_then_status_and_note(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    liaison = console_env.user(Role.DEPARTMENT_LIAISON)
    client = console_env.login(Role.DEPARTMENT_LIAISON)
    token = csrf(client)
    assert (
        client.post(f"/department/{ticket.id}/accept", data={"csrf_token": token}).status_code
        == 302
    )
    db.refresh(ticket)
    assert ticket.status is TicketStatus.IN_PROGRESS and ticket.assigned_to_id == liaison.id
    again = client.post(f"/department/{ticket.id}/accept", data={"csrf_token": token}, headers=JSON)
    assert again.status_code == 400
    console_env.clock.advance(minutes=10)  # (within the idle time-out)
    client.post(
        f"/department/{ticket.id}/status",
        data={"status": "waiting_on_citizen", "note": "Kapı numarası soruldu", "csrf_token": token},
    )
    db.refresh(ticket)
    assert ticket.status is TicketStatus.WAITING_ON_CITIZEN
    assert ticket.sla_paused_at == console_env.clock()  # the SLA clock stopped
    bad = client.post(
        f"/department/{ticket.id}/status",
        data={"status": "merged", "csrf_token": token},
        headers=JSON,
    )
    assert bad.status_code == 400
    client.post(
        f"/department/{ticket.id}/note", data={"note": "Ekip yönlendirildi.", "csrf_token": token}
    )
    notes = db.scalars(
        select(TicketEvent.note).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == TimelineAction.NOTE
        )
    ).all()
    assert notes == ["Ekip yönlendirildi."]
    page = client.get(f"/department/{ticket.id}").text
    assert "Ekip yönlendirildi." in page and "Kapı numarası soruldu" in page


def test_resolve_writes_the_message_to_the_citizen_into_the_outbox(
    console_env: ConsoleEnv,
) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    client = console_env.login(Role.DEPARTMENT_LIAISON)
    token = csrf(client)
    empty = client.post(
        f"/department/{ticket.id}/resolve", data={"message": " ", "csrf_token": token}, headers=JSON
    )
    assert empty.status_code == 400 and empty.get_json()["code"] == "missing_field"
    message = "Menekşe Sokak'taki çukur bugün asfaltlandı."
    response = client.post(
        f"/department/{ticket.id}/resolve", data={"message": message, "csrf_token": token}
    )
    assert response.status_code == 302
    db.refresh(ticket)
    assert ticket.status is TicketStatus.RESOLVED and ticket.resolution == message
    [sms] = db.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.template == "ticket_resolved"
        )
    ).all()
    assert sms.channel is NotificationChannel.SMS and sms.recipient == "+905053618877"
    assert sms.payload["resolution"] == message
    assert sms.payload["reference_code"] == ticket.reference_code


def test_photos_are_checked_by_content_stored_and_served(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    client = console_env.login(Role.DEPARTMENT_LIAISON)
    token = csrf(client)
    fake = client.post(
        f"/department/{ticket.id}/photos",
        data={"photos": (io.BytesIO(b"<html>not a photo</html>"), "foto.jpg"), "csrf_token": token},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert fake.status_code == 400 and "foto.jpg" in fake.get_json()["error"]
    assert not db.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    response = client.post(
        f"/department/{ticket.id}/photos",
        data={"photos": (io.BytesIO(JPEG), "kamera.jpg"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    [photo] = db.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert photo.media_type == "image/jpeg" and photo.size_bytes == len(JPEG)
    stored = (
        console_env.app.extensions["acikkapi"].settings.instance_dir / "attachments" / photo.path
    )
    assert stored.read_bytes() == JPEG
    name = photo.path.rsplit("/", 1)[-1]
    page = client.get(f"/department/{ticket.id}").text
    assert f"/department/{ticket.id}/photos/{name}" in page
    served = client.get(f"/department/{ticket.id}/photos/{name}")
    assert served.status_code == 200 and served.data == JPEG
    assert served.headers["Content-Type"] == "image/jpeg"
    assert client.get(f"/department/{ticket.id}/photos/{'0' * 64}.jpg").status_code == 404
    # Another unit's liaison cannot see it.
    other = sample_ticket(db, now, channel=Channel.PHONE, type_code="gurultu")
    assert client.get(f"/department/{other.id}/photos/{name}").status_code == 403


def test_more_time_with_a_reason_moves_the_deadline_and_tells_the_citizen(
    console_env: ConsoleEnv,
) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now, channel=Channel.PHONE)
    previous = ticket.due_at
    client = console_env.login(Role.DEPARTMENT_LIAISON)
    token = csrf(client)
    response = client.post(
        f"/department/{ticket.id}/extend",
        data={"days": "2", "reason": "Asfalt plenti bakımda.", "csrf_token": token},
    )
    assert response.status_code == 302
    db.refresh(ticket)
    clock = sla_clock.clock_for(db, ticket)
    assert clock.between(previous, ticket.due_at) == timedelta(hours=16)  # 2 working days
    [event] = db.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == TimelineAction.DEADLINE_EXTENDED,
        )
    ).all()
    assert event.note == "Asfalt plenti bakımda." and event.data["days"] == 2
    assert event.data["previous_due_at"] == previous.isoformat()
    told = db.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id,
            Notification.template == "ticket_deadline_extended",
        )
    ).all()
    assert len(told) == 1 and told[0].payload["due_at_local"]
    page = client.get(f"/department/{ticket.id}").text
    assert "kalan: 3 gün" in page and "Asfalt plenti bakımda." in page
    too_much = client.post(
        f"/department/{ticket.id}/extend",
        data={"days": "4", "reason": "Yine gecikme", "csrf_token": token},
        headers=JSON,
    )
    assert too_much.status_code == 403 and "3 gün" in too_much.get_json()["error"]
    not_a_number = client.post(
        f"/department/{ticket.id}/extend",
        data={"days": "iki", "reason": "x", "csrf_token": token},
        headers=JSON,
    )
    assert not_a_number.status_code == 400
