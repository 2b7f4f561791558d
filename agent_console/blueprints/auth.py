"""Sign-in, sign-out, language switch and the start page of each role."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from agent_console import db
from agent_console.context import now
from agent_console.i18n import LANGUAGES, SESSION_KEY
from agent_console.permissions import can
from agent_console.security import ConsoleUser, current_staff, start_session
from models import AuditAction, Role
from services import audit
from services.staff_auth import SignInOutcome, authenticate

bp = Blueprint("auth", __name__)


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("auth.home"))
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        with db.transaction() as s:
            result = authenticate(s, now(), username, password, request.remote_addr)
        if result.outcome is SignInOutcome.OK and result.user is not None:
            language = session.get(SESSION_KEY)
            session.clear()
            if language in LANGUAGES:
                session[SESSION_KEY] = language
            login_user(ConsoleUser(result.user))
            start_session(now())
            return redirect(safe_next(request.args.get("next"), url_for("auth.home")))
        status = 401
        if result.outcome is SignInOutcome.LOCKED and result.locked_until is not None:
            flash(
                _(
                    "Çok sayıda hatalı giriş: hesabınız %(until)s saatine kadar kilitlendi.",
                    until=format_datetime(result.locked_until, "HH:mm"),
                ),
                "error",
            )
        else:
            flash(_("Kullanıcı adı veya parola hatalı."), "error")
    return render_template("auth/login.html"), status


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    with db.transaction() as s:
        audit.record(s, current_staff(), now(), AuditAction.SIGN_OUT, ip=request.remote_addr)
    logout_user()
    language = session.get(SESSION_KEY)
    session.clear()
    if language in LANGUAGES:
        session[SESSION_KEY] = language
    flash(_("Oturumunuz kapatıldı."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language() -> ResponseReturnValue:
    """Switch the screens to Turkish or English (this session, and the user's profile)."""
    chosen = request.form.get("lang", "")
    if chosen in LANGUAGES:
        session[SESSION_KEY] = chosen
        if current_user.is_authenticated:
            with db.transaction():
                current_staff().ui_language = chosen
    return redirect(safe_next(request.form.get("next"), url_for("auth.home")))


@bp.route("/keepalive", methods=["POST"])
def keepalive() -> ResponseReturnValue:
    """Scripts call this while the user works on a page (keys, clicks): the idle time-out
    counts from the last request that is not passive."""
    return "", 204


# The first screen of each role; roles without one see the start page with their areas.
# A role's own screen (ROLE_HOME) comes first, then the first of HOME_SCREEN it may reach.
ROLE_HOME = {
    Role.SWITCHBOARD_OPERATOR: "switchboard.index",
    Role.DESK_STAFF: "desk.index",
    Role.DEPARTMENT_LIAISON: "department.index",
    Role.MAYORS_OFFICE: "mayor_office.index",
}
HOME_SCREEN = ("agent.screen", "search.index")


@bp.route("/")
def home() -> ResponseReturnValue:
    own = ROLE_HOME.get(current_staff().role)
    for endpoint in (own, *HOME_SCREEN) if own else HOME_SCREEN:
        if can(endpoint):
            return redirect(url_for(endpoint))
    return render_template("auth/home.html")
