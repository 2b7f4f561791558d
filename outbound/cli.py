"""``acikkapi dialer``: the outbound dialer from the command line (issue 6, decision 0021).

- ``tick`` runs one dial tick now in this process (what the ``outbound-dial-tick`` RQ job
  does every second): claim due attempts, commit, originate as AMI user ``dialer``;
- ``recover`` fails attempts whose lease ran out (the ``outbound-recover`` job).

Both are safe to run beside the workers: claims are decided by the database.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from acikkapi.db import engine_from_settings, make_session_factory
from acikkapi.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-07T10:30:00+03:00")
    return moment.astimezone(UTC)


@click.group("dialer")
def dialer() -> None:
    """Drive the outbound dialer by hand (the workers do it on their own)."""


@dialer.command("tick")
@click.option("--now", "now_text", default=None, help="ISO moment to claim at (default: now).")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def tick_cmd(ctx: click.Context, now_text: str | None, verbose: bool) -> None:
    """Claim the attempts due now and originate them (one tick)."""
    from outbound.jobs import _connect_from, dial_once

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    settings = _settings(ctx)
    engine = engine_from_settings(settings)
    try:
        report = dial_once(
            make_session_factory(engine), _connect_from(settings), now=_moment(now_text)
        )
    finally:
        engine.dispose()
    click.echo(
        f"claimed {report.claimed}, originated {report.originated}, "
        f"refused {report.refused}, unanswered {report.unknown}"
    )


@dialer.command("recover")
@click.option("--now", "now_text", default=None, help="ISO moment (default: now).")
@click.pass_context
def recover_cmd(ctx: click.Context, now_text: str | None) -> None:
    """Fail in-flight attempts whose lease ran out (their targets are retried by policy)."""
    from outbound.jobs import recover_once

    settings = _settings(ctx)
    engine = engine_from_settings(settings)
    try:
        count = recover_once(make_session_factory(engine), now=_moment(now_text))
    finally:
        engine.dispose()
    click.echo(f"{count} stale attempts failed")
