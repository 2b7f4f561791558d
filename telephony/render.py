"""Render ``asterisk-conf/*.in`` and ``dialplan/*.in`` into a directory of Asterisk files.

Templates use ``@@{name}`` placeholders (:class:`ConfTemplate`), so Asterisk's own
``${VAR}`` syntax passes through untouched. Every channel-variable name reaches the
templates from :mod:`telephony.channel_vars` as ``@@{cv_<CONSTANT>}`` (for example
``@@{cv_CALL_ID}``); a template that names an unknown placeholder fails the render.
Repeated blocks (endpoints, queue members, extensions) are generated here from the
:class:`~telephony.inventory.Inventory`.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from acikkapi.settings import REPO_ROOT, Settings
from telephony import channel_vars
from telephony.asterisk import Layout
from telephony.inventory import AGENT, MAYORS_OFFICE, OPERATOR, Inventory, Phone
from telephony.secrets import AMI_USERS, AsteriskSecrets

TEMPLATE_DIRS = (REPO_ROOT / "asterisk-conf", REPO_ROOT / "dialplan")

# Dialplan numbers and names (documented in docs/telephony.md).
SWITCHBOARD_NUMBER = "2160000"
SWITCHBOARD_SHORT = "santral"
TRANSFER_TARGET = "7000"  # internal extension of the call-centre queue (operators transfer here)
QUEUE_TR = "cagri-merkezi"
QUEUE_EN = "cagri-merkezi-en"
TRUNK_ENDPOINT = "trunk"


class ConfTemplate(string.Template):
    """``string.Template`` with ``@@`` as delimiter (``@@{name}``), leaving ``${X}`` alone."""

    delimiter = "@@"


@dataclass(frozen=True)
class RenderOptions:
    """Knobs that are not in :class:`Settings` (environment-overridable, see docs).

    ``trunk_match`` — source ``ip[:port]`` identifying the operator trunk (sipp in tests
    sends from this port). ``qualify_frequency`` — seconds between OPTIONS pings to staff
    phones (0 disables; tests use 0 because sipp does not answer OPTIONS).
    """

    trunk_match: str = "127.0.0.1:5090"
    trunk_contact: str = "sip:127.0.0.1:5090"
    qualify_frequency: int = 60
    wrapup_seconds: int = 10
    member_ring_seconds: int = 15
    queue_wait_seconds: int = 300
    english_queue_wait_seconds: int = 60

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RenderOptions:
        """Defaults, overridden (from ``Settings.telephony_overrides``) by
        ``ACIKKAPI_SIP_TRUNK_MATCH``, ``ACIKKAPI_SIP_TRUNK_CONTACT``,
        ``ACIKKAPI_SIP_QUALIFY_FREQUENCY``, ``ACIKKAPI_QUEUE_WRAPUP``,
        ``ACIKKAPI_QUEUE_WAIT`` and ``ACIKKAPI_QUEUE_WAIT_EN`` when set."""
        env = {} if environ is None else environ
        d = cls()
        return cls(
            trunk_match=env.get("ACIKKAPI_SIP_TRUNK_MATCH", d.trunk_match),
            trunk_contact=env.get("ACIKKAPI_SIP_TRUNK_CONTACT", d.trunk_contact),
            qualify_frequency=int(
                env.get("ACIKKAPI_SIP_QUALIFY_FREQUENCY", str(d.qualify_frequency))
            ),
            wrapup_seconds=int(env.get("ACIKKAPI_QUEUE_WRAPUP", str(d.wrapup_seconds))),
            queue_wait_seconds=int(env.get("ACIKKAPI_QUEUE_WAIT", str(d.queue_wait_seconds))),
            english_queue_wait_seconds=int(
                env.get("ACIKKAPI_QUEUE_WAIT_EN", str(d.english_queue_wait_seconds))
            ),
        )


def _cv_values() -> dict[str, str]:
    return {
        f"cv_{name}": value
        for name, value in vars(channel_vars).items()
        if name.isupper() and isinstance(value, str)
    }


def _conf_str(value: str) -> str:
    """Strip characters that would break an Asterisk config line."""
    return "".join(ch for ch in value if ch not in ';\n\r[]"<>')


def _endpoint_block(phone: Phone, password: str, template: str) -> str:
    name = _conf_str(phone.name)
    lang = "en" if phone.languages == ("en",) else "tr"
    return (
        f"; {phone.kind}: {name}\n"
        f"[{phone.extension}]({template})\n"
        f"auth={phone.extension}\n"
        f"aors={phone.extension}\n"
        f'callerid="{name}" <{phone.extension}>\n'
        f"language={lang}\n"
        f"[{phone.extension}](ak-auth)\n"
        f"username={phone.extension}\n"
        f"password={password}\n"
        f"[{phone.extension}](ak-aor)\n"
    )


def _service_hours_lines(settings: Settings) -> str:
    if settings.service_hours == "24/7":
        return " same => n,Goto(open)"
    start, end = settings.service_hours.split("-")
    if end == "24:00":
        end = "23:59"
    return (
        f" same => n,GotoIfTime({start}-{end},*,*,*,{settings.timezone}?open)\n"
        " same => n,Goto(closed)"
    )


def template_values(
    settings: Settings,
    inventory: Inventory,
    secrets: AsteriskSecrets,
    layout: Layout,
    options: RenderOptions,
) -> dict[str, str]:
    """Every placeholder value the templates may use."""
    kinds = {AGENT: "ak-agent", OPERATOR: "ak-operator", MAYORS_OFFICE: "ak-mayor"}
    endpoints = "\n".join(
        _endpoint_block(p, secrets.sip_password(p.extension), kinds.get(p.kind, "ak-phone"))
        for p in inventory.phones
    )

    def members(phones: tuple[Phone, ...]) -> str:
        return "\n".join(
            f"member => PJSIP/{p.extension},0,{_conf_str(p.name)},PJSIP/{p.extension}"
            for p in phones
        )

    internal = "\n".join(
        f"exten => {p.extension},hint,PJSIP/{p.extension}\n"
        f"exten => {p.extension},1,Dial(PJSIP/{p.extension},30,tT)\n"
        f" same => n,Hangup()"
        for p in inventory.phones
    )
    operators = "&".join(f"PJSIP/{p.extension}" for p in inventory.operators) or "PJSIP/none"
    directories = ""
    if layout.mode == "system":
        directories = "\n".join(
            [
                f"astetcdir => {layout.etc_dir}",
                f"astspooldir => {layout.spool_dir}",
                f"astlogdir => {layout.log_dir}",
                f"astrundir => {layout.run_dir}",
                f"astvarlibdir => {layout.lib_dir}",
                f"astdbdir => {layout.lib_dir}",
            ]
        )
    values = {
        "sip_host": settings.sip_host,
        "sip_port": str(settings.sip_port),
        "ami_host": settings.ami_host,
        "ami_port": str(settings.ami_port),
        "agi_host": settings.agi_host,
        "agi_port": str(settings.agi_port),
        "agi_url": f"agi://{settings.agi_host}:{settings.agi_port}",
        "timezone": settings.timezone,
        "default_language": settings.default_language,
        "call_centre_number": settings.call_centre_number,
        "switchboard_number": SWITCHBOARD_NUMBER,
        "switchboard_short": SWITCHBOARD_SHORT,
        "transfer_target": TRANSFER_TARGET,
        "queue_tr": QUEUE_TR,
        "queue_en": QUEUE_EN,
        "trunk": TRUNK_ENDPOINT,
        "trunk_match": options.trunk_match,
        "trunk_contact": options.trunk_contact,
        "trunk_password": secrets.sip_password(TRUNK_ENDPOINT),
        "qualify_frequency": str(options.qualify_frequency),
        "wrapup_seconds": str(options.wrapup_seconds),
        "member_ring_seconds": str(options.member_ring_seconds),
        "queue_wait_seconds": str(options.queue_wait_seconds),
        "english_queue_wait_seconds": str(options.english_queue_wait_seconds),
        "endpoints": endpoints,
        "queue_members_tr": members(inventory.agents),
        "queue_members_en": members(inventory.english_agents),
        "internal_extensions": internal,
        "operator_dial": operators,
        "service_hours_lines": _service_hours_lines(settings),
        "service_hours": settings.service_hours,
        "ami_channelvars": ",".join(channel_vars.AMI_CHANNELVARS),
        "directories": directories,
        "inventory_source": inventory.source,
    }
    for user in AMI_USERS:
        values[f"ami_secret_{user}"] = secrets.ami_password(user)
    values.update(_cv_values())
    return values


def template_files() -> list[Path]:
    """Every ``*.conf.in`` template, asterisk-conf/ first, then dialplan/."""
    found: list[Path] = []
    for directory in TEMPLATE_DIRS:
        found.extend(sorted(directory.glob("*.conf.in")))
    return found


def render_to(target: Path, values: Mapping[str, str]) -> list[Path]:
    """Render every template into ``target`` (created, mode 0750; files 0640).

    Returns the written paths. Raises ``KeyError``/``ValueError`` for an unknown or
    malformed placeholder, before anything is written.
    """
    rendered: dict[str, str] = {}
    header = (
        "; Generated by `acikkapi asterisk render` from {src}. Do not edit: edit the template.\n"
    )
    for template in template_files():
        text = ConfTemplate(template.read_text(encoding="utf-8")).substitute(values)
        name = template.name.removesuffix(".in")
        rel = template.relative_to(REPO_ROOT)
        rendered[name] = header.format(src=rel) + text
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o750)
    written = []
    for name, text in rendered.items():
        path = target / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        written.append(path)
    # Files from an older template set would be read by Asterisk: remove them.
    for stale in target.glob("*.conf"):
        if stale.name not in rendered:
            stale.unlink()
    return written
