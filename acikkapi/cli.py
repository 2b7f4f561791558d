"""The ``acikkapi`` command: one entry point for every process and admin task.

Later issues add the daemons (Asterisk, FastAGI, AMI listener, console, workers) as
sub-commands of this group.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from acikkapi.db import engine_from_settings, make_session_factory, unit_of_work
from acikkapi.settings import Settings, SettingsError, load_settings
from models import (
    Channel,
    Citizen,
    Department,
    Notification,
    StaffUser,
    Ticket,
    TicketEvent,
    TicketType,
)
from services.errors import DomainError


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@contextmanager
def _transaction(ctx: click.Context) -> Iterator[Session]:
    engine = engine_from_settings(_settings(ctx))
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _local(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(settings.timezone)).strftime("%d.%m.%Y %H:%M")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Açık Kapı — belediye çağrı merkezi ve başvuru takip sistemi.

    Configuration comes from environment variables (see README: DATABASE_URL,
    ACIKKAPI_INSTANCE_DIR, REDIS_URL, ...).
    """
    try:
        ctx.obj = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: head). Safe to run repeatedly."""
    from acikkapi.migrate import current_heads, upgrade

    settings = _settings(ctx)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    click.echo(f"Veritabanı güncel / database at revision {current_heads(settings.database_url)}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the database's current migration revision."""
    from acikkapi.migrate import current_heads

    click.echo(current_heads(_settings(ctx).database_url))


@main.group()
def catalogue() -> None:
    """Ticket types, units, institutions and the holiday calendar."""


def _load_data(ctx: click.Context, *, with_demo: bool) -> None:
    from services.catalogue_loader import load_catalogue, load_demo, load_holidays

    now = datetime.now(UTC)
    with _transaction(ctx) as session:
        holidays = load_holidays(session)
        counts = load_catalogue(session, now)
        if with_demo:
            from services.surveys import ensure_default_questions

            counts.update(load_demo(session, now, demo_password=_settings(ctx).demo_password))
            counts["survey_questions"] = ensure_default_questions(session)
    click.echo(f"holidays={holidays} " + " ".join(f"{k}={v}" for k, v in counts.items()))


@catalogue.command("load")
@click.pass_context
def catalogue_load(ctx: click.Context) -> None:
    """Load holidays and the catalogue (only missing rows; staff edits are kept)."""
    _load_data(ctx, with_demo=False)


@main.group()
def demo() -> None:
    """Demo data: neighbourhoods, citizens and staff for every role."""


@demo.command("load")
@click.pass_context
def demo_load(ctx: click.Context) -> None:
    """Load holidays, the catalogue and the demo data (idempotent)."""
    _load_data(ctx, with_demo=True)


@main.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Show the configuration in use and what the database holds."""
    settings = _settings(ctx)
    url = settings.database_url
    if "@" in url:  # hide credentials
        url = url.split("://", 1)[0] + "://***@" + url.split("@", 1)[1]
    click.echo(f"Açık Kapı — {settings.municipality_name}")
    click.echo(f"  instance folder : {settings.instance_dir}")
    click.echo(f"  database        : {url}")
    click.echo(f"  redis           : {settings.redis_url}")
    click.echo(f"  time zone       : {settings.timezone}, language {settings.default_language}")
    with _transaction(ctx) as session:
        for label, model in (
            ("units", Department),
            ("ticket types", TicketType),
            ("staff users", StaffUser),
            ("citizens", Citizen),
            ("tickets", Ticket),
            ("outbox", Notification),
        ):
            count = session.scalar(select(func.count()).select_from(model))
            click.echo(f"  {label:<16}: {count}")


@main.group()
def ticket() -> None:
    """Open and inspect tickets through the domain services (the same path as every channel)."""


@ticket.command("open")
@click.option(
    "--channel",
    type=click.Choice([c.value for c in Channel]),
    default=Channel.DESK.value,
    show_default=True,
)
@click.option("--type", "type_code", help="Ticket type code (default: genel).")
@click.option("--tc", "tc_number", help="TC kimlik no.")
@click.option("--phone", help="Phone number in any Turkish format.")
@click.option("--email")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--neighbourhood", help="Mahalle name.")
@click.option("--address")
@click.option("--description", "-d", default="")
@click.option("--as", "username", default=None, help="Acting staff username (default: system).")
@click.option("--lang", type=click.Choice(["tr", "en"]), default="tr", help="Message language.")
@click.pass_context
def ticket_open(ctx: click.Context, /, username: str | None, lang: str, **fields: Any) -> None:
    """Open a ticket (or attach to the open duplicate) and print its reference code."""
    from services.actors import system_actor
    from services.intake import open_ticket
    from services.intake_request import IntakeRequest

    now = datetime.now(UTC)
    settings = _settings(ctx)
    try:
        with _transaction(ctx) as session:
            if username:
                actor = session.scalar(select(StaffUser).where(StaffUser.username == username))
                if actor is None:
                    raise click.ClickException(f"no staff user {username!r}")
            else:
                actor = system_actor(session, "cli", now)
            result = open_ticket(
                session,
                actor,
                now,
                IntakeRequest(
                    channel=Channel(fields["channel"]),
                    ticket_type_code=fields["type_code"],
                    tc_number=fields["tc_number"],
                    phone=fields["phone"],
                    email=fields["email"],
                    first_name=fields["first_name"],
                    last_name=fields["last_name"],
                    neighbourhood=fields["neighbourhood"],
                    address_text=fields["address"],
                    description=fields["description"],
                ),
            )
            t = result.ticket
            verb = "açıldı / opened" if result.created else "mevcut başvuruya eklendi / attached"
            click.echo(f"{t.reference_code}  {verb}")
            click.echo(f"  status   : {t.status.value}")
            click.echo(f"  due at   : {_local(t.due_at, settings)}")
            click.echo(f"  citizen  : #{t.citizen_id} ({result.citizen_match})")
            if result.acknowledgement is not None:
                ack = result.acknowledgement
                click.echo(f"  outbox   : {ack.channel.value} to {ack.recipient} ({ack.template})")
    except DomainError as exc:
        click.echo(f"Hata / error [{exc.code}]: {exc.message(lang)}", err=True)
        sys.exit(2)


@ticket.command("show")
@click.argument("code")
@click.pass_context
def ticket_show(ctx: click.Context, code: str) -> None:
    """Show a ticket and its timeline by reference CODE."""
    from services.ticket_workflow import find_by_reference

    settings = _settings(ctx)
    try:
        with _transaction(ctx) as session:
            t = find_by_reference(session, code)
            click.echo(f"{t.reference_code}  {t.status.value}  {t.ticket_type.name_tr}")
            click.echo(f"  department : {t.department.name_tr if t.department else '-'}")
            click.echo(f"  received   : {_local(t.received_at, settings)} via {t.channel.value}")
            click.echo(f"  due        : {_local(t.due_at, settings)}")
            click.echo(f"  contacts   : {len(t.contacts)}")
            events = session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == t.id).order_by(TicketEvent.id)
            )
            for e in events:
                click.echo(f"  {_local(e.at, settings)}  {e.action.value:<22} {e.note or ''}")
    except DomainError as exc:
        click.echo(f"Hata / error [{exc.code}]: {exc.message('tr')}", err=True)
        sys.exit(2)


def _register_commands() -> None:
    """Attach the daemon and admin groups; each lives beside the code it runs."""
    from agent_console.cli import console
    from agi.cli import agi
    from ami_listener.cli import ami_listener
    from jobs.cli import outbox, worker
    from messaging.email_cli import email
    from messaging.sms_cli import sms
    from outbound.cli import dialer
    from telephony.cli import asterisk

    for command in (asterisk, agi, ami_listener, email, sms, console, worker, outbox):
        main.add_command(command)
    main.add_command(dialer)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
