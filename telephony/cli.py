"""``acikkapi asterisk …``: provisioning and control of the PBX (issue 3).

``install`` (idempotent provisioning), ``render`` (write configuration), ``start``,
``stop``, ``reload``, ``status`` and ``cli "<asterisk command>"``.
"""

from __future__ import annotations

import click

from acikkapi.settings import Settings
from telephony import asterisk as pbx
from telephony.asterisk import AsteriskError


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def _layout(ctx: click.Context) -> pbx.Layout:
    return pbx.detect_layout(_settings(ctx))


@click.group("asterisk")
def asterisk() -> None:
    """Install, configure, start, stop, reload and inspect Asterisk."""


@asterisk.command("install")
@click.pass_context
def install_cmd(ctx: click.Context) -> None:
    """Provision Asterisk (system one, or a private Debian sid root) and prompts."""
    from telephony.provision import install

    try:
        result = install(_settings(ctx))
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
    layout = result.layout
    state = "built now" if result.root_built else "already present"
    click.echo(f"asterisk: {layout.mode} layout at {layout.root} ({state})")
    click.echo(
        f"prompts: {len(result.prompts.generated)} generated, {len(result.prompts.studio)} "
        f"studio, {len(result.prompts.unchanged)} unchanged"
    )


@asterisk.command("render")
@click.pass_context
def render_cmd(ctx: click.Context) -> None:
    """Render asterisk-conf/ and dialplan/ templates and deploy them (no reload)."""
    from telephony.provision import render

    try:
        result = render(_settings(ctx))
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"rendered {len(result.files)} files into {result.rendered_dir} "
        f"({len(result.inventory.phones)} phones from {result.inventory.source} data); "
        f"Asterisk reads {result.layout.etc_dir}"
    )
    for note in result.inventory.notes:
        click.echo(f"note: {note}")


@asterisk.command("start")
@click.pass_context
def start_cmd(ctx: click.Context) -> None:
    """Start Asterisk and wait until it is fully booted (no-op when running)."""
    layout = _layout(ctx)
    try:
        started = pbx.start(layout)
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("asterisk started" if started else "asterisk already running")


@asterisk.command("stop")
@click.pass_context
def stop_cmd(ctx: click.Context) -> None:
    """Stop Asterisk now (calls in progress are dropped)."""
    try:
        stopped = pbx.stop(_layout(ctx))
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("asterisk stopped" if stopped else "asterisk was not running")


@asterisk.command("reload")
@click.pass_context
def reload_cmd(ctx: click.Context) -> None:
    """Reload configuration and dialplan of the running Asterisk."""
    try:
        click.echo(pbx.reload(_layout(ctx)).rstrip() or "reloaded")
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc


@asterisk.command("status")
@click.pass_context
def status_cmd(ctx: click.Context) -> None:
    """Version, uptime, endpoints and queues; exit status 1 when Asterisk is down."""
    try:
        click.echo(pbx.status(_layout(ctx)), nl=False)
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc


@asterisk.command("cli")
@click.argument("command")
@click.pass_context
def cli_cmd(ctx: click.Context, command: str) -> None:
    """Run one Asterisk CLI COMMAND (e.g. "queue show") and print its output."""
    try:
        click.echo(pbx.cli(_layout(ctx), command), nl=False)
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc


@asterisk.command("softphone")
@click.argument("extension", default="1001")
@click.pass_context
def softphone_cmd(ctx: click.Context, extension: str) -> None:
    """Print how to register a softphone as EXTENSION (default: demo agent 1001)."""
    from telephony.secrets import load_secrets

    settings = _settings(ctx)
    try:
        password = load_secrets(settings).sip_password(extension)
    except (FileNotFoundError, KeyError) as exc:
        raise click.ClickException(f"no SIP account {extension}: {exc}") from exc
    click.echo(
        f"Softphone (e.g. Linphone, MicroSIP, Zoiper), UDP transport:\n"
        f"  user / auth user: {extension}\n"
        f"  password:         {password}\n"
        f"  server / domain:  {settings.sip_host}:{settings.sip_port} (UDP)\n"
        f"Then call {settings.call_centre_number} from a trunk, or 7000 to reach the queue."
    )
