"""Unit tests for acikkapi.settings (explicit environments, no process environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acikkapi.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    settings = load_settings({})
    instance = (REPO / "instance").resolve()
    assert settings.instance_dir == instance
    assert settings.database_url == f"sqlite:///{instance}/acikkapi.db"
    assert settings.is_sqlite
    assert settings.default_language == "tr"
    assert settings.timezone == "Europe/Istanbul"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.sql_echo is False
    assert settings.sms_short_number == "4448007"
    assert settings.call_centre_number == "4448007"


def test_defaults_do_not_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://elsewhere/db")
    monkeypatch.setenv("ACIKKAPI_DEFAULT_LANGUAGE", "en")
    settings = load_settings({})
    assert settings.is_sqlite
    assert settings.default_language == "tr"


def test_instance_dir_moves_the_default_database(tmp_path: Path) -> None:
    settings = load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path)})
    assert settings.instance_dir == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/acikkapi.db"


def test_empty_database_url_means_default(tmp_path: Path) -> None:
    settings = load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path), "DATABASE_URL": ""})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/acikkapi.db"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://user:pw@db.example:5432/acikkapi",
        "postgresql://user:pw@db.example:5432/acikkapi",
        "postgresql+psycopg://user:pw@db.example:5432/acikkapi",
    ],
)
def test_postgres_urls_use_psycopg(url: str) -> None:
    settings = load_settings({"DATABASE_URL": url})
    assert settings.database_url == "postgresql+psycopg://user:pw@db.example:5432/acikkapi"
    assert not settings.is_sqlite


def test_explicit_sqlite_url_is_kept() -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:///:memory:"})
    assert settings.database_url == "sqlite:///:memory:"
    assert settings.is_sqlite


@pytest.mark.parametrize(
    "url", ["mysql://u:p@h/db", "oracle://h/db", "mssql+pyodbc://h/db", "http://example.com"]
)
def test_unsupported_database_scheme(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings({"DATABASE_URL": url})


@pytest.mark.parametrize("language", ["de", "TR", "turkish", ""])
def test_bad_language(language: str) -> None:
    with pytest.raises(SettingsError, match="ACIKKAPI_DEFAULT_LANGUAGE"):
        load_settings({"ACIKKAPI_DEFAULT_LANGUAGE": language})


def test_english_default_language() -> None:
    assert load_settings({"ACIKKAPI_DEFAULT_LANGUAGE": "en"}).default_language == "en"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("yes", True),
        (" TRUE ", True),
        ("evet", True),
        ("on", True),
        ("0", False),
        ("no", False),
        ("hayır", False),
        ("", False),
        ("off", False),
    ],
)
def test_sql_echo_flag(value: str, expected: bool) -> None:
    assert load_settings({"ACIKKAPI_SQL_ECHO": value}).sql_echo is expected


@pytest.mark.parametrize("value", ["maybe", "2", "yess", "hayir-ish"])
def test_bad_sql_echo(value: str) -> None:
    with pytest.raises(SettingsError, match="ACIKKAPI_SQL_ECHO"):
        load_settings({"ACIKKAPI_SQL_ECHO": value})


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize("hours", ["24/7", "09:00-24:00", "22:00-06:00"])
def test_service_hours_accepted(hours: str) -> None:
    assert load_settings({"ACIKKAPI_SERVICE_HOURS": hours}).service_hours == hours


@pytest.mark.parametrize("hours", ["9-17", "25:00-26:00", "09:00-24:30", "24:00-06:00", "always"])
def test_service_hours_refused_with_a_settings_error(hours: str) -> None:
    with pytest.raises(SettingsError, match="ACIKKAPI_SERVICE_HOURS"):
        load_settings({"ACIKKAPI_SERVICE_HOURS": hours})
