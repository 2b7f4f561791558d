"""``acikkapi console run``: serve the agent console with waitress (threaded, pure Python).

Each open screen-pop stream (one per agent screen) holds one of the ``--threads`` worker
threads while it is open; the default (``ACIKKAPI_CONSOLE_THREADS``, 64) leaves room for 50
agents plus their ordinary requests. Listens on ``127.0.0.1:8080`` unless told otherwise;
put a TLS reverse proxy in front of it for anything but a loopback demo.
"""

from __future__ import annotations

import logging

import click

from acikkapi.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


@click.group("console")
def console() -> None:
    """The agent console (Flask web application, issue 4)."""


@console.command("run")
@click.option("--host", default=None, help="Address to listen on (ACIKKAPI_CONSOLE_HOST).")
@click.option("--port", type=int, default=None, help="Port (ACIKKAPI_CONSOLE_PORT).")
@click.option("--threads", type=int, default=None, help="Worker threads.")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def run(
    ctx: click.Context, host: str | None, port: int | None, threads: int | None, verbose: bool
) -> None:
    """Serve the console until SIGTERM / Ctrl-C."""
    from waitress import serve

    from agent_console.app import create_app

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = _settings(ctx)
    app = create_app(settings)
    host = host or settings.console_host
    port = port or settings.console_port
    click.echo(f"Açık Kapı konsolu / console: http://{host}:{port}/", err=True)
    serve(
        app,
        host=host,
        port=port,
        threads=threads or settings.console_threads,
        ident="acikkapi",
        channel_timeout=120,
        connection_limit=max(200, 4 * (threads or settings.console_threads)),
        clear_untrusted_proxy_headers=True,
    )


@console.command("users")
@click.pass_context
def users(ctx: click.Context) -> None:
    """Where to sign in, and one demo user per role (for scripts/run)."""
    from sqlalchemy import select

    from acikkapi.db import engine_from_settings, make_session_factory
    from models import Role, StaffUser

    settings = _settings(ctx)
    click.echo(f"Konsol / console: http://{settings.console_host}:{settings.console_port}/")
    engine = engine_from_settings(settings)
    try:
        with make_session_factory(engine)() as session:
            staff = session.scalars(
                select(StaffUser)
                .where(StaffUser.role != Role.SYSTEM, StaffUser.is_active)
                .order_by(StaffUser.id)
            )
            first: dict[Role, StaffUser] = {}
            for user in staff:
                first.setdefault(user.role, user)
    finally:
        engine.dispose()
    for role, user in first.items():
        extension = f"  (dahili {user.sip_extension})" if user.sip_extension else ""
        click.echo(f"  {role.value:<22} {user.username}{extension}")
    if settings.demo_password:
        click.echo(
            "  parola / password: ACIKKAPI_DEMO_PASSWORD"
            if settings.demo_password != _embedded()
            else f"  parola / password: {settings.demo_password}  (gömülü demo / embedded demo)"
        )
    else:
        click.echo("  parola: demo parolası yok (ACIKKAPI_DEMO_PASSWORD) / no demo password set")


def _embedded() -> str:
    from acikkapi.settings import EMBEDDED_DEMO_PASSWORD

    return EMBEDDED_DEMO_PASSWORD
