"""The application factory: ``create_app(settings)``.

Wires the request-scoped database session (:mod:`agent_console.db`), sign-in and HTTP
hardening (:mod:`agent_console.security`), the permission matrix
(:mod:`agent_console.permissions`), Turkish/English (:mod:`agent_console.i18n`), error pages
and one blueprint per area (:data:`agent_console.blueprints.BLUEPRINTS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from acikkapi.db import engine_from_settings, make_session_factory
from acikkapi.settings import Settings
from agent_console import db, i18n, security
from agent_console.context import EXTENSION, Console, system_clock
from agent_console.permissions import can, enforce, wants_json
from services.errors import DomainError, NotPermitted, UnknownEntity

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    testing: bool = False,
    session_factory: sessionmaker[Session] | None = None,
    clock: Callable[[], datetime] | None = None,
    ami: Callable[[], Any] | None = None,
    recordings_dir: Callable[[], Path] | None = None,
) -> Flask:
    """Build the console for ``settings``.

    ``testing`` turns on Flask's testing mode (exceptions propagate); the keyword arguments
    replace collaborators in tests: ``session_factory`` (e.g. bound to a rolled-back
    connection), ``clock`` (time travel), ``ami`` (a PBX client factory) and
    ``recordings_dir``. CSRF protection stays on in every mode.
    """
    app = Flask(
        "agent_console",
        root_path=str(Path(__file__).resolve().parent),
        static_folder="static",
        template_folder="templates",
    )
    app.config.update(TESTING=testing, MAX_CONTENT_LENGTH=16 * 1024 * 1024)
    sessions = session_factory or make_session_factory(engine_from_settings(settings))
    app.extensions[EXTENSION] = Console(
        settings=settings,
        sessions=sessions,
        clock=clock or system_clock,
        ami=ami,
        recordings_dir=recordings_dir,
    )
    db.init_app(app)
    security.init_app(app, settings)
    i18n.init_app(app, settings)
    app.before_request(enforce)
    _templates(app, settings)
    _errors(app)

    from agent_console.blueprints import BLUEPRINTS

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def _templates(app: Flask, settings: Settings) -> None:
    from flask_babel import format_datetime, format_timedelta

    from agent_console.labels import label
    from agent_console.navigation import nav_items

    app.jinja_env.globals.update(
        can=can,
        label=label,
        nav_items=nav_items,
        municipality=settings.municipality_name,
        call_centre_number=settings.call_centre_number,
        current_language=lambda: str(get_locale() or settings.default_language),
    )
    app.jinja_env.filters.update(
        when=i18n.when,
        clock=lambda moment: format_datetime(moment, "HH:mm") if moment else "—",
        duration=lambda delta: format_timedelta(delta, threshold=1.1, add_direction=False),
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True


def _error(status: int, message: str, code: str) -> ResponseReturnValue:
    """An error page, or ``{"error": <message>, "code": <stable code>}`` for scripts."""
    if wants_json():
        response = jsonify(error=message, code=code)
        response.status_code = status
        return response
    return render_template("error.html", status=status, message=message), status


def _errors(app: Flask) -> None:
    from flask_babel import gettext as _

    messages: dict[int, Callable[[], str]] = {
        400: lambda: _("İstek anlaşılamadı."),
        403: lambda: _("Bu sayfaya erişim yetkiniz yok."),
        404: lambda: _("Aradığınız sayfa bulunamadı."),
        405: lambda: _("Bu işlem bu adreste yapılamaz."),
        413: lambda: _("Gönderilen dosya çok büyük."),
    }

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> ResponseReturnValue:
        return _error(
            400,
            _("Güvenlik belirteci eksik ya da geçersiz; sayfayı yenileyip yeniden deneyin."),
            "csrf_failed",
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        text = messages.get(code)
        error_code = getattr(exc, "error_code", f"http_{code}")
        return _error(code, text() if text else (exc.description or ""), error_code)

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> ResponseReturnValue:
        status = (
            403 if isinstance(exc, NotPermitted) else 404 if isinstance(exc, UnknownEntity) else 400
        )
        return _error(status, exc.message(i18n.current_language()), exc.code)
