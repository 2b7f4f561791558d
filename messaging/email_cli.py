"""``acikkapi email …``: poll the info@ mailbox and test outgoing mail (issue 5, R1.3).

``poll`` runs once, or with ``--every SECONDS`` as a daemon that stops cleanly on SIGTERM
or SIGINT (the message in hand is finished, committed and marked first). Each message is
its own transaction. ``send-test --to ADDR`` sends one test message through the configured
SMTP server. :func:`poll_once` is what the periodic RQ job calls.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import click
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.settings import Settings
from messaging.delivery import DeliveryError, OutgoingEmail
from messaging.email_imap import MailboxError, PollReport, poll_mailbox
from services.email_channel import InboundEmail, InboundEmailOutcome, handle_inbound_email
from services.ticket_photos import attachment_store

OFF_MESSAGE = (
    "ACIKKAPI_IMAP_HOST boş: gelen e-posta yoklaması kapalı, hiçbir şey yapılmadı. / "
    "ACIKKAPI_IMAP_HOST is empty: inbound e-mail polling is off; nothing done."
)


def make_handler(
    settings: Settings, factory: sessionmaker[Session]
) -> Callable[[InboundEmail], InboundEmailOutcome]:
    """``handle`` for :func:`poll_mailbox`: one committed transaction per message."""
    from acikkapi.db import unit_of_work

    store = attachment_store(settings.instance_dir)

    def handle(inbound: InboundEmail) -> InboundEmailOutcome:
        with unit_of_work(factory) as session:
            return handle_inbound_email(session, datetime.now(UTC), inbound, attachment_dir=store)

    return handle


def poll_once(settings: Settings, sessions: sessionmaker[Session] | None = None) -> PollReport:
    """One poll (the RQ job's entry point), on ``sessions`` or on a database engine of its
    own.

    Returns an empty report naming the reason when ``ACIKKAPI_IMAP_HOST`` is empty; raises
    :class:`MailboxError` when the mailbox cannot be read.
    """
    if not settings.imap_host:
        return PollReport(mailbox=settings.imap_mailbox, skipped=OFF_MESSAGE)
    if sessions is not None:
        return poll_mailbox(settings, make_handler(settings, sessions))
    from acikkapi.db import engine_from_settings, make_session_factory

    engine = engine_from_settings(settings)
    try:
        return poll_mailbox(settings, make_handler(settings, make_session_factory(engine)))
    finally:
        engine.dispose()


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _echo_report(report: PollReport) -> None:
    click.echo(report.summary())
    for item in report.handled:
        click.echo(f"  uid {item.uid}: {item.disposition} {item.reference_code or ''}".rstrip())
    for problem in report.rejected:
        click.echo(f"  uid {problem.uid}: işaretlendi / flagged: {problem.error}", err=True)
    for problem in report.failed:
        click.echo(f"  uid {problem.uid}: sonra tekrar / retry later: {problem.error}", err=True)


@click.group("email")
def email() -> None:
    """E-posta kanalı: info@ posta kutusu (IMAP) ve giden e-posta (SMTP)."""


@email.command("poll")
@click.option(
    "--every",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Keep polling, SECONDS apart, until SIGTERM/SIGINT (default: poll once).",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def poll_command(ctx: click.Context, every: float | None, log_level: str) -> None:
    """Turn unseen messages of the info@ mailbox into tickets (or replies on tickets)."""
    from acikkapi.db import engine_from_settings, make_session_factory

    settings = _settings(ctx)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.imap_host:
        click.echo(OFF_MESSAGE)
        return
    engine = engine_from_settings(settings)
    handle = make_handler(settings, make_session_factory(engine))
    stop = threading.Event()
    try:
        if every is None:
            try:
                _echo_report(poll_mailbox(settings, handle))
            except MailboxError as exc:
                click.echo(f"Hata / error: {exc}", err=True)
                sys.exit(1)
            return

        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        click.echo(f"Yoklama her {every:g} sn / polling every {every:g} s: {settings.imap_host}")
        try:
            while not stop.is_set():
                try:
                    _echo_report(poll_mailbox(settings, handle, should_stop=stop.is_set))
                except MailboxError as exc:  # the server may come back: keep the daemon up
                    click.echo(f"Hata / error: {exc}", err=True)
                stop.wait(every)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        click.echo("Durduruldu / stopped")
    finally:
        engine.dispose()


@email.command("send-test")
@click.option("--to", "recipient", required=True, metavar="ADDR", help="Recipient address.")
@click.pass_context
def send_test_command(ctx: click.Context, recipient: str) -> None:
    """Send one test message through the configured SMTP server."""
    from messaging.email_smtp import SmtpEmailSender

    settings = _settings(ctx)
    sender = SmtpEmailSender(settings)
    try:
        result = sender.send(
            OutgoingEmail(
                recipient=recipient,
                subject=f"{settings.municipality_name}: e-posta denemesi / test message",
                body_text=(
                    "Bu ileti Açık Kapı'nın e-posta ayarlarını denemek için gönderildi.\n"
                    "This message was sent to test Açık Kapı's e-mail settings.\n"
                ),
                idempotency_key=f"send-test:{uuid.uuid4()}",
                sender=settings.mail_from,
            )
        )
    except DeliveryError as exc:
        kind = "tekrar denenebilir / retryable" if exc.retryable else "kalıcı / permanent"
        click.echo(f"Hata / error ({kind}): {exc}", err=True)
        sys.exit(1)
    finally:
        sender.close()
    click.echo(
        f"Gönderildi / sent to {recipient} via {settings.smtp_host}:{settings.smtp_port}: "
        f"{result.provider_message_id}"
    )
