"""Outbound e-mail against a real SMTP server (aiosmtpd on 127.0.0.1, real TCP)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from acikkapi.settings import load_settings
from messaging.delivery import DeliveryError, OutgoingEmail
from messaging.email_smtp import SmtpEmailSender, message_id_for
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpServer
from tests.helpers.tls import SelfSignedCertificate, make_certificate

SENDER = "Açık Kapı Belediyesi <bilgi@acikkapi.example>"
SUBJECT = "[Başvuru 7KMQ-4XR9] Açık Kapı Belediyesi — çöp konteynerı"
BODY = (
    "Sayın Işıl Çağlayan,\n\n"
    "Başvurunuz (7KMQ-4XR9) Temizlik İşleri Müdürlüğü'ne iletildi. "
    "Şikâyetinizle ilgili gelişmeleri size bildireceğiz.\n"
    "Ğ ğ Ü ü Ş ş İ ı Ö ö Ç ç\n"
)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(enable_SMTPUTF8=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def _mail(key: str = "ack:ticket:42", **fields: Any) -> OutgoingEmail:
    values: dict[str, Any] = {
        "recipient": "Işıl Çağlayan <isil@eposta.example>",
        "subject": SUBJECT,
        "body_text": BODY,
        "idempotency_key": key,
        "sender": SENDER,
    }
    values.update(fields)
    return OutgoingEmail(**values)


def test_turkish_subject_and_body_arrive_intact(smtp: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp.settings())
    try:
        result = sender.send(_mail())
    finally:
        sender.close()

    (got,) = smtp.recorder.received
    assert got.mail_from == "bilgi@acikkapi.example"
    assert got.rcpt_tos == ["isil@eposta.example"]
    assert not got.smtp_utf8  # ASCII addresses: plain SMTP, Turkish text MIME-encoded
    got.content.decode("ascii")  # every byte on the wire is 7-bit
    assert b"=?utf-8?" in got.content.lower()  # RFC 2047 encoded words in the headers
    message = got.message
    assert message["Subject"] == SUBJECT
    assert message["From"].addresses[0].display_name == "Açık Kapı Belediyesi"
    assert message["To"].addresses[0].display_name == "Işıl Çağlayan"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n") == BODY
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == result.provider_message_id
    assert result.provider_message_id == message_id_for("ack:ticket:42", SENDER)
    assert result.parts == 1 and not result.duplicate


def test_message_id_is_stable_per_idempotency_key(smtp: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp.settings())
    try:
        first = sender.send(_mail("ack:ticket:7"))
        resend = sender.send(_mail("ack:ticket:7"))
        other = sender.send(_mail("ack:ticket:8"))
    finally:
        sender.close()
    ids = [r.message["Message-ID"] for r in smtp.recorder.received]
    assert resend.provider_message_id == first.provider_message_id
    assert ids == [first.provider_message_id, first.provider_message_id, other.provider_message_id]
    assert first.provider_message_id != other.provider_message_id
    assert first.provider_message_id.endswith("@acikkapi.example>")


def test_one_connection_is_reused_and_a_dropped_one_replaced(smtp: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp.settings())
    try:
        sender.send(_mail("k1"))
        sender.send(_mail("k2"))
        smtp.restart()  # the server drops the idle connection
        sender.send(_mail("k3"))
    finally:
        sender.close()
    peers = [r.peer for r in smtp.recorder.received]
    assert peers[0] == peers[1] and peers[2] != peers[1]
    assert len(smtp.recorder.received) == 3


@pytest.mark.parametrize(
    ("where", "reply", "retryable"),
    [
        ("rcpt", "550 5.1.1 Mailbox unavailable", False),
        ("rcpt", "553 5.1.3 Bad recipient address syntax", False),
        ("rcpt", "450 4.2.1 Mailbox busy, try later", True),
        ("rcpt", "452 4.3.1 Insufficient storage", True),
        ("data", "554 5.7.1 Message rejected as spam", False),
        ("data", "451 4.3.0 Temporary local problem", True),
    ],
)
def test_server_replies_map_to_retryable_or_not(
    smtp: SmtpServer, where: str, reply: str, retryable: bool
) -> None:
    if where == "rcpt":
        smtp.recorder.rcpt_replies["isil@eposta.example"] = reply
    else:
        smtp.recorder.data_reply = reply
    sender = SmtpEmailSender(smtp.settings())
    try:
        with pytest.raises(DeliveryError) as caught:
            sender.send(_mail())
        assert caught.value.retryable is retryable
        assert reply.split()[0] in str(caught.value)
        # The sender recovers: the next message goes through once the server accepts again.
        smtp.recorder.rcpt_replies.clear()
        smtp.recorder.data_reply = None
        sender.send(_mail("after"))
    finally:
        sender.close()
    assert [r.message["Message-ID"] for r in smtp.recorder.received] == [
        message_id_for("after", SENDER)
    ]


def test_no_server_is_a_retryable_error() -> None:
    settings = load_settings(
        {"ACIKKAPI_SMTP_HOST": "127.0.0.1", "ACIKKAPI_SMTP_PORT": str(free_port())}
    )
    sender = SmtpEmailSender(settings, timeout=5)
    with pytest.raises(DeliveryError) as caught:
        sender.send(_mail())
    assert caught.value.retryable
    sender.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"recipient": "kimse"},
        {"recipient": ""},
        {"subject": "Konu\r\nBcc: herkes@eposta.example"},
        {"headers": {"Bcc": "herkes@eposta.example"}},
        {"headers": {"X-Bilgi": "satır\nsonu"}},
    ],
)
def test_invalid_message_is_refused_before_anything_is_sent(
    smtp: SmtpServer, fields: dict[str, Any]
) -> None:
    sender = SmtpEmailSender(smtp.settings())
    with pytest.raises(DeliveryError) as caught:
        sender.send(_mail(**fields))
    assert not caught.value.retryable
    sender.close()
    assert smtp.recorder.received == []


def test_extra_headers_are_sent(smtp: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp.settings())
    sender.send(_mail(headers={"In-Reply-To": "<onceki@eposta.example>"}))
    sender.close()
    assert smtp.recorder.received[0].message["In-Reply-To"] == "<onceki@eposta.example>"


def test_international_address_uses_smtputf8_when_offered(smtp: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp.settings())
    sender.send(_mail(recipient="ayşe@örnek.example"))
    sender.close()
    (got,) = smtp.recorder.received
    assert got.smtp_utf8 and got.rcpt_tos == ["ayşe@örnek.example"]
    assert got.message["Subject"] == SUBJECT


def test_international_address_without_smtputf8_is_permanent() -> None:
    server = SmtpServer(enable_SMTPUTF8=False)
    server.start()
    try:
        sender = SmtpEmailSender(server.settings())
        with pytest.raises(DeliveryError) as caught:
            sender.send(_mail(recipient="ayşe@örnek.example"))
        assert not caught.value.retryable
        sender.close()
    finally:
        server.stop()
    assert server.recorder.received == []


ACCOUNTS = {(b"acikkapi", "gizli-şifre".encode()), (b"ascii-user", b"gizli")}


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) in ACCOUNTS
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture
def smtp_tls(certificate: SelfSignedCertificate) -> Iterator[SmtpServer]:
    server = SmtpServer(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    server.start()
    yield server
    server.stop()


TLS_ENV = {
    "ACIKKAPI_SMTP_STARTTLS": "yes",
    "ACIKKAPI_SMTP_USERNAME": "acikkapi",
    "ACIKKAPI_SMTP_PASSWORD": "gizli-şifre",
}


@pytest.mark.parametrize(
    ("username", "password"), [("acikkapi", "gizli-şifre"), ("ascii-user", "gizli")]
)
def test_starttls_and_auth_from_settings(
    smtp_tls: SmtpServer, certificate: SelfSignedCertificate, username: str, password: str
) -> None:
    env = {**TLS_ENV, "ACIKKAPI_SMTP_USERNAME": username, "ACIKKAPI_SMTP_PASSWORD": password}
    sender = SmtpEmailSender(smtp_tls.settings(**env), ssl_context=certificate.client_context())
    sender.send(_mail())
    sender.close()
    (got,) = smtp_tls.recorder.received
    assert got.tls
    assert got.message["Subject"] == SUBJECT


def test_turkish_password_with_auth_login_only(certificate: SelfSignedCertificate) -> None:
    server = SmtpServer(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
        auth_exclude_mechanism=["PLAIN"],
    )
    server.start()
    try:
        sender = SmtpEmailSender(
            server.settings(**TLS_ENV), ssl_context=certificate.client_context()
        )
        sender.send(_mail())
        sender.close()
    finally:
        server.stop()
    assert len(server.recorder.received) == 1


def test_wrong_password_is_permanent(
    smtp_tls: SmtpServer, certificate: SelfSignedCertificate
) -> None:
    settings = smtp_tls.settings(**{**TLS_ENV, "ACIKKAPI_SMTP_PASSWORD": "yanlış"})
    sender = SmtpEmailSender(settings, ssl_context=certificate.client_context())
    with pytest.raises(DeliveryError) as caught:
        sender.send(_mail())
    assert not caught.value.retryable and "535" in str(caught.value)
    sender.close()
    assert smtp_tls.recorder.received == []


def test_untrusted_certificate_is_permanent(smtp_tls: SmtpServer) -> None:
    # The system trust store does not know the test certificate.
    sender = SmtpEmailSender(smtp_tls.settings(**TLS_ENV), ssl_context=ssl.create_default_context())
    with pytest.raises(DeliveryError) as caught:
        sender.send(_mail())
    assert not caught.value.retryable and "certificate" in str(caught.value)
    sender.close()
    assert smtp_tls.recorder.received == []


def test_starttls_required_but_not_offered_is_permanent(smtp: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp.settings(ACIKKAPI_SMTP_STARTTLS="yes"))
    with pytest.raises(DeliveryError) as caught:
        sender.send(_mail())
    assert not caught.value.retryable and "STARTTLS" in str(caught.value)
    sender.close()
    assert smtp.recorder.received == []


def test_without_starttls_a_server_that_requires_it_refuses(smtp_tls: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp_tls.settings())  # no STARTTLS, no login
    with pytest.raises(DeliveryError) as caught:
        sender.send(_mail())
    assert not caught.value.retryable  # 530 Must issue a STARTTLS command first
    sender.close()


def test_close_is_idempotent(smtp: SmtpServer, tmp_path: Path) -> None:
    sender = SmtpEmailSender(smtp.settings())
    sender.close()
    sender.send(_mail())
    sender.close()
    sender.close()
    assert len(smtp.recorder.received) == 1
