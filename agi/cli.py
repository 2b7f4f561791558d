"""``acikkapi agi …``: the FastAGI server Asterisk calls (caller lookup, callbacks, surveys)."""

from __future__ import annotations

import asyncio
import logging

import click

from acikkapi.settings import Settings


@click.group("agi")
def agi() -> None:
    """The FastAGI server Asterisk calls for caller lookup, callbacks and surveys."""


@agi.command("serve")
@click.option("--host", default=None, help="Bind address (default: ACIKKAPI_AGI_HOST, loopback).")
@click.option("--port", type=int, default=None, help="TCP port (default: ACIKKAPI_AGI_PORT, 4573).")
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def serve_command(ctx: click.Context, host: str | None, port: int | None, log_level: str) -> None:
    """Run the FastAGI server until SIGTERM/SIGINT (then finish in-flight calls and stop).

    FastAGI has no authentication: keep it on loopback or an allow-listed address.
    """
    from acikkapi.db import engine_from_settings, make_session_factory
    from agi.server import AgiContext, serve
    from models import Language
    from services.service_hours import parse_service_hours

    settings = ctx.obj
    assert isinstance(settings, Settings)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    bind_host = host or settings.agi_host
    if bind_host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"UYARI / warning: FastAGI bound to {bind_host} (no authentication)", err=True)
    engine = engine_from_settings(settings)
    context = AgiContext(
        session_factory=make_session_factory(engine),
        staffed_hours=parse_service_hours(settings.service_hours),
        default_language=Language(settings.default_language),
    )
    try:
        asyncio.run(serve(context, bind_host, settings.agi_port if port is None else port))
    finally:
        engine.dispose()
