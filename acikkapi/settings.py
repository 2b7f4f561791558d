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
    # Notifications and channels (issue 5). Secrets come only from the environment.
    sms_gateway: str  # "file" (embedded default), "http" or "smpp"
    sms_sender: str  # originator / header shown to the citizen
    sms_file_dir: Path  # file gateway: one JSON file per message
    sms_http_url: str
    sms_http_username: str
    sms_http_password: str
    smpp_host: str
    smpp_port: int
    smpp_system_id: str
    smpp_password: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    mail_from: str  # From: of outgoing e-mail, e.g. "Açık Kapı <bilgi@belediye.bel.tr>"
    imap_host: str  # empty: the inbound e-mail poller is off
    imap_port: int
    imap_username: str
    imap_password: str
    imap_mailbox: str
    imap_ssl: bool
    worker_queues: tuple[str, ...]  # RQ queue names served by `acikkapi worker run`
    outbox_lease_seconds: int  # how long a worker owns an outbox row it is sending
    # Agent console (issue 4): where it listens, its cookie key and the demo sign-in.
    console_host: str
    console_port: int
    console_threads: int  # WSGI worker threads; each open screen-pop stream holds one
    console_secret_key: str  # empty: generated once into <instance>/secrets/console.json
    console_secure_cookies: bool  # "auto": Secure unless the console listens on loopback
    demo_password: str  # set on demo staff without a password by `demo load`; "" = none
    # Mayor's weekly call list (issue 6, R5.4): when it is drawn (ISO weekday 1 = Monday, local
    # hour), how many tickets, and for how many weeks a citizen already on a list is left out.
    mayor_list_weekday: int = 1
    mayor_list_hour: int = 9
    mayor_list_size: int = 4
    mayor_list_exclude_weeks: int = 8

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
    Notifications (issue 5): ``ACIKKAPI_SMS_GATEWAY`` (``file`` | ``http`` | ``smpp``),
    ``ACIKKAPI_SMS_SENDER``, ``ACIKKAPI_SMS_FILE_DIR`` (``<instance>/sms-out``),
    ``ACIKKAPI_SMS_HTTP_URL``/``_USERNAME``/``_PASSWORD``, ``ACIKKAPI_SMPP_HOST``/``_PORT``/
    ``_SYSTEM_ID``/``_PASSWORD``, ``ACIKKAPI_SMTP_HOST``/``_PORT``/``_USERNAME``/``_PASSWORD``/
    ``_STARTTLS``, ``ACIKKAPI_MAIL_FROM``, ``ACIKKAPI_IMAP_HOST`` (empty: no inbound polling)/
    ``_PORT``/``_USERNAME``/``_PASSWORD``/``_MAILBOX``/``_SSL``, ``ACIKKAPI_WORKER_QUEUES``
    (``notifications,sweeps,outbound``), ``ACIKKAPI_OUTBOX_LEASE_SECONDS`` (``120``).
    Console (issue 4): ``ACIKKAPI_CONSOLE_HOST`` (``127.0.0.1``), ``_PORT`` (``8080``),
    ``_THREADS`` (``64``), ``_SECRET_KEY``, ``_SECURE_COOKIES`` (``auto``),
    ``ACIKKAPI_DEMO_PASSWORD`` (SQLite default :data:`EMBEDDED_DEMO_PASSWORD`).
    Mayor's weekly list (R5.4): ``ACIKKAPI_MAYOR_LIST_WEEKDAY`` (ISO, ``1`` = Monday),
    ``_HOUR`` (``9``, local), ``_SIZE`` (``4``), ``_EXCLUDE_WEEKS`` (``8``).
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
        sms_gateway=_choice(
            env.get("ACIKKAPI_SMS_GATEWAY", "file"), "ACIKKAPI_SMS_GATEWAY", _SMS_GATEWAYS
        ),
        sms_sender=env.get("ACIKKAPI_SMS_SENDER", "ACIKKAPI"),
        sms_file_dir=Path(env.get("ACIKKAPI_SMS_FILE_DIR") or instance_dir / "sms-out").resolve(),
        sms_http_url=env.get("ACIKKAPI_SMS_HTTP_URL", ""),
        sms_http_username=env.get("ACIKKAPI_SMS_HTTP_USERNAME", ""),
        sms_http_password=env.get("ACIKKAPI_SMS_HTTP_PASSWORD", ""),
        smpp_host=env.get("ACIKKAPI_SMPP_HOST", "127.0.0.1"),
        smpp_port=_port(env.get("ACIKKAPI_SMPP_PORT", "2775"), "ACIKKAPI_SMPP_PORT"),
        smpp_system_id=env.get("ACIKKAPI_SMPP_SYSTEM_ID", ""),
        smpp_password=env.get("ACIKKAPI_SMPP_PASSWORD", ""),
        smtp_host=env.get("ACIKKAPI_SMTP_HOST", "127.0.0.1"),
        smtp_port=_port(env.get("ACIKKAPI_SMTP_PORT", "25"), "ACIKKAPI_SMTP_PORT"),
        smtp_username=env.get("ACIKKAPI_SMTP_USERNAME", ""),
        smtp_password=env.get("ACIKKAPI_SMTP_PASSWORD", ""),
        smtp_starttls=_flag(env.get("ACIKKAPI_SMTP_STARTTLS", "no"), "ACIKKAPI_SMTP_STARTTLS"),
        mail_from=env.get("ACIKKAPI_MAIL_FROM", "Açık Kapı <bilgi@acikkapi.local>"),
        imap_host=env.get("ACIKKAPI_IMAP_HOST", ""),
        imap_port=_port(env.get("ACIKKAPI_IMAP_PORT", "143"), "ACIKKAPI_IMAP_PORT"),
        imap_username=env.get("ACIKKAPI_IMAP_USERNAME", ""),
        imap_password=env.get("ACIKKAPI_IMAP_PASSWORD", ""),
        imap_mailbox=env.get("ACIKKAPI_IMAP_MAILBOX", "INBOX"),
        imap_ssl=_flag(env.get("ACIKKAPI_IMAP_SSL", "no"), "ACIKKAPI_IMAP_SSL"),
        worker_queues=tuple(
            q.strip()
            for q in env.get("ACIKKAPI_WORKER_QUEUES", "notifications,sweeps,outbound").split(",")
            if q.strip()
        ),
        outbox_lease_seconds=_positive(
            env.get("ACIKKAPI_OUTBOX_LEASE_SECONDS", "120"), "ACIKKAPI_OUTBOX_LEASE_SECONDS"
        ),
        console_host=env.get("ACIKKAPI_CONSOLE_HOST", "127.0.0.1"),
        console_port=_port(env.get("ACIKKAPI_CONSOLE_PORT", "8080"), "ACIKKAPI_CONSOLE_PORT"),
        console_threads=_positive(
            env.get("ACIKKAPI_CONSOLE_THREADS", "64"), "ACIKKAPI_CONSOLE_THREADS"
        ),
        console_secret_key=env.get("ACIKKAPI_CONSOLE_SECRET_KEY", ""),
        console_secure_cookies=_secure_cookies(env),
        demo_password=_demo_password(env, database_url),
        mayor_list_weekday=_in_range(
            env.get("ACIKKAPI_MAYOR_LIST_WEEKDAY", "1"), "ACIKKAPI_MAYOR_LIST_WEEKDAY", 1, 7
        ),
        mayor_list_hour=_in_range(
            env.get("ACIKKAPI_MAYOR_LIST_HOUR", "9"), "ACIKKAPI_MAYOR_LIST_HOUR", 0, 23
        ),
        mayor_list_size=_in_range(
            env.get("ACIKKAPI_MAYOR_LIST_SIZE", "4"), "ACIKKAPI_MAYOR_LIST_SIZE", 1, 20
        ),
        mayor_list_exclude_weeks=_in_range(
            env.get("ACIKKAPI_MAYOR_LIST_EXCLUDE_WEEKS", "8"),
            "ACIKKAPI_MAYOR_LIST_EXCLUDE_WEEKS",
            0,
            104,
        ),
    )


def _in_range(value: str, name: str, low: int, high: int) -> int:
    """A whole number within ``low``..``high`` (the mayor's list settings, R5.4)."""
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(f"{name}={value!r}: expected a whole number from {low} to {high}")
    return int(text)


def _positive(value: str, name: str) -> int:
    if not value.strip().isdigit() or int(value) <= 0:
        raise SettingsError(f"{name}={value!r}: expected a whole number of seconds above 0")
    return int(value)


EMBEDDED_DEMO_PASSWORD = "acikkapi-demo"
"""Demo staff password on the embedded SQLite demo when ``ACIKKAPI_DEMO_PASSWORD`` is unset.
Never applied to PostgreSQL: there the variable must be set explicitly (decision 0016)."""


def _secure_cookies(env: Mapping[str, str]) -> bool:
    """``ACIKKAPI_CONSOLE_SECURE_COOKIES``: yes/no, or ``auto`` (default): Secure cookies
    unless the console listens on loopback (plain-HTTP localhost demos)."""
    value = env.get("ACIKKAPI_CONSOLE_SECURE_COOKIES", "auto").strip().lower()
    if value == "auto":
        return env.get("ACIKKAPI_CONSOLE_HOST", "127.0.0.1") not in {
            "127.0.0.1",
            "localhost",
            "::1",
        }
    return _flag(value, "ACIKKAPI_CONSOLE_SECURE_COOKIES")


def _demo_password(env: Mapping[str, str], database_url: str) -> str:
    """``ACIKKAPI_DEMO_PASSWORD``; unset: the embedded default on SQLite only."""
    value = env.get("ACIKKAPI_DEMO_PASSWORD")
    if value is not None:
        return value
    return EMBEDDED_DEMO_PASSWORD if database_url.startswith("sqlite") else ""


_SMS_GATEWAYS = ("file", "http", "smpp")


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


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
