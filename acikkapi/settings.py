"""One typed settings object, read from environment variables.

Every process (CLI, daemons, workers, tests) builds its configuration with
:func:`load_settings`. Nothing else in the code base reads ``os.environ``.
Secrets are never defaulted to real values; the embedded defaults (SQLite under
the instance folder, local Redis) are safe for a single machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A configuration variable has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one Açık Kapı process."""

    instance_dir: Path
    database_url: str
    redis_url: str
    timezone: str
    default_language: str
    municipality_name: str
    sms_short_number: str
    call_centre_number: str
    sql_echo: bool
    # Telephony (issue 3). Every listener binds to loopback unless configured otherwise.
    asterisk_root: Path  # private Debian root holding Asterisk, or "/" for a system Asterisk
    ami_host: str
    ami_port: int
    agi_host: str
    agi_port: int
    sip_host: str
    sip_port: int
    service_hours: str  # "24/7" or "HH:MM-HH:MM" staffed hours (e.g. "09:00-24:00")
    # PBX overrides read by telephony.secrets / telephony.render: ACIKKAPI_AMI_SECRET_<USER>,
    # ACIKKAPI_SIP_SECRET_<ENDPOINT>, ACIKKAPI_SIP_TRUNK_*, ACIKKAPI_SIP_QUALIFY_FREQUENCY,
    # ACIKKAPI_QUEUE_WRAPUP, ACIKKAPI_QUEUE_WAIT, ACIKKAPI_QUEUE_WAIT_EN.
    telephony_overrides: Mapping[str, str]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on", "evet"}:
        return True
    if lowered in {"0", "false", "no", "off", "hayır", ""}:
        return False
    raise SettingsError(f"{name}={value!r}: expected a yes/no value")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment).

    Variables (all optional):
    ``ACIKKAPI_INSTANCE_DIR`` (default ``<repo>/instance``), ``DATABASE_URL`` (default SQLite
    file ``<instance>/acikkapi.db``), ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
    ``ACIKKAPI_TIMEZONE`` (``Europe/Istanbul``), ``ACIKKAPI_DEFAULT_LANGUAGE`` (``tr``),
    ``ACIKKAPI_MUNICIPALITY`` (display name), ``ACIKKAPI_SMS_SHORT_NUMBER`` (``4448007``),
    ``ACIKKAPI_CALL_CENTRE_NUMBER`` (``4448007``), ``ACIKKAPI_SQL_ECHO`` (``no``).
    """
    env = os.environ if environ is None else environ
    instance_dir = Path(env.get("ACIKKAPI_INSTANCE_DIR") or REPO_ROOT / "instance").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'acikkapi.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    if not (database_url.startswith("sqlite") or database_url.startswith("postgresql")):
        scheme = database_url.split(":", 1)[0]
        raise SettingsError(
            f"DATABASE_URL: only SQLite and PostgreSQL are supported, not {scheme!r}"
        )
    language = env.get("ACIKKAPI_DEFAULT_LANGUAGE", "tr")
    if language not in {"tr", "en"}:
        raise SettingsError(f"ACIKKAPI_DEFAULT_LANGUAGE={language!r}: expected 'tr' or 'en'")
    return Settings(
        instance_dir=instance_dir,
        database_url=database_url,
        redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        timezone=env.get("ACIKKAPI_TIMEZONE", "Europe/Istanbul"),
        default_language=language,
        municipality_name=env.get("ACIKKAPI_MUNICIPALITY", "Açık Kapı Belediyesi"),
        sms_short_number=env.get("ACIKKAPI_SMS_SHORT_NUMBER", "4448007"),
        call_centre_number=env.get("ACIKKAPI_CALL_CENTRE_NUMBER", "4448007"),
        sql_echo=_flag(env.get("ACIKKAPI_SQL_ECHO", "no"), "ACIKKAPI_SQL_ECHO"),
        asterisk_root=Path(env.get("ACIKKAPI_ASTERISK_ROOT", "/var/cache/acikkapi/asterisk-sid")),
        ami_host=env.get("ACIKKAPI_AMI_HOST", "127.0.0.1"),
        ami_port=_port(env.get("ACIKKAPI_AMI_PORT", "5038"), "ACIKKAPI_AMI_PORT"),
        agi_host=env.get("ACIKKAPI_AGI_HOST", "127.0.0.1"),
        agi_port=_port(env.get("ACIKKAPI_AGI_PORT", "4573"), "ACIKKAPI_AGI_PORT"),
        sip_host=env.get("ACIKKAPI_SIP_HOST", "127.0.0.1"),
        sip_port=_port(env.get("ACIKKAPI_SIP_PORT", "5060"), "ACIKKAPI_SIP_PORT"),
        service_hours=_service_hours(env.get("ACIKKAPI_SERVICE_HOURS", "24/7")),
        telephony_overrides={
            k: v for k, v in env.items() if k.startswith(_TELEPHONY_OVERRIDE_PREFIXES)
        },
    )


_TELEPHONY_OVERRIDE_PREFIXES = (
    "ACIKKAPI_AMI_SECRET_",
    "ACIKKAPI_SIP_SECRET_",
    "ACIKKAPI_SIP_TRUNK_",
    "ACIKKAPI_SIP_QUALIFY_FREQUENCY",
    "ACIKKAPI_QUEUE_",
)


def _port(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name}={value!r}: expected a TCP/UDP port number")
    return int(value)


def _service_hours(value: str) -> str:
    from services.errors import DomainError
    from services.service_hours import parse_service_hours

    text = value.strip()
    try:
        parse_service_hours(text)
    except DomainError as exc:
        raise SettingsError(
            f"ACIKKAPI_SERVICE_HOURS={value!r}: expected '24/7' or 'HH:MM-HH:MM' (e.g. 09:00-24:00)"
        ) from exc
    return text
    parts = text.split("-")
    ok = len(parts) == 2 and all(
        len(p) == 5
        and p[2] == ":"
        and p[:2].isdigit()
        and p[3:].isdigit()
        and int(p[:2]) <= 24
        and int(p[3:]) < 60
        for p in parts
    )
    if not ok:
        raise SettingsError(
            f"ACIKKAPI_SERVICE_HOURS={value!r}: expected '24/7' or 'HH:MM-HH:MM' (e.g. 09:00-24:00)"
        )
    return text
