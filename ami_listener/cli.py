"""``acikkapi ami-listener …``: the AMI event listener daemon."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from acikkapi.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    if settings is None:
        from acikkapi.settings import load_settings

        settings = load_settings()
    return settings


@click.group("ami-listener")
def ami_listener() -> None:
    """Turn Asterisk Manager events into call records, tickets and screen pops."""


@ami_listener.command("run")
@click.option("--username", default="listener", show_default=True, help="AMI user.")
@click.option(
    "--secret",
    envvar=["ACIKKAPI_AMI_LISTENER_SECRET", "ACIKKAPI_AMI_SECRET_LISTENER"],
    default=None,
    help="AMI secret (default: env ACIKKAPI_AMI_LISTENER_SECRET or ACIKKAPI_AMI_SECRET_LISTENER, "
    "else key ami.listener of <instance>/secrets/asterisk.json).",
)
@click.option("--max-frame", default=64 * 1024, show_default=True, help="Largest AMI frame.")
@click.option("--ping-interval", default=10.0, show_default=True, help="Watchdog ping (s).")
@click.option("--ping-timeout", default=5.0, show_default=True, help="Ping answer limit (s).")
@click.option("--backoff-cap", default=30.0, show_default=True, help="Max reconnect delay (s).")
@click.option(
    "--ticket-workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes opening the tickets of answered calls (0: a thread of the listener; "
    "default 1 on PostgreSQL, 0 on SQLite).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def run(
    ctx: click.Context,
    username: str,
    secret: str | None,
    max_frame: int,
    ping_interval: float,
    ping_timeout: float,
    backoff_cap: float,
    ticket_workers: int | None,
    verbose: bool,
) -> None:
    """Run the listener until SIGINT/SIGTERM (reconnects by itself)."""
    from ami_listener.daemon import ListenerOptions, SecretMissing, listener_secret, run_listener

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = _settings(ctx)
    try:
        resolved = listener_secret(settings, secret)
    except SecretMissing as exc:
        raise click.ClickException(str(exc)) from exc
    options = ListenerOptions(
        username=username,
        max_frame=max_frame,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        backoff_cap=backoff_cap,
        ticket_workers=ticket_workers,
    )
    asyncio.run(run_listener(settings, resolved, options))


@ami_listener.command("replay")
@click.argument("transcript", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publish", is_flag=True, help="Also publish screen pops to Redis.")
@click.pass_context
def replay(ctx: click.Context, transcript: Path, publish: bool) -> None:
    """Apply a recorded AMI transcript to the database (idempotent)."""
    from ami_listener.daemon import replay_file

    replay_file(transcript, _settings(ctx), publish=publish, echo=click.echo)
