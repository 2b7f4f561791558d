"""The supervisor's wallboard (R4.6, issue 4 item 7): callers waiting and the longest wait,
agents by state, service level (answered within 20 s) and abandon rate per shift, and the
tickets past SLA.

The page renders the board once and ``wallboard.js`` replaces it every
:data:`REFRESH_SECONDS` with the fragment of :func:`board` (periodic fetch, no inline code).
The fragment is a passive request (agent_console.security.PASSIVE_ENDPOINTS): a wall screen
left alone does not keep a supervisor's session open. The figures are computed by
:func:`services.wallboard.wallboard`; Asterisk's live queue state comes from
:mod:`agent_console.wallboard_pbx` (the board falls back on the call records and says so
when the PBX does not answer).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_babel import format_percent
from flask_babel import lazy_gettext as _l

from agent_console import db, wallboard_pbx
from agent_console.context import now
from agent_console.i18n import current_language
from agent_console.labels import AGENT_STATE
from services.wallboard import SERVICE_LEVEL_SECONDS, Wallboard, wallboard

bp = Blueprint("wallboard", __name__, url_prefix="/wallboard")

REFRESH_SECONDS = 5

SHIFT_NAMES: dict[str, object] = {
    "night": _l("Gece"),
    "day": _l("Gündüz"),
    "evening": _l("Akşam"),
}


def _context() -> dict[str, Any]:
    moment = now()
    pbx = wallboard_pbx.fetch(moment)
    board: Wallboard = wallboard(db.session(), moment, pbx.live)
    return {
        "board": board,
        "pbx_error": pbx.error.message(current_language()) if pbx.error is not None else None,
        "shift_names": {code: str(name) for code, name in SHIFT_NAMES.items()},
        "state_names": {code: str(name) for code, name in AGENT_STATE.items()},
        "sl_seconds": SERVICE_LEVEL_SECONDS,
        "percent": lambda value: "—" if value is None else format_percent(value),
        "refresh": REFRESH_SECONDS,
    }


@bp.route("")
def index() -> ResponseReturnValue:
    """The wallboard page (the board, refreshed by its script)."""
    return render_template("wallboard/index.html", **_context())


@bp.route("/board")
def board() -> ResponseReturnValue:
    """The board alone (HTML fragment) for the page's periodic refresh."""
    return render_template("wallboard/_board.html", **_context())
