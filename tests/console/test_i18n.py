"""Turkish by default, English on request; the English catalogue is complete; İ/ı casing."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from agent_console.i18n import SOURCE_DIR, compile_catalogs
from models import Role
from tests.console.conftest import ConsoleEnv, csrf, csrf_from
from tests.factories import add_citizen

CONSOLE = Path(__file__).resolve().parents[2] / "agent_console"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_turkish_is_the_default(console_env: ConsoleEnv) -> None:
    page = console_env.client().get("/login")
    assert '<html lang="tr">' in page.text
    assert "Giriş yap" in page.text and "Kullanıcı adı" in page.text
    assert "Sign in" not in page.text


def test_english_switch_before_and_after_sign_in(console_env: ConsoleEnv) -> None:
    client = console_env.client()
    token = csrf_from(client.get("/login").text)
    switched = client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    assert switched.status_code == 302 and switched.location == "/login"
    page = client.get("/login")
    assert '<html lang="en">' in page.text and "User name" in page.text
    console_env.login(Role.SUPERVISOR, client)
    assert "Search" in client.get("/search").text  # the session's choice survives sign-in
    # Switching back while signed in also stores the choice in the user's profile.
    client.post("/language", data={"lang": "tr", "csrf_token": csrf(client)})
    supervisor = console_env.user(Role.SUPERVISOR)
    console_env.db.refresh(supervisor)
    assert supervisor.ui_language == "tr"
    client.post("/language", data={"lang": "en", "csrf_token": csrf(client)})
    console_env.db.refresh(supervisor)
    assert supervisor.ui_language == "en"
    fresh = console_env.login(Role.SUPERVISOR)  # a new session follows the profile
    assert '<html lang="en">' in fresh.get("/search").text


def test_unknown_language_is_ignored(console_env: ConsoleEnv) -> None:
    client = console_env.client()
    token = csrf_from(client.get("/login").text)
    client.post("/language", data={"lang": "de", "csrf_token": token})
    assert '<html lang="tr">' in client.get("/login").text


def test_domain_errors_follow_the_screen_language(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    tr = client.get("/search?q=12345678901").text
    assert "kontrol haneleri" in tr
    client.post("/language", data={"lang": "en", "csrf_token": csrf(client)})
    en = client.get("/search?q=12345678901").text
    assert "check digits" in en


def test_names_are_upper_cased_with_turkish_rules(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    citizen = add_citizen(db, now, "+905329998877", first_name="ılgın", last_name="işıkçı")
    client = console_env.login(Role.AGENT)
    page = client.get(f"/citizens/{citizen.id}?why=test").text
    assert "ILGIN İŞIKÇI" in page
    assert "IŞIKÇI" not in page  # what str.upper() would make of "işıkçı"
    other = add_citizen(db, now, "+905329998866", first_name="İnci", last_name="Irmak")
    page = client.get(f"/citizens/{other.id}?why=test").text
    assert "İNCİ IRMAK" in page and "İNCI" not in page


def _catalogue() -> dict[str, str]:
    with (SOURCE_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="en")
    return {str(m.id): str(m.string) for m in catalog if m.id and isinstance(m.id, str)}


def test_every_text_has_an_english_translation() -> None:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(CONSOLE), method_map, keywords=keywords
        )
        if isinstance(message, str)
    }
    assert len(found) > 100  # the extraction itself works
    catalogue = _catalogue()
    missing = sorted(m for m in found if not catalogue.get(m))
    assert missing == [], "texts without an English translation (see docs/console.md)"
    broken = sorted(
        m
        for m, t in catalogue.items()
        if set(PLACEHOLDER.findall(m)) != set(PLACEHOLDER.findall(t))
    )
    assert broken == [], "translations that lost or invented a %(placeholder)s"


def test_catalogues_compile_when_the_po_is_newer(tmp_path: Path) -> None:
    written = compile_catalogs(SOURCE_DIR, tmp_path)
    mo = tmp_path / "en" / "LC_MESSAGES" / "messages.mo"
    assert written == [mo] and mo.stat().st_size > 1000
    assert compile_catalogs(SOURCE_DIR, tmp_path) == []  # up to date: nothing to do
