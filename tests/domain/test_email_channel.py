"""The e-mail channel as a domain service (R1.3): new mail → ticket, replies → contacts.

Runs on SQLite and PostgreSQL (the ``session`` fixture); the IMAP side is tested against a
real dovecot in tests/messaging/test_email_imap.py.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Attachment,
    AttachmentKind,
    Base,
    Channel,
    Citizen,
    Department,
    Notification,
    NotificationChannel,
    StaffUser,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services import reference_code
from services.email_channel import (
    EMPTY_MESSAGE,
    TRUNCATED_MARK,
    EmailDisposition,
    InboundAttachment,
    InboundEmail,
    external_ref_for,
    handle_inbound_email,
    reference_code_in_subject,
    split_display_name,
    ticket_email_subject,
)
from services.errors import InvalidEmail, MissingField
from services.intake import open_ticket
from services.intake_request import MAX_DESCRIPTION
from services.ticket_workflow import merge_tickets, resolve_ticket
from tests.factories import add_citizen, mobile_e164, request, valid_tc

# Smallest real files of the accepted kinds (the channel checks content against the type).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1d1e3c70000000049454e44ae426082"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _mail(n: int, **fields: object) -> InboundEmail:
    values: dict[str, object] = {
        "message_id": f"<mesaj-{n}@eposta.example>",
        "from_address": f"vatandas{n}@eposta.example",
        "from_name": "Ayşe Yılmaz",
        "subject": "Parkta kırık salıncak",
        "body_text": "Merhaba, Çınar Parkı'ndaki salıncak kırık; çocuklar için tehlikeli.",
        "received_at": datetime(2026, 11, 24, 6, 30, tzinfo=UTC),  # before FIXED_NOW
    }
    values.update(fields)
    return InboundEmail(**values)  # type: ignore[arg-type]


def _counts(session: Session) -> dict[str, int]:
    tables: list[type[Base]] = [
        Ticket,
        TicketContact,
        TicketEvent,
        Notification,
        Attachment,
        Citizen,
    ]
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in tables
    }


def _events(session: Session, ticket_id: int) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "attachments"


# --- new mail → ticket -----------------------------------------------------------------


def test_new_mail_from_unknown_sender_opens_unclassified_ticket_and_acknowledges_by_email(
    session: Session, now: datetime, store: Path
) -> None:
    mail = _mail(1, received_at=now - timedelta(minutes=20))
    outcome = handle_inbound_email(session, now, mail, attachment_dir=store)

    assert outcome.disposition is EmailDisposition.TICKET_OPENED
    ticket = session.get(Ticket, outcome.ticket_id)
    assert ticket is not None and ticket.reference_code == outcome.reference_code
    assert ticket.channel is Channel.EMAIL
    assert ticket.ticket_type.code == "genel"
    department = session.get(Department, ticket.department_id)
    assert department is not None and department.code == "ACIK_KAPI"
    assert ticket.received_at == now - timedelta(minutes=20)
    assert ticket.description == (
        "Parkta kırık salıncak\n\n"
        "Merhaba, Çınar Parkı'ndaki salıncak kırık; çocuklar için tehlikeli."
    )
    contact = session.get(TicketContact, outcome.contact_id)
    assert contact is not None
    assert contact.external_ref == "mesaj-1@eposta.example"
    assert contact.email == "vatandas1@eposta.example"
    assert contact.contact_name == "Ayşe Yılmaz"
    actor = session.get(StaffUser, contact.received_by_id)
    assert actor is not None and actor.username == "system.email"
    citizen = session.get(Citizen, ticket.citizen_id)
    assert citizen is not None and outcome.citizen_match == "new"
    assert (citizen.email, citizen.first_name, citizen.last_name) == (
        "vatandas1@eposta.example",
        "Ayşe",
        "Yılmaz",
    )
    ack = session.scalar(select(Notification).where(Notification.ticket_id == ticket.id))
    assert ack is not None
    assert (ack.channel, ack.recipient, ack.template) == (
        NotificationChannel.EMAIL,
        "vatandas1@eposta.example",
        "ticket_opened",
    )
    assert ack.payload["reference_code"] == ticket.reference_code


def test_same_message_twice_changes_nothing(session: Session, now: datetime, store: Path) -> None:
    mail = _mail(2, attachments=(InboundAttachment("foto.png", "image/png", PNG),))
    first = handle_inbound_email(session, now, mail, attachment_dir=store)
    before = _counts(session)

    again = handle_inbound_email(session, now + timedelta(minutes=1), mail, attachment_dir=store)

    assert again.disposition is EmailDisposition.REPLAYED
    assert (again.ticket_id, again.contact_id) == (first.ticket_id, first.contact_id)
    assert again.attachment_ids == ()
    assert _counts(session) == before


def test_sender_known_by_email_is_matched_and_acknowledged_like_any_intake(
    session: Session, now: datetime, store: Path
) -> None:
    citizen = add_citizen(
        session,
        now,
        mobile_e164(5501),
        tc_number=valid_tc(5501),
        first_name="Mehmet",
        last_name="Kaya",
        email="mehmet.kaya@eposta.example",
    )
    outcome = handle_inbound_email(
        session,
        now,
        _mail(3, from_address="mehmet.kaya@EPOSTA.example", from_name="M. Kaya"),
        attachment_dir=store,
    )

    ticket = session.get(Ticket, outcome.ticket_id)
    assert ticket is not None and ticket.citizen_id == citizen.id
    assert outcome.citizen_match == "email"
    assert (citizen.first_name, citizen.last_name) == ("Mehmet", "Kaya")  # names never replaced
    ack = session.scalar(select(Notification).where(Notification.ticket_id == ticket.id))
    # The intake's rule: a mobile number the citizen did not refuse SMS on comes first.
    assert ack is not None and (ack.channel, ack.recipient) == (
        NotificationChannel.SMS,
        mobile_e164(5501),
    )


def test_second_mail_without_code_joins_the_senders_open_unclassified_ticket(
    session: Session, now: datetime, store: Path
) -> None:
    first = handle_inbound_email(session, now, _mail(4), attachment_dir=store)
    second = handle_inbound_email(
        session,
        now,
        _mail(5, from_address="vatandas4@eposta.example", subject="Bir şey daha"),
        attachment_dir=store,
    )

    assert second.disposition is EmailDisposition.ADDED_TO_OPEN_TICKET
    assert second.ticket_id == first.ticket_id and second.contact_id != first.contact_id
    assert (
        session.scalar(select(func.count()).where(TicketContact.ticket_id == first.ticket_id)) == 2
    )


# --- replies naming a ticket -----------------------------------------------------------


def test_reply_with_code_in_subject_is_added_to_that_ticket_and_acknowledged(
    session: Session, now: datetime, store: Path
) -> None:
    opened = handle_inbound_email(session, now, _mail(6), attachment_dir=store)
    code = opened.reference_code
    assert code is not None
    tickets_before = session.scalar(select(func.count()).select_from(Ticket))

    reply = handle_inbound_email(
        session,
        now + timedelta(hours=2),
        _mail(
            7,
            from_address="vatandas6@eposta.example",
            subject=f"YNT: {ticket_email_subject(code, 'tr', 'Açık Kapı Belediyesi')}",
            body_text="Salıncağın fotoğrafını ekledim.\n\n> Başvurunuz alındı.",
            attachments=(InboundAttachment("salıncak.jpg", "image/jpeg", JPEG),),
        ),
        attachment_dir=store,
    )

    assert reply.disposition is EmailDisposition.REPLY_ADDED
    assert reply.ticket_id == opened.ticket_id and reply.reference_code == code
    assert session.scalar(select(func.count()).select_from(Ticket)) == tickets_before
    contact = session.get(TicketContact, reply.contact_id)
    assert contact is not None and contact.channel is Channel.EMAIL
    assert contact.external_ref == "mesaj-7@eposta.example"
    assert contact.description.startswith("YNT: [Başvuru ")
    assert "Salıncağın fotoğrafını ekledim." in contact.description
    ticket = session.get(Ticket, opened.ticket_id)
    assert ticket is not None and contact.citizen_id == ticket.citizen_id
    actions = [e.action for e in _events(session, ticket.id)]
    assert actions.count(TimelineAction.CONTACT_ADDED) == 1
    assert TimelineAction.ATTACHMENT_ADDED in actions
    (attachment,) = session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id))
    assert attachment.id in reply.attachment_ids
    assert (attachment.original_name, attachment.media_type, attachment.kind) == (
        "salıncak.jpg",
        "image/jpeg",
        AttachmentKind.PHOTO,
    )
    assert (store / attachment.path).read_bytes() == JPEG
    assert attachment.sha256 == hashlib.sha256(JPEG).hexdigest()
    ack = session.scalar(
        select(Notification).where(Notification.idempotency_key == f"ack:contact:{contact.id}")
    )
    assert ack is not None and ack.template == "ticket_contact_added"
    assert ack.recipient == "vatandas6@eposta.example"


def test_reply_from_someone_else_is_recorded_but_acknowledges_nobody(
    session: Session, now: datetime, store: Path
) -> None:
    opened = handle_inbound_email(session, now, _mail(8), attachment_dir=store)
    notes_before = session.scalar(select(func.count()).select_from(Notification))

    reply = handle_inbound_email(
        session,
        now,
        _mail(9, from_address="baskasi@eposta.example", subject=f"Re: {opened.reference_code}"),
        attachment_dir=store,
    )

    assert reply.disposition is EmailDisposition.REPLY_ADDED
    assert reply.ticket_id == opened.ticket_id and reply.citizen_match == "none"
    assert session.scalar(select(func.count()).select_from(Notification)) == notes_before
    notes = [e for e in _events(session, opened.ticket_id or 0) if e.action is TimelineAction.NOTE]
    assert any("sahibi olarak tanınmadı" in (e.note or "") for e in notes)
    assert session.scalar(select(Citizen).where(Citizen.email == "baskasi@eposta.example")) is None


def test_reply_to_a_resolved_ticket_is_kept_and_the_status_left_to_staff(
    session: Session, now: datetime, store: Path, agent: StaffUser
) -> None:
    opened = handle_inbound_email(session, now, _mail(10), attachment_dir=store)
    ticket = session.get(Ticket, opened.ticket_id)
    assert ticket is not None
    resolve_ticket(session, agent, now, ticket, "Salıncak onarıldı.")

    reply = handle_inbound_email(
        session,
        now + timedelta(days=1),
        _mail(
            11,
            from_address="vatandas10@eposta.example",
            subject=f"Re: [Başvuru {opened.reference_code}]",
        ),
        attachment_dir=store,
    )

    assert reply.disposition is EmailDisposition.REPLY_ADDED and reply.ticket_id == ticket.id
    assert ticket.status is TicketStatus.RESOLVED
    last_note = [e for e in _events(session, ticket.id) if e.action is TimelineAction.NOTE][-1]
    assert "çözüldü" in (last_note.note or "") and last_note.data["status"] == "resolved"


def test_reply_naming_a_merged_ticket_goes_to_the_ticket_it_was_merged_into(
    session: Session, now: datetime, store: Path, agent: StaffUser
) -> None:
    kept = open_ticket(session, agent, now, request(Channel.DESK, tc_number=valid_tc(5601)))
    duplicate = open_ticket(
        session,
        agent,
        now,
        request(Channel.DESK, tc_number=valid_tc(5602), ticket_type_code="gurultu"),
    )
    merge_tickets(session, agent, now, duplicate.ticket, kept.ticket)

    reply = handle_inbound_email(
        session,
        now,
        _mail(12, subject=f"Fwd: [Başvuru {duplicate.ticket.reference_code}] Belediye"),
        attachment_dir=store,
    )

    assert reply.ticket_id == kept.ticket.id
    added = [
        e for e in _events(session, kept.ticket.id) if e.action is TimelineAction.CONTACT_ADDED
    ]
    assert added[-1].data["requested_ticket"] == duplicate.ticket.reference_code


def test_code_with_wrong_check_character_or_unknown_ticket_opens_a_new_ticket(
    session: Session, now: datetime, store: Path
) -> None:
    opened = handle_inbound_email(session, now, _mail(13), attachment_dir=store)
    code = opened.reference_code
    assert code is not None
    body, check = code[:-1], code[-1]
    wrong = body + next(c for c in reference_code.ALPHABET if c != check)
    unknown = reference_code.encode(reference_code.SPACE - 2)

    for n, subject in ((14, f"YNT: [Başvuru {wrong}]"), (15, f"YNT: [Başvuru {unknown}]")):
        outcome = handle_inbound_email(
            session,
            now,
            _mail(n, from_address=f"baska{n}@eposta.example", subject=subject),
            attachment_dir=store,
        )
        assert outcome.disposition is EmailDisposition.TICKET_OPENED
        assert outcome.ticket_id != opened.ticket_id


# --- attachments -----------------------------------------------------------------------


def test_attachments_stored_or_refused_with_the_reason_on_the_timeline(
    session: Session, now: datetime, store: Path
) -> None:
    too_big = b"%PDF-" + b"0" * (20 * 1024 * 1024)
    mail = _mail(
        16,
        attachments=(
            InboundAttachment("C:\\Belgeler\\dilekçe.pdf", "application/pdf", PDF),
            InboundAttachment("IMG_0001", "application/octet-stream", PNG),  # content decides
            InboundAttachment("../../kurulum.exe", "application/x-msdownload", b"MZ\x90\x00"),
            InboundAttachment("foto.jpg", "image/jpeg", b"<html><script>x</script></html>"),
            InboundAttachment("tarama.pdf", "application/pdf", too_big),
            InboundAttachment("boş.png", "image/png", b""),
        ),
    )
    outcome = handle_inbound_email(session, now, mail, attachment_dir=store)

    stored = list(
        session.scalars(
            select(Attachment)
            .where(Attachment.ticket_id == outcome.ticket_id)
            .order_by(Attachment.id)
        )
    )
    assert [(a.original_name, a.media_type) for a in stored] == [
        ("dilekçe.pdf", "application/pdf"),
        ("IMG_0001", "image/png"),
    ]
    assert all((store / a.path).exists() for a in stored)
    assert [(r.filename, r.code) for r in outcome.refused_attachments] == [
        ("kurulum.exe", "invalid_field"),
        ("foto.jpg", "content_mismatch"),
        ("tarama.pdf", "invalid_field"),
        ("boş.png", "content_mismatch"),
    ]
    (note,) = [
        e
        for e in _events(session, outcome.ticket_id or 0)
        if e.action is TimelineAction.NOTE and "ek kabul edilmedi" in (e.note or "")
    ]
    assert "kurulum.exe" in (note.note or "") and "4 ek" in (note.note or "")
    assert [r["filename"] for r in note.data["refused_attachments"]] == [
        "kurulum.exe",
        "foto.jpg",
        "tarama.pdf",
        "boş.png",
    ]
    assert note.data["refused_attachments"][2]["size_bytes"] == len(too_big)


def test_more_than_twenty_attachments_the_rest_are_recorded(
    session: Session, now: datetime, store: Path
) -> None:
    photos = tuple(InboundAttachment(f"f{i}.png", "image/png", PNG) for i in range(22))
    outcome = handle_inbound_email(
        session, now, _mail(17, attachments=photos), attachment_dir=store
    )
    assert len(outcome.attachment_ids) == 20
    assert [r.filename for r in outcome.refused_attachments] == ["f20.png", "f21.png"]
    assert {r.code for r in outcome.refused_attachments} == {"too_many_attachments"}


# --- odd and hostile input -------------------------------------------------------------


def test_auto_submitted_mail_writes_nothing(session: Session, now: datetime, store: Path) -> None:
    before = _counts(session)
    outcome = handle_inbound_email(
        session,
        now,
        _mail(18, subject="Otomatik yanıt: izindeyim", auto_submitted=True),
        attachment_dir=store,
    )
    assert outcome.disposition is EmailDisposition.IGNORED and outcome.ticket_id is None
    assert _counts(session) == before


@pytest.mark.parametrize("sender", ["", "kimse", "a@b", "iki@adres.example, uc@adres.example"])
def test_invalid_sender_is_a_typed_error_before_any_write(
    session: Session, now: datetime, store: Path, sender: str
) -> None:
    before = _counts(session)
    with pytest.raises(InvalidEmail) as caught:
        handle_inbound_email(session, now, _mail(19, from_address=sender), attachment_dir=store)
    assert caught.value.message("tr").startswith("Geçerli bir e-posta adresi değil")
    assert _counts(session) == before


def test_missing_message_id_is_a_typed_error(session: Session, now: datetime, store: Path) -> None:
    with pytest.raises(MissingField):
        handle_inbound_email(session, now, _mail(20, message_id=" <> "), attachment_dir=store)


def test_long_body_is_cut_to_the_description_limit_and_control_characters_removed(
    session: Session, now: datetime, store: Path
) -> None:
    body = "Çöp toplanmıyor.\x00\x07 " + "ğüşıöç " * 3000
    outcome = handle_inbound_email(
        session, now, _mail(21, subject="Çöp\x00 sorunu", body_text=body), attachment_dir=store
    )
    ticket = session.get(Ticket, outcome.ticket_id)
    assert ticket is not None
    assert len(ticket.description) == MAX_DESCRIPTION
    assert ticket.description.startswith("Çöp sorunu\n\nÇöp toplanmıyor. ğüşıöç")
    assert ticket.description.endswith(TRUNCATED_MARK)
    assert "\x00" not in ticket.description and "\x07" not in ticket.description


def test_empty_mail_with_a_photo_still_becomes_a_ticket(
    session: Session, now: datetime, store: Path
) -> None:
    outcome = handle_inbound_email(
        session,
        now,
        _mail(
            22, subject="", body_text="  ", attachments=(InboundAttachment("", "image/png", PNG),)
        ),
        attachment_dir=store,
    )
    ticket = session.get(Ticket, outcome.ticket_id)
    assert ticket is not None and ticket.description == EMPTY_MESSAGE
    attachment = session.get(Attachment, outcome.attachment_ids[0])
    assert attachment is not None and attachment.original_name == "ek-1"


def test_date_in_the_future_is_clamped_to_now(session: Session, now: datetime, store: Path) -> None:
    outcome = handle_inbound_email(
        session, now, _mail(23, received_at=now + timedelta(days=3)), attachment_dir=store
    )
    ticket = session.get(Ticket, outcome.ticket_id)
    assert ticket is not None and ticket.received_at == now


def test_very_long_message_id_is_kept_as_its_digest_and_still_recognised(
    session: Session, now: datetime, store: Path
) -> None:
    long_id = "<" + "x" * 300 + "@eposta.example>"
    first = handle_inbound_email(session, now, _mail(24, message_id=long_id), attachment_dir=store)
    assert first.external_ref.startswith("sha256:") and len(first.external_ref) == 71
    again = handle_inbound_email(session, now, _mail(24, message_id=long_id), attachment_dir=store)
    assert again.disposition is EmailDisposition.REPLAYED and again.ticket_id == first.ticket_id


# --- subject format and parsing (pure) ---------------------------------------------------

CODE = reference_code.encode(123_456)


@pytest.mark.parametrize("language", ["tr", "en"])
@pytest.mark.parametrize(
    "prefix", ["", "Re: ", "RE: ", "YNT: ", "Ynt: ", "Fwd: ", "FW: ", "İLT: ", "YNT: Re: AW: "]
)
def test_code_found_in_replies_to_our_subject(prefix: str, language: str) -> None:
    subject = ticket_email_subject(CODE, language, "Açık Kapı Belediyesi")
    assert reference_code_in_subject(prefix + subject) == CODE


def test_subject_format() -> None:
    assert ticket_email_subject(CODE, "tr", "Açık Kapı Belediyesi") == (
        f"[Başvuru {CODE}] Açık Kapı Belediyesi"
    )
    assert ticket_email_subject(CODE, "en", "Açık Kapı Belediyesi") == (
        f"[Application {CODE}] Açık Kapı Belediyesi"
    )
    assert ticket_email_subject(None, "tr", "Açık Kapı Belediyesi") == "Açık Kapı Belediyesi"


@pytest.mark.parametrize(
    "template",
    [
        "[başvuru {lower}] yanıt",
        "[BAŞVURU {compact}]",
        "[Basvuru kodu: {code}]",
        "Başvuru kodum {code} hakkında",
        "kodum {lower}",
        "{dash_en} nolu başvuru",
        "{spaced} hakkında",
        "Re: [Başvuru ZZZZ-ZZZZ] [Başvuru {code}]",
    ],
)
def test_code_variants_typed_by_citizens(template: str) -> None:
    subject = template.format(
        code=CODE,
        lower=CODE.lower(),
        compact=CODE.replace("-", ""),
        dash_en=CODE.replace("-", "\u2013"),
        spaced=CODE.replace("-", " "),
    )
    assert reference_code_in_subject(subject) == CODE


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "Parkta kırık salıncak",
        "Re: merhaba",
        f"[Başvuru {CODE[:-1]}{'2' if CODE[-1] != '2' else '3'}]",  # wrong check character
        f"X{CODE}",  # part of a longer token
        f"{CODE}9",
    ],
)
def test_no_code_found(subject: str) -> None:
    assert reference_code_in_subject(subject) is None


def test_wrong_check_character_never_accepted() -> None:
    body, check = CODE[:-1], CODE[-1]
    for other in reference_code.ALPHABET:
        if other != check:
            assert reference_code_in_subject(f"[Başvuru {body}{other}]") is None


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("Ayşe Yılmaz", ("Ayşe", "Yılmaz")),
        ("Ali Rıza Çelik", ("Ali Rıza", "Çelik")),
        ("Yılmaz, Ayşe", ("Ayşe", "Yılmaz")),
        ('"Zeynep Arslan"', ("Zeynep", "Arslan")),
        ("Ayşe", (None, None)),
        ("", (None, None)),
        ("ayse.yilmaz@eposta.example", (None, None)),
        ("Apt 12 Yönetimi", (None, None)),
    ],
)
def test_display_name_split(display: str, expected: tuple[str | None, str | None]) -> None:
    assert split_display_name(display) == expected


def test_external_ref_strips_brackets() -> None:
    assert external_ref_for(" <abc@def.example> ") == "abc@def.example"
