"""``acikkapi sms``: the SMS channel from the command line (issue 5).

- ``receive`` feeds one citizen SMS into the channel service (demos, the file gateway, a
  provider without SMPP that posts inbound messages to a script);
- ``listen`` runs the SMPP receiver: citizens' messages and delivery receipts, one
  transaction per message, until SIGTERM/SIGINT;
- ``send-test`` sends one SMS through the configured gateway, bypassing the outbox.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from types import FrameType

import click

from acikkapi.db import engine_from_settings, make_session_factory, unit_of_work
from acikkapi.settings import Settings, SettingsError
from services.errors import DomainError

log = logging.getLogger("acikkapi.sms")


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
def sms() -> None:
    """SMS kanalı / SMS channel: inbound messages, SMPP listener, test sends."""


@sms.command("receive")
@click.option("--from", "sender", required=True, help="The citizen's phone number.")
@click.option("--text", required=True, help="The message, e.g. '<TC no> <message>'.")
@click.option(
    "--id",
    "provider_id",
    default=None,
    help="Provider message id (default: a new one); sending the same id again is ignored.",
)
@click.pass_context
def receive(ctx: click.Context, sender: str, text: str, provider_id: str | None) -> None:
    """Handle one inbound SMS as if the gateway had received it (commits)."""
    from services.notification_text import compose, template_context
    from services.sms_channel import InboundSms, handle_inbound_sms

    settings = _settings(ctx)
    now = _now()
    message = InboundSms(
        sender=sender,
        text=text,
        provider_message_id=provider_id or f"cli-{uuid.uuid4().hex}",
        received_at=now,
    )
    engine = engine_from_settings(settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            outcome = handle_inbound_sms(session, now, message)
            click.echo(f"{outcome.result.value}  id={message.provider_message_id}")
            if outcome.ticket is not None:
                click.echo(f"  ticket : {outcome.ticket.reference_code}")
            reply = outcome.reply
            if reply is not None:
                text_out = compose(
                    template=reply.template,
                    language=reply.language.value,
                    payload=reply.payload,
                    context=template_context(settings),
                ).text
                click.echo(
                    f"  reply  : {reply.channel.value} to {reply.recipient} ({reply.template})"
                )
                click.echo(f"           {text_out}")
    except DomainError as exc:
        click.echo(f"Hata / error [{exc.code}]: {exc.message('tr')}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()


@sms.command("listen")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def listen(ctx: click.Context, verbose: bool) -> None:
    """Run the SMPP receiver until SIGTERM/SIGINT (re-binds by itself)."""
    from messaging.sms_smpp import SmppConfig
    from messaging.sms_smpp_receiver import DeliverSmHandler, SmppReceiver
    from services.sms_channel import InboundSms, handle_inbound_sms
    from services.sms_delivery_reports import record_delivery_report

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = _settings(ctx)
    if not settings.smpp_system_id:
        raise click.ClickException("ACIKKAPI_SMPP_SYSTEM_ID is not set")
    engine = engine_from_settings(settings)
    sessions = make_session_factory(engine)

    def on_message(message: InboundSms) -> None:
        # A database error propagates: the SMSC is told to deliver the message again.
        try:
            with unit_of_work(sessions) as session:
                outcome = handle_inbound_sms(session, _now(), message)
                code = outcome.ticket.reference_code if outcome.ticket else "-"
                log.info("SMS %s: %s %s", message.provider_message_id, outcome.result, code)
        except DomainError as exc:  # retrying cannot help: acknowledge and log
            log.warning("SMS %s refused: %s", message.provider_message_id, exc.message("en"))

    def on_receipt(provider_id: str, state: str, done_at: datetime | None) -> None:
        try:
            with unit_of_work(sessions) as session:
                report = record_delivery_report(session, _now(), provider_id, state, done_at)
                log.info("receipt %s: %s (%s)", provider_id, report.state, report.outcome)
        except DomainError as exc:
            log.warning("receipt %s refused: %s", provider_id, exc.message("en"))

    handler = DeliverSmHandler(
        on_message=on_message, on_receipt=on_receipt, timezone=settings.timezone
    )
    try:
        config = SmppConfig.from_settings(settings)
    except ValueError as exc:
        raise click.ClickException(f"ACIKKAPI_SMPP_*: {exc}") from exc
    receiver = SmppReceiver(config, handler)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: unbinding and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("SMPP listener for %s:%s", settings.smpp_host, settings.smpp_port)
    try:
        receiver.run(stop)
    finally:
        engine.dispose()
    log.info("SMPP listener stopped")


@sms.command("send-test")
@click.option("--to", "recipient", required=True, help="Phone number in any Turkish format.")
@click.option("--text", required=True)
@click.pass_context
def send_test(ctx: click.Context, recipient: str, text: str) -> None:
    """Send one SMS through the configured gateway (not through the outbox)."""
    from messaging.delivery import DeliveryError, OutgoingSms
    from messaging.sms_encoding import SmsEncodingError, encode_sms
    from messaging.sms_factory import build_sms_gateway
    from services.identity import normalise_phone

    settings = _settings(ctx)
    try:
        phone = normalise_phone(recipient)
    except DomainError as exc:
        raise click.ClickException(exc.message("tr")) from exc
    try:
        encoded = encode_sms(text)
    except SmsEncodingError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        gateway = build_sms_gateway(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{settings.sms_gateway}: {encoded.encoding.value}, {encoded.characters} characters, "
        f"{len(encoded.parts)} part(s) to {phone.e164}"
    )
    try:
        result = gateway.send(
            OutgoingSms(
                recipient=phone.e164,
                text=text,
                idempotency_key=f"test:{uuid.uuid4().hex}",
                sender=settings.sms_sender,
            )
        )
    except DeliveryError as exc:
        kind = "retryable" if exc.retryable else "permanent"
        click.echo(f"Gönderilemedi / not sent ({kind}): {exc}", err=True)
        sys.exit(2)
    finally:
        gateway.close()
    click.echo(f"sent: provider id {result.provider_message_id}, {result.parts} part(s)")
