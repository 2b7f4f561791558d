"""PBX secrets: one AMI password per service user and one SIP password per endpoint.

Generated once with :func:`secrets.token_urlsafe` into ``<instance>/secrets/asterisk.json``
(directory 0700, file 0600) and reused afterwards, so phones and services keep working
across re-renders. An environment variable overrides a stored value without writing it:
``ACIKKAPI_AMI_SECRET_<USER>`` (e.g. ``ACIKKAPI_AMI_SECRET_LISTENER``) and
``ACIKKAPI_SIP_SECRET_<ENDPOINT>`` (e.g. ``ACIKKAPI_SIP_SECRET_1001``,
``ACIKKAPI_SIP_SECRET_TRUNK``). The file is never committed (``instance/`` is ignored).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from acikkapi.settings import Settings

# The AMI users, one per service (least privilege; see manager.conf.in).
AMI_USERS = ("listener", "console", "dialer")


@dataclass(frozen=True)
class AsteriskSecrets:
    """Passwords by AMI user and by SIP endpoint name."""

    ami: Mapping[str, str]
    sip: Mapping[str, str]

    def ami_password(self, user: str) -> str:
        """The password of AMI ``user``; ``KeyError`` for an unknown user."""
        return self.ami[user]

    def sip_password(self, endpoint: str) -> str:
        """The password of SIP endpoint ``endpoint``; ``KeyError`` for an unknown one."""
        return self.sip[endpoint]


def secrets_path(settings: Settings) -> Path:
    """Where the generated secrets live: ``<instance>/secrets/asterisk.json``."""
    return settings.instance_dir / "secrets" / "asterisk.json"


def _env_key(kind: str, name: str) -> str:
    return f"ACIKKAPI_{kind}_SECRET_{name.upper().replace('-', '_')}"


def ensure_secrets(
    settings: Settings,
    sip_endpoints: Iterable[str],
    environ: Mapping[str, str] | None = None,
) -> AsteriskSecrets:
    """Return passwords for every AMI user and every endpoint in ``sip_endpoints``.

    Missing passwords are generated and persisted (0600) before returning; existing ones
    are never changed. Environment overrides win but are not written to the file.
    """
    env = settings.telephony_overrides if environ is None else environ
    path = secrets_path(settings)
    stored: dict[str, dict[str, str]] = {"ami": {}, "sip": {}}
    if path.exists():
        loaded = json.loads(path.read_text(encoding="utf-8"))
        for section in ("ami", "sip"):
            stored[section] = {str(k): str(v) for k, v in dict(loaded.get(section, {})).items()}
    changed = not path.exists()
    for user in AMI_USERS:
        if user not in stored["ami"]:
            stored["ami"][user] = secrets.token_urlsafe(24)
            changed = True
    for endpoint in sip_endpoints:
        if endpoint not in stored["sip"]:
            stored["sip"][endpoint] = secrets.token_urlsafe(18)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    ami = {u: env.get(_env_key("AMI", u)) or p for u, p in stored["ami"].items()}
    sip = {e: env.get(_env_key("SIP", e)) or p for e, p in stored["sip"].items()}
    return AsteriskSecrets(ami=ami, sip=sip)


def load_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> AsteriskSecrets:
    """Read the secrets written by ``acikkapi asterisk render`` (with env overrides).

    For services (AMI listener, console, dialer): ``load_secrets(s).ami_password("listener")``.
    Raises ``FileNotFoundError`` when the PBX configuration was never rendered.
    """
    path = secrets_path(settings)
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run `acikkapi asterisk render` first")
    return ensure_secrets(settings, (), environ)
