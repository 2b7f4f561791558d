"""The walk-in desk: the greeting with the staff member's name, the tablet form with
camera inputs, a ticket (channel desk) with its photos through the one intake path."""

from __future__ import annotations

import html as htmllib
import io
import re

from sqlalchemy import func, select

from models import (
    Attachment,
    Channel,
    Notification,
    NotificationChannel,
    Role,
    Ticket,
    TicketContact,
)
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.test_department import JPEG
from tests.factories import valid_tc

JSON = {"Accept": "application/json"}


def _token(html: str) -> str:
    found = re.search(r'name="form_token" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def _form(client: object, **fields: object) -> dict[str, object]:
    page = client.get("/desk").text  # type: ignore[attr-defined]
    data: dict[str, object] = {
        "ticket_type": "park_bakimi",
        "description": "Parktaki salıncak kırık, çocuklar için tehlikeli.",
        "first_name": "zeynep",
        "last_name": "kılıç",
        "tc_number": valid_tc(4242),
        "phone": "0532 700 11 22",
        "neighbourhood": "Yıldıztepe",
        "address": "Lale Parkı",
        "language": "tr",
        "form_token": _token(page),
        "csrf_token": csrf(client),  # type: ignore[arg-type]
    }
    data.update(fields)
    return data


def _tickets(env: ConsoleEnv) -> int:
    return int(env.db.scalar(select(func.count(Ticket.id))) or 0)


def test_the_form_greets_with_the_staff_members_name_and_opens_the_camera(
    console_env: ConsoleEnv,
) -> None:
    staff = console_env.user(Role.DESK_STAFF)
    client = console_env.login(Role.DESK_STAFF)
    home = client.get("/")
    assert home.status_code == 302 and home.location == "/desk"  # the desk is their screen
    html = htmllib.unescape(client.get("/desk").text)
    greeting = (
        f"Belediyemize (Açık Kapı'ya) hoş geldiniz, ben {staff.first_name}, "
        "size nasıl yardımcı olabilirim?"
    )
    assert greeting in html
    assert staff.staff_code in html
    assert html.count('accept="image/*" capture="environment"') == 3
    assert 'enctype="multipart/form-data"' in html
    client.post("/language", data={"lang": "en", "csrf_token": csrf(client)})
    english = htmllib.unescape(client.get("/desk").text)
    assert f"Welcome to our municipality (Açık Kapı), I am {staff.first_name}" in english


def test_a_desk_application_with_a_photo_creates_the_ticket_with_the_attachment(
    console_env: ConsoleEnv,
) -> None:
    db = console_env.db
    staff = console_env.user(Role.DESK_STAFF)
    client = console_env.login(Role.DESK_STAFF)
    data = _form(client, photos=[(io.BytesIO(JPEG), "salincak.jpg"), (io.BytesIO(b""), "")])
    response = client.post("/desk", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.text[:800]
    ticket_id = int(response.location.rsplit("/", 1)[1])
    ticket = db.get(Ticket, ticket_id)
    assert ticket is not None
    assert ticket.channel is Channel.DESK and ticket.received_by_id == staff.id
    assert ticket.place_of_application == "Başvuru Merkezi"
    assert ticket.ticket_type.code == "park_bakimi"
    assert ticket.citizen is not None and ticket.citizen.first_name == "Zeynep"
    [photo] = db.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert photo.media_type == "image/jpeg" and photo.original_name == "salincak.jpg"
    assert photo.uploaded_by_id == staff.id
    ack = db.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.template == "ticket_opened"
        )
    ).all()
    assert len(ack) == 1 and ack[0].channel is NotificationChannel.SMS
    assert ack[0].recipient == "+905327001122"
    receipt = client.get(response.location).text
    assert ticket.reference_code in receipt and 'id="photo-count">1<' in receipt
    # The same form sent twice (a double tap): the first result, nothing new.
    before = _tickets(console_env)
    data["photos"] = (io.BytesIO(JPEG), "salincak.jpg")
    again = client.post("/desk", data=data, content_type="multipart/form-data")
    assert again.location == response.location
    assert _tickets(console_env) == before
    assert (
        db.scalar(select(func.count(Attachment.id)).where(Attachment.ticket_id == ticket.id)) == 1
    )


def test_a_refused_form_keeps_what_was_typed_and_writes_nothing(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.DESK_STAFF)
    before = _tickets(console_env)
    bad_photo = _form(client, photos=(io.BytesIO(b"GIF89a..."), "cizim.gif"))
    response = client.post("/desk", data=bad_photo, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "cizim.gif bir fotoğraf değil" in response.text
    assert "Parktaki salıncak kırık" in response.text and 'value="Lale Parkı"' in response.text
    assert _tickets(console_env) == before
    no_name = _form(client, first_name="")
    response = client.post("/desk", data=no_name, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Bu kanal için zorunlu alan eksik: ad." in response.text
    bad_tc = _form(client, tc_number="12345678901")
    response = client.post("/desk", data=bad_tc, content_type="multipart/form-data")
    assert response.status_code == 400 and "kontrol haneleri" in response.text
    assert _tickets(console_env) == before
    assert (
        console_env.db.scalar(
            select(func.count(TicketContact.id)).where(TicketContact.channel == Channel.DESK)
        )
        == 0
    )


def test_a_second_application_of_the_same_kind_joins_the_open_ticket(
    console_env: ConsoleEnv,
) -> None:
    client = console_env.login(Role.DESK_STAFF)
    first = client.post("/desk", data=_form(client), content_type="multipart/form-data")
    second = client.post(
        "/desk",
        data=_form(
            client, description="Salıncak hâlâ kırık.", photos=(io.BytesIO(JPEG), "yeni.jpg")
        ),
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert second.status_code == 200 and "Açık başvuruya eklendi" in second.text
    ticket_id = int(first.location.rsplit("/", 1)[1])
    photos = console_env.db.scalars(
        select(Attachment).where(Attachment.ticket_id == ticket_id)
    ).all()
    assert [p.original_name for p in photos] == ["yeni.jpg"]  # the photo joins the same ticket
