"""Turkish first, English on request (Flask-Babel).

Message ids in templates and code are the Turkish texts, so a string missing from a
catalogue still shows in Turkish. ``translations/en/LC_MESSAGES/messages.po`` (committed)
holds the English; :func:`compile_catalogs` turns the ``.po`` files into ``.mo`` files under
``<instance>/console/translations`` whenever a ``.po`` is newer, at application start — so a
fresh clone needs no build step. The language is the one chosen in this session, else the
signed-in user's profile (``StaffUser.ui_language``), else ``Settings.default_language``.

Case: :func:`upper` / :func:`lower` follow Turkish rules (İ/i, I/ı) via
``services.turkish_text`` whatever the screen language, since names are Turkish.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, session
from flask_babel import Babel, format_datetime, get_locale
from flask_login import current_user

from acikkapi.settings import Settings
from services.turkish_text import tr_lower, tr_title, tr_upper

LANGUAGES = ("tr", "en")
SOURCE_DIR = Path(__file__).resolve().parent / "translations"
SESSION_KEY = "lang"


def compile_catalogs(source: Path, target: Path) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/*.po`` under ``source`` to ``.mo`` under
    ``target`` when the ``.mo`` is missing or older; return the files written."""
    written = []
    for po in sorted(source.glob("*/LC_MESSAGES/*.po")):
        mo = target / po.relative_to(source).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parts[-3])
        tmp = mo.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, catalog)
        tmp.replace(mo)
        written.append(mo)
    return written


def select_locale() -> str:
    chosen = session.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return str(chosen)
    if current_user and current_user.is_authenticated:
        profile = current_user.staff.ui_language
        if profile in LANGUAGES:
            return str(profile)
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


def current_language() -> str:
    """The language of the current request: ``"tr"`` or ``"en"``."""
    return str(get_locale() or "tr")


def when(moment: datetime | None) -> str:
    """``moment`` as the screens show it, in the console's time zone (``24.11.2026 10:00``;
    ``—`` for none). Also the templates' ``when`` filter."""
    return str(format_datetime(moment, "dd.MM.yyyy HH:mm")) if moment else "—"


def upper(text: str | None) -> str:
    return tr_upper(text or "")


def lower(text: str | None) -> str:
    return tr_lower(text or "")


def title(text: str | None) -> str:
    return tr_title(text or "")


def init_app(app: Flask, settings: Settings) -> None:
    target = settings.instance_dir / "console" / "translations"
    compile_catalogs(SOURCE_DIR, target)
    app.config.update(
        BABEL_DEFAULT_LOCALE=settings.default_language,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(target),
    )
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters.update(upper_tr=upper, lower_tr=lower, title_tr=title)
