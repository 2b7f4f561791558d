"""Search by phone (any Turkish form), TC number, reference code or name (R2.4, R4.3)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from agent_console import db
from agent_console.context import now
from agent_console.i18n import current_language
from agent_console.permissions import PERSONAL_DATA
from agent_console.security import current_staff
from services.citizen_history import ticket_lines
from services.citizen_search import SearchResult, search
from services.errors import DomainError

bp = Blueprint("search", __name__, url_prefix="/search")


@bp.route("")
def index() -> ResponseReturnValue:
    staff = current_staff()
    query = request.args.get("q", "").strip()[:100]
    result: SearchResult | None = None
    error = None
    if query:
        s = db.session()
        try:
            result = search(s, staff, query, with_citizens=staff.role in PERSONAL_DATA)
            result.lines = ticket_lines(s, now(), result.tickets)
        except DomainError as exc:
            error = exc.message(current_language())
    return render_template("search/index.html", query=query, result=result, error=error)
