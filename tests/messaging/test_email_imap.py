"""Inbound e-mail end to end against a real IMAP server (a private dovecot, see
tests/helpers/dovecot.py): messages are APPENDed, polled, and the database checked, on
SQLite and PostgreSQL (the ``session`` fixture; each handled message is committed to a
savepoint the way ``unit_of_work`` commits it in production)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from acikkapi.settings import Settings, load_settings
from messaging.email_imap import (
    AUTOMATIC_KEYWORD,
    REJECTED_KEYWORD,
    MailboxError,
    PollReport,
    poll_mailbox,
    quote_mailbox,
)
from models import (
    Attachment,
    Base,
    Channel,
    Citizen,
    Notification,
    Ticket,
    TicketContact,
    TicketEvent,
    TimelineAction,
)
from services.email_channel import (
    EmailDisposition,
    InboundEmail,
    InboundEmailOutcome,
    handle_inbound_email,
    ticket_email_subject,
)
from services.errors import DomainError
from tests.helpers.dovecot import Dovecot, running_dovecot
from tests.helpers.net import free_port
from tests.helpers.tls import SelfSignedCertificate, make_certificate

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1d1e3c70000000049454e44ae426082"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@dataclass
class Inbox:
    server: Dovecot
    settings: Settings
    session: Session
    now: datetime
    store: Path

    def handle(self, inbound: InboundEmail) -> InboundEmailOutcome:
        """What the CLI's handler does, inside the test's rolled-back transaction."""
        try:
            outcome = handle_inbound_email(
                self.session, self.now, inbound, attachment_dir=self.store
            )
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return outcome

    def poll(
        self, handle: Callable[[InboundEmail], InboundEmailOutcome] | None = None, **kw: Any
    ) -> PollReport:
        return poll_mailbox(self.settings, handle or self.handle, **kw)

    def append(self, message: EmailMessage | bytes, minutes_ago: int = 30) -> int:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        return self.server.append(raw, when=self.now - timedelta(minutes=minutes_ago))


def _imap_env(server: Dovecot, **extra: str) -> dict[str, str]:
    return {
        "ACIKKAPI_IMAP_HOST": server.host,
        "ACIKKAPI_IMAP_PORT": str(server.port),
        "ACIKKAPI_IMAP_USERNAME": server.username,
        "ACIKKAPI_IMAP_PASSWORD": server.password,
        **extra,
    }


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """One server per module; every test gets its own user and so an empty mailbox."""
    with running_dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def inbox(dovecot: Dovecot, session: Session, now: datetime, tmp_path: Path) -> Inbox:
    server = dovecot.new_user()
    return Inbox(server, load_settings(_imap_env(server)), session, now, tmp_path / "files")


def _mail(
    n: int,
    *,
    sender: str = "Ayşe Yılmaz <ayse.yilmaz@eposta.example>",
    subject: str = "Sokak lambası yanmıyor",
    body: str = "Menekşe Sokak'taki lamba iki haftadır yanmıyor; akşamları çok karanlık.",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = "Açık Kapı <info@belediye.example>"
    message["Subject"] = subject
    message["Message-ID"] = f"<ileti-{n}@eposta.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


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


def test_poll_mailbox_to_tickets_replies_and_nothing_twice(inbox: Inbox) -> None:
    new = _mail(1)
    new.add_attachment(JPEG, maintype="image", subtype="jpeg", filename="karanlık sokak.jpg")
    uid_new = inbox.append(new, minutes_ago=45)
    html = _mail(2, sender="zeynep@eposta.example", subject="Gürültü şikâyeti")
    html.set_content("<p>Gece <b>yarısı</b> inşaat çalışıyor.</p>", subtype="html")
    uid_html = inbox.append(html)
    uid_bad = inbox.append(b"Subject: gonderen yok\r\n\r\nKim gonderdi bunu?\r\n")
    uid_auto = inbox.append(
        _mail(3, subject="Otomatik yanıt: izindeyim", Auto_Submitted="auto-replied")
    )
    before = _counts(inbox.session)

    first = inbox.poll()

    assert first.unseen == 4
    assert [(h.uid, h.disposition) for h in first.handled] == [
        (uid_new, "ticket_opened"),
        (uid_html, "ticket_opened"),
        (uid_auto, "ignored"),
    ]
    assert [p.uid for p in first.rejected] == [uid_bad] and first.failed == []
    assert "From" in first.rejected[0].error
    code = first.handled[0].reference_code
    assert code is not None
    ticket = inbox.session.scalar(select(Ticket).where(Ticket.reference_code == code))
    assert ticket is not None and ticket.channel is Channel.EMAIL
    assert ticket.received_at == inbox.now - timedelta(minutes=45)  # the INTERNALDATE
    assert ticket.description.startswith("Sokak lambası yanmıyor\n\nMenekşe Sokak'taki lamba")
    citizen = inbox.session.get(Citizen, ticket.citizen_id)
    assert citizen is not None and citizen.email == "ayse.yilmaz@eposta.example"
    (photo,) = inbox.session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id))
    assert photo.original_name == "karanlık sokak.jpg" and photo.media_type == "image/jpeg"
    assert (inbox.store / photo.path).read_bytes() == JPEG
    html_ticket = inbox.session.scalar(
        select(Ticket).where(Ticket.reference_code == first.handled[1].reference_code)
    )
    assert html_ticket is not None
    assert html_ticket.description == "Gürültü şikâyeti\n\nGece yarısı inşaat çalışıyor."
    assert _counts(inbox.session)["tickets"] == before["tickets"] + 2
    assert {"\\Seen"} <= inbox.server.flags(uid_new)
    assert "\\Flagged" not in inbox.server.flags(uid_new)
    assert {"\\Seen", "\\Flagged", REJECTED_KEYWORD} <= inbox.server.flags(uid_bad)
    assert {"\\Seen", AUTOMATIC_KEYWORD} <= inbox.server.flags(uid_auto)
    assert inbox.server.uids() == [uid_new, uid_html, uid_bad, uid_auto]  # nothing deleted

    # The citizen answers our e-mail ("YNT:" as Turkish Outlook writes it), with a photo.
    reply = _mail(
        4,
        subject="YNT: " + ticket_email_subject(code, "tr", "Açık Kapı Belediyesi"),
        body="Fotoğrafı ekledim.\n\n> Başvurunuz alındı.",
        In_Reply_To="<ak.1234@belediye.example>",
    )
    reply.add_attachment(PNG, maintype="application", subtype="octet-stream", filename="IMG_2041")
    uid_reply = inbox.append(reply, minutes_ago=5)
    second = inbox.poll()

    assert [(h.uid, h.disposition, h.reference_code) for h in second.handled] == [
        (uid_reply, "reply_added", code)
    ]
    contacts = list(
        inbox.session.scalars(
            select(TicketContact)
            .where(TicketContact.ticket_id == ticket.id)
            .order_by(TicketContact.id)
        )
    )
    assert [c.external_ref for c in contacts] == [
        "ileti-1@eposta.example",
        "ileti-4@eposta.example",
    ]
    assert "Fotoğrafı ekledim." in contacts[1].description
    media = inbox.session.scalars(
        select(Attachment.media_type)
        .where(Attachment.ticket_id == ticket.id)
        .order_by(Attachment.id)
    )
    assert list(media) == ["image/jpeg", "image/png"]
    actions = inbox.session.scalars(
        select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id)
    )
    assert list(actions).count(TimelineAction.CONTACT_ADDED) == 1
    ack = inbox.session.scalar(
        select(Notification).where(Notification.idempotency_key == f"ack:contact:{contacts[1].id}")
    )
    assert ack is not None and ack.recipient == "ayse.yilmaz@eposta.example"

    settled = _counts(inbox.session)
    third = inbox.poll()
    assert (third.unseen, third.handled, third.rejected, third.failed) == (0, [], [], [])
    assert _counts(inbox.session) == settled


def test_crash_after_commit_before_seen_is_harmless(inbox: Inbox) -> None:
    uid = inbox.append(_mail(10))

    def commit_then_crash(inbound: InboundEmail) -> InboundEmailOutcome:
        inbox.handle(inbound)
        raise RuntimeError("worker killed between commit and \\Seen")

    crashed = inbox.poll(commit_then_crash)
    assert [p.uid for p in crashed.failed] == [uid] and crashed.handled == []
    assert "\\Seen" not in inbox.server.flags(uid)
    after_crash = _counts(inbox.session)

    retried = inbox.poll()

    assert [(h.uid, h.disposition) for h in retried.handled] == [(uid, "replayed")]
    assert _counts(inbox.session) == after_crash
    assert "\\Seen" in inbox.server.flags(uid)


def test_unexpected_error_leaves_the_message_for_later_and_goes_on(inbox: Inbox) -> None:
    uid_a = inbox.append(_mail(20, sender="a@eposta.example"))
    uid_b = inbox.append(_mail(21, sender="b@eposta.example"))

    def database_down_for_a(inbound: InboundEmail) -> InboundEmailOutcome:
        if inbound.from_address == "a@eposta.example":
            raise ConnectionError("veritabanına ulaşılamıyor")
        return inbox.handle(inbound)

    report = inbox.poll(database_down_for_a)
    assert [p.uid for p in report.failed] == [uid_a]
    assert [h.uid for h in report.handled] == [uid_b]
    assert "\\Seen" not in inbox.server.flags(uid_a)

    later = inbox.poll()
    assert [(h.uid, h.disposition) for h in later.handled] == [(uid_a, "ticket_opened")]


def test_domain_refusal_is_flagged_and_kept(inbox: Inbox) -> None:
    uid = inbox.append(_mail(30, sender="Kim Bu <kimse@yok>"))  # no dot in the domain
    report = inbox.poll()
    assert [p.uid for p in report.rejected] == [uid]
    assert "invalid_email" in report.rejected[0].error
    assert {"\\Seen", "\\Flagged", REJECTED_KEYWORD} <= inbox.server.flags(uid)


def test_domain_error_from_handler_rolls_back_and_flags(inbox: Inbox) -> None:
    uid = inbox.append(_mail(31))
    before = _counts(inbox.session)

    def refuse(inbound: InboundEmail) -> InboundEmailOutcome:
        raise DomainError("Reddedildi.", "Refused.")

    report = inbox.poll(refuse)
    assert [p.uid for p in report.rejected] == [uid] and report.handled == []
    assert _counts(inbox.session) == before


def test_limit_and_stop_leave_the_rest_for_the_next_poll(inbox: Inbox) -> None:
    uids = [inbox.append(_mail(40 + i, sender=f"k{i}@eposta.example")) for i in range(3)]
    limited = inbox.poll(limit=2)
    assert [h.uid for h in limited.handled] == uids[:2] and limited.left_for_next_poll == 1

    stopped = inbox.poll(should_stop=lambda: True)
    assert stopped.stopped and stopped.handled == [] and stopped.left_for_next_poll == 1

    rest = inbox.poll()
    assert [h.uid for h in rest.handled] == uids[2:]


def test_mailbox_with_turkish_name(inbox: Inbox) -> None:
    name = "Başvurular & Şikâyetler"
    client = inbox.server.connect()
    try:
        assert client.create(quote_mailbox(name))[0] == "OK"
        raw = _mail(50).as_bytes()
        assert client.append(quote_mailbox(name), None, None, raw)[0] == "OK"
    finally:
        client.logout()
    settings = load_settings(_imap_env(inbox.server, ACIKKAPI_IMAP_MAILBOX=name))
    report = poll_mailbox(settings, inbox.handle)
    assert [h.disposition for h in report.handled] == ["ticket_opened"]
    assert inbox.poll().unseen == 0  # INBOX itself was empty


def test_modified_utf7_encoding() -> None:
    assert quote_mailbox("INBOX") == '"INBOX"'
    assert quote_mailbox("Başvurular") == '"Ba&AV8-vurular"'
    assert quote_mailbox("A & B") == '"A &- B"'
    assert quote_mailbox('say "hi"') == '"say \\"hi\\""'


def _never_called(inbound: InboundEmail) -> InboundEmailOutcome:
    raise AssertionError(f"no message may be handed over: {inbound.message_id}")


def test_connection_problems_are_mailbox_errors(dovecot: Dovecot) -> None:
    server = dovecot.new_user()
    server.append(_mail(70).as_bytes())
    cases = {
        "wrong password": _imap_env(server, ACIKKAPI_IMAP_PASSWORD="yanlış-şifre"),
        "unknown user": _imap_env(
            server, ACIKKAPI_IMAP_USERNAME="kimse", ACIKKAPI_IMAP_PASSWORD="x"
        ),
        "no such mailbox": _imap_env(server, ACIKKAPI_IMAP_MAILBOX="YokBoyleKlasor"),
        "nothing listening": _imap_env(server, ACIKKAPI_IMAP_PORT=str(free_port())),
        "no host configured": {},
    }
    for case, env in cases.items():
        with pytest.raises(MailboxError):
            poll_mailbox(load_settings(env), _never_called, timeout=10)
            pytest.fail(case)
    assert server.uids("UNSEEN") == server.uids()  # nothing was touched


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_dovecot(
    tmp_path_factory: pytest.TempPathFactory, certificate: SelfSignedCertificate
) -> Iterator[Dovecot]:
    with running_dovecot(tmp_path_factory.mktemp("dovecot-tls"), certificate=certificate) as server:
        yield server


@pytest.mark.parametrize("mode", ["implicit-tls", "starttls"])
@pytest.mark.parametrize("ascii_password", [False, True], ids=["turkish-password", "ascii"])
def test_tls_modes_with_certificate_verification(
    tls_dovecot: Dovecot, certificate: SelfSignedCertificate, mode: str, ascii_password: bool
) -> None:
    """Transport only: the handler records what it gets (the database path is above)."""
    server = tls_dovecot.new_user(ascii_password=ascii_password)
    assert server.ssl_port is not None
    env = _imap_env(server)
    if mode == "implicit-tls":
        env.update(ACIKKAPI_IMAP_PORT=str(server.ssl_port), ACIKKAPI_IMAP_SSL="yes")
    settings = load_settings(env)
    uid = server.append(_mail(60).as_bytes())
    got: list[InboundEmail] = []

    def record(inbound: InboundEmail) -> InboundEmailOutcome:
        got.append(inbound)
        return InboundEmailOutcome(EmailDisposition.TICKET_OPENED, inbound.message_id)

    # The system trust store does not know the test certificate: refused, mail untouched.
    with pytest.raises(MailboxError):
        poll_mailbox(settings, record)
    assert got == [] and "\\Seen" not in server.flags(uid)

    report = poll_mailbox(settings, record, ssl_context=certificate.client_context())
    assert [h.uid for h in report.handled] == [uid]
    assert [g.subject for g in got] == ["Sokak lambası yanmıyor"]
    logins = [
        line
        for line in server.log.read_text().splitlines()
        if f"Login: user=<{server.username}>" in line
    ]
    assert "TLS" in logins[-1]  # dovecot logs how the session was secured
