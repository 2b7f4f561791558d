"""Sign-in sessions and HTTP hardening: Flask-Login, time-outs, CSRF, cookies, CSP.

- Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure unless the console is
  a plain-HTTP loopback demo: ``Settings.console_secure_cookies``). The session id given to
  Flask-Login is ``<staff id>.<fingerprint of the password hash>``, so a password change
  ends every session; an account that is deactivated or loses its password is signed out
  at its next request.
- Time-outs (:data:`IDLE_TIMEOUT`, :data:`ABSOLUTE_TIMEOUT`) are checked before every
  request against the console clock. Requests in :data:`PASSIVE_ENDPOINTS` (the screen-pop
  stream, state polling) do not count as activity.
- CSRF: Flask-WTF's ``CSRFProtect`` on every POST/PUT/PATCH/DELETE (forms carry
  ``csrf_token()``, scripts send the ``X-CSRFToken`` header from ``<meta name=csrf-token>``).
- Every response carries a strict Content-Security-Policy (scripts, styles, media only from
  this origin; no inline code), ``nosniff``, ``DENY`` framing, no referrer, and ``no-store``
  for everything but assets (screens hold personal data).
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timedelta

from flask import Flask, Response, flash, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user, logout_user
from flask_wtf.csrf import CSRFProtect

from acikkapi.settings import Settings
from agent_console import db
from agent_console.context import now
from agent_console.permissions import wants_json
from models import StaffUser
from services.staff_auth import can_sign_in, session_token

IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=10)
# Requests that do not keep a session alive (scripts that run while nobody is there).
PASSIVE_ENDPOINTS = frozenset(
    {
        "agent.events",
        "agent.state",
        "static",
        "wallboard.board",
        "switchboard.calls",
        "campaigns.progress",
    }
)

LOGIN_AT = "login_at"
SEEN_AT = "seen_at"

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)

csrf = CSRFProtect()
login_manager = LoginManager()


class ConsoleUser(UserMixin):  # type: ignore[misc]
    """The signed-in staff member as Flask-Login sees them; ``staff`` is the database row
    (attached to the request's session)."""

    def __init__(self, staff: StaffUser) -> None:
        self.staff = staff

    def get_id(self) -> str:
        return f"{self.staff.id}.{session_token(self.staff)}"


def current_staff() -> StaffUser:
    """The signed-in staff member (views behind the matrix are never anonymous)."""
    staff = current_user.staff
    assert isinstance(staff, StaffUser)
    return staff


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user(user_id: str) -> ConsoleUser | None:
    raw_id, _sep, token = user_id.partition(".")
    if not raw_id.isdigit():
        return None
    staff = db.session().get(StaffUser, int(raw_id))
    if staff is None or not can_sign_in(staff) or session_token(staff) != token:
        return None
    return ConsoleUser(staff)


def secret_key(settings: Settings) -> str:
    """``ACIKKAPI_CONSOLE_SECRET_KEY``, else a key generated once into
    ``<instance>/secrets/console.json`` (0600; every console process of the instance shares
    it, so sessions survive restarts)."""
    if settings.console_secret_key:
        return settings.console_secret_key
    path = settings.instance_dir / "secrets" / "console.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(stored, dict) and isinstance(stored.get("secret_key"), str):
            return str(stored["secret_key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"secret_key": key}, handle)
    os.replace(tmp, path)
    return key


def start_session(moment: datetime) -> None:
    """Call right after ``login_user``: the time-outs count from ``moment``."""
    session.permanent = True
    session[LOGIN_AT] = moment.timestamp()
    session[SEEN_AT] = moment.timestamp()


def session_deadline(moment: datetime) -> datetime | None:
    """When the current session expires (idle or absolute, whichever is first)."""
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not isinstance(login_at, int | float) or not isinstance(seen_at, int | float):
        return None
    start = datetime.fromtimestamp(login_at, moment.tzinfo)
    seen = datetime.fromtimestamp(seen_at, moment.tzinfo)
    return min(start + ABSOLUTE_TIMEOUT, seen + IDLE_TIMEOUT)


def _check_timeouts() -> ResponseReturnValue | None:
    if not current_user.is_authenticated:
        return None
    moment = now()
    deadline = session_deadline(moment)
    if deadline is not None and moment < deadline:
        if request.endpoint not in PASSIVE_ENDPOINTS:
            session[SEEN_AT] = moment.timestamp()
        return None
    logout_user()
    session.clear()
    if wants_json() or request.method != "GET":
        response = jsonify(error="session_expired", code="session_expired")
        response.status_code = 401
        return response
    flash(_("Oturumunuzun süresi doldu; lütfen yeniden giriş yapın."), "warning")
    return redirect(url_for("auth.login"))


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=(self)"
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="acikkapi_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.console_secure_cookies,
        PERMANENT_SESSION_LIFETIME=ABSOLUTE_TIMEOUT,
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session (which has its own limits)
        WTF_CSRF_SSL_STRICT=settings.console_secure_cookies,
    )
    login_manager.init_app(app)
    login_manager.session_protection = None  # the time-outs and the token above do this
    csrf.init_app(app)
    app.before_request(_check_timeouts)
    app.after_request(_headers)
