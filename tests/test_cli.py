"""The ``acikkapi`` command end to end on a fresh embedded (SQLite) instance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from acikkapi.cli import main
from tests.factories import valid_tc

CODE = re.compile(r"^([2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4})\s", re.MULTILINE)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ACIKKAPI_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_fresh_instance_upgrade_load_open_show(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("db", "upgrade")[0] == 0
    assert (tmp_path / "acikkapi.db").exists()
    code, out, _ = run("demo", "load")
    assert code == 0 and "ticket_types=36" in out
    code, out, _ = run("demo", "load")
    assert code == 0 and "citizens=0" in out and "ticket_types=0" in out  # idempotent
    code, out, _ = run(
        "ticket",
        "open",
        "--channel",
        "sms",
        "--tc",
        valid_tc(900),
        "--phone",
        "0532 900 00 01",
        "--type",
        "yol_bozuklugu",
        "-d",
        "Sokakta çukur var",
    )
    assert code == 0, out
    match = CODE.search(out)
    assert match is not None and "opened" in out and "sms to +905329000001" in out
    code, out, _ = run("ticket", "show", match.group(1).lower())
    assert code == 0 and "yol" in out.lower() and "opened" in out
    code, out, _ = run("info")
    assert code == 0 and re.search(r"tickets\s+: 1$", out, re.MULTILINE)


def test_bad_tc_is_a_clear_error_in_both_languages(run) -> None:  # type: ignore[no-untyped-def]
    run("db", "upgrade")
    run("catalogue", "load")
    code, _, err = run(
        "ticket",
        "open",
        "--channel",
        "sms",
        "--tc",
        "12345678901",
        "--phone",
        "05329000001",
        "-d",
        "x",
    )
    assert code == 2 and "kontrol haneleri" in err
    code, _, err = run(
        "ticket",
        "open",
        "--channel",
        "sms",
        "--tc",
        "12345678901",
        "--phone",
        "05329000001",
        "-d",
        "x",
        "--lang",
        "en",
    )
    assert code == 2 and "check digits" in err
    code, out, _ = run("info")
    assert re.search(r"tickets\s+: 0$", out, re.MULTILINE)
