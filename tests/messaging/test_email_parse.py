"""Raw messages → InboundEmail: what real mail programs send, and hostile bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.email_parse import MalformedEmail, html_to_text, parse_message

WHEN = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def _message(**headers: str) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = headers.pop("From", "Ayşe Yılmaz <ayse@eposta.example>")
    message["To"] = "info@belediye.example"
    message["Subject"] = headers.pop("Subject", "Çöp konteynerı taştı")
    message["Message-ID"] = headers.pop("Message_ID", "<abc-1@eposta.example>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def test_plain_turkish_message_with_photo() -> None:
    message = _message()
    message.set_content("Gülbahçe Mahallesi'nde çöpler 3 gündür alınmadı.\nİlginize teşekkürler.")
    message.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="çöp fotoğrafı.jpg")

    got = parse_message(message.as_bytes(), received_at=WHEN)

    assert got.message_id == "<abc-1@eposta.example>"
    assert (got.from_address, got.from_name) == ("ayse@eposta.example", "Ayşe Yılmaz")
    assert got.subject == "Çöp konteynerı taştı"
    assert got.body_text.strip() == (
        "Gülbahçe Mahallesi'nde çöpler 3 gündür alınmadı.\nİlginize teşekkürler."
    )
    assert got.received_at == WHEN and not got.auto_submitted
    (attachment,) = got.attachments
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "çöp fotoğrafı.jpg",
        "image/jpeg",
        JPEG,
    )


def test_html_only_message_is_converted_to_text() -> None:
    message = _message()
    message.set_content(
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Sayın yetkili,</p><p>Park&nbsp;aydınlatması <b>yanmıyor</b> &amp; karanlık.</p>"
        "<ul><li>Çınar Parkı</li><li>Lale Sokak</li></ul><script>alert(1)</script>"
        "</body></html>",
        subtype="html",
    )
    got = parse_message(message.as_bytes(), received_at=WHEN)
    assert got.body_text == (
        "Sayın yetkili,\n\nPark aydınlatması yanmıyor & karanlık.\n\n- Çınar Parkı\n\n- Lale Sokak"
    )
    assert got.attachments == ()


def test_alternative_prefers_plain_and_drops_the_html_twin() -> None:
    message = _message()
    message.set_content("Düz metin gövde.")
    message.add_alternative("<p>HTML gövde.</p>", subtype="html")
    got = parse_message(message.as_bytes(), received_at=WHEN)
    assert got.body_text.strip() == "Düz metin gövde."
    assert got.attachments == ()


def test_text_around_inline_photo_is_kept_and_photo_attached() -> None:
    """Apple Mail: multipart/mixed of text, an inline image, more text."""
    raw = (
        b"From: =?utf-8?q?=C3=87a=C4=9Fr=C4=B1_=C3=96zdemir?= <cagri@eposta.example>\r\n"
        b"Subject: =?utf-8?b?S2FsZMSxcsSxbSDDp3VrdXJ1?=\r\n"
        b"Message-ID: <apple-1@eposta.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "İşte çukur:\r\n".encode()
        + b"--b1\r\nContent-Type: image/jpeg\r\nContent-Disposition: inline\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==\r\n"
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "Lütfen acele edin.\r\n".encode()
        + b"--b1--\r\n"
    )
    got = parse_message(raw, received_at=WHEN)
    assert (got.from_name, got.subject) == ("Çağrı Özdemir", "Kaldırım çukuru")
    assert got.body_text == "İşte çukur:\n\nLütfen acele edin."
    (photo,) = got.attachments
    assert photo.content_type == "image/jpeg" and photo.data == JPEG and photo.filename == ""


def test_raw_utf8_headers_rfc6532() -> None:
    raw = (
        "From: Işıl Çağlayan <ışıl@örnek.example>\r\n"
        "Subject: YNT: [Başvuru 7KMQ-4XR9] Açık Kapı\r\n"
        "Message-ID: <utf8-1@örnek.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Teşekkürler.\r\n"
    ).encode()
    got = parse_message(raw, received_at=WHEN)
    assert got.from_address == "ışıl@örnek.example"
    assert got.from_name == "Işıl Çağlayan"
    assert got.subject == "YNT: [Başvuru 7KMQ-4XR9] Açık Kapı"
    assert got.message_id == "<utf8-1@örnek.example>"


def test_legacy_turkish_charset_and_unknown_charset() -> None:
    raw = (
        b"From: a@eposta.example\r\nSubject: =?windows-1254?q?=DEikayet_=FE=FD=F0=FD?=\r\n"
        b"Content-Type: text/plain; charset=windows-1254\r\n\r\n"
        + "Sokak ışıkları".encode("cp1254")
        + b"\r\n"
    )
    got = parse_message(raw, received_at=WHEN)
    assert got.subject == "Şikayet şığı"
    assert got.body_text.strip() == "Sokak ışıkları"

    unknown = (
        b"From: a@eposta.example\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=x-bilinmeyen\r\n\r\n" + "çalışıyor".encode() + b"\r\n"
    )
    assert parse_message(unknown, received_at=WHEN).body_text.strip() == "çalışıyor"


def test_missing_message_id_gets_a_stable_digest() -> None:
    raw = b"From: a@eposta.example\r\nSubject: kimliksiz\r\n\r\nmetin\r\n"
    first = parse_message(raw, received_at=WHEN)
    assert first.message_id.startswith("sha256:")
    assert parse_message(raw, received_at=WHEN).message_id == first.message_id
    other = parse_message(raw.replace(b"metin", b"baska"), received_at=WHEN)
    assert other.message_id != first.message_id


def test_forwarded_message_and_signature_parts() -> None:
    inner = _message(Subject="İç ileti", Message_ID="<inner@eposta.example>")
    inner.set_content("iletilen")
    message = _message(Subject="Fwd: İç ileti")
    message.set_content("Aşağıdaki iletiyi iletiyorum.")
    message.add_attachment(inner)
    message.add_attachment(
        b"-----BEGIN PGP SIGNATURE-----", maintype="application", subtype="pgp-signature"
    )
    got = parse_message(message.as_bytes(), received_at=WHEN)
    (forwarded,) = got.attachments
    assert forwarded.content_type == "message/rfc822" and forwarded.filename == "ileti.eml"
    assert b"inner@eposta.example" in forwarded.data
    assert got.body_text.strip() == "Aşağıdaki iletiyi iletiyorum."


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Auto_Submitted": "auto-generated"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"X_Autoreply": "yes"},
        {"List_Id": "<duyuru.liste.example>"},
        {"Return_Path": "<>"},
        {"From": "MAILER-DAEMON@posta.example"},
        {"From": "postmaster@posta.example"},
    ],
)
def test_auto_submitted_mail_is_recognised(headers: dict[str, str]) -> None:
    message = _message(**headers)
    message.set_content("Ofis dışındayım.")
    assert parse_message(message.as_bytes(), received_at=WHEN).auto_submitted


def test_auto_submitted_no_and_ordinary_mail_are_not() -> None:
    message = _message(Auto_Submitted="no")
    message.set_content("Normal ileti.")
    assert not parse_message(message.as_bytes(), received_at=WHEN).auto_submitted


def test_delivery_report_is_auto_submitted_even_with_an_odd_sender() -> None:
    raw = (
        b"From: MAILER-DAEMON\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--r--\r\n"
    )
    assert parse_message(raw, received_at=WHEN).auto_submitted


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02 not mail at all",
        b"garbage with no header line\r\n\r\nbody",
        b"Subject: no sender\r\n\r\nbody",
        b"From: \r\nSubject: empty sender\r\n\r\nbody",
        b"From: not an address\r\nSubject: x\r\n\r\nbody",
        b"From: <>\r\nSubject: x\r\n\r\nbody",
    ],
)
def test_malformed_messages(raw: bytes) -> None:
    with pytest.raises(MalformedEmail):
        parse_message(raw, received_at=WHEN)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_either_parse_or_are_malformed(raw: bytes) -> None:
    try:
        got = parse_message(b"From: a@eposta.example\r\n" + raw, received_at=WHEN)
    except MalformedEmail:
        return
    assert got.from_address or got.auto_submitted


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_arbitrary_html_never_breaks_the_converter(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip() and "\n\n\n" not in text
