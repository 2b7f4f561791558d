"""Survey follow-ups ("Anket takipleri", R5.2; issue 6 item 3): the low satisfaction scores
a supervisor must follow up, and closing one with a note.

The list comes from :mod:`services.survey_follow_up_list` (open ones oldest first, on
request the ones closed in the last :data:`CLOSED_DAYS` days; a department liaison sees
only their own department's); closing calls :func:`services.survey_outcomes.close_follow_up`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from agent_console import db
from agent_console.context import now
from agent_console.follow_up_forms import CHANNEL, STATUS, FollowUpCloseForm
from agent_console.i18n import current_language
from agent_console.security import current_staff
from models import Department
from models.survey_follow_up import SurveyFollowUp
from services.errors import MissingField
from services.survey_follow_up_list import OWN_DEPARTMENT_ONLY, follow_up_lines
from services.survey_outcomes import close_follow_up

bp = Blueprint("follow_ups", __name__, url_prefix="/follow-ups")

LIMIT = 200  # rows of each list on the page
CLOSED_DAYS = 7  # "recently closed": closed in the last week


def _filters() -> dict[str, str]:
    """The list's filters (``birim``: department id, ``kapali=1``: also recently closed),
    from the query string or, after a failed close, from the form's hidden fields."""
    values: dict[str, str] = {}
    department = request.values.get("birim", "")
    if department.isdigit():
        values["birim"] = department
    if request.values.get("kapali") == "1":
        values["kapali"] = "1"
    return values


def _render(
    form: FollowUpCloseForm | None = None, failed_id: int | None = None, status: int = 200
) -> ResponseReturnValue:
    staff = current_staff()
    session = db.session()
    filters = _filters()
    department_id = int(filters["birim"]) if "birim" in filters else None
    since = now() - timedelta(days=CLOSED_DAYS) if "kapali" in filters else None
    open_lines, closed_lines = follow_up_lines(
        session, actor=staff, department_id=department_id, closed_since=since, limit=LIMIT
    )
    own_only = staff.role in OWN_DEPARTMENT_ONLY
    departments = (
        [] if own_only else list(session.scalars(select(Department).order_by(Department.name_tr)))
    )
    return (
        render_template(
            "follow_ups/index.html",
            open_lines=open_lines,
            closed_lines=closed_lines,
            departments=departments,
            own_only=own_only,
            filters=filters,
            department_id=department_id,
            show_closed="kapali" in filters,
            closed_days=CLOSED_DAYS,
            form=form or FollowUpCloseForm(formdata=None),
            failed_id=failed_id,
            channel_names={k: str(v) for k, v in CHANNEL.items()},
            status_names={k: str(v) for k, v in STATUS.items()},
            english=current_language() == "en",
            limit=LIMIT,
        ),
        status,
    )


@bp.route("")
def index() -> ResponseReturnValue:
    """The open survey follow-ups (optionally of one department, optionally with the
    recently closed ones); citizens' TC numbers masked."""
    return _render()


@bp.route("/<int:follow_up_id>/close", methods=["POST"])
def close(follow_up_id: int) -> ResponseReturnValue:
    """Close a follow-up with a note (required; shown on the form when missing)."""
    form = FollowUpCloseForm()
    if not form.validate_on_submit():
        return _render(form, follow_up_id, 400)
    try:
        with db.transaction() as s:
            found = s.get(SurveyFollowUp, follow_up_id)
            was_open = found is not None and found.status == "open"
            close_follow_up(
                s,
                now=now(),
                actor=current_staff(),
                follow_up_id=follow_up_id,
                note=form.note.data or "",
            )
    except MissingField as exc:
        form.note.errors = [*form.note.errors, exc.message(current_language())]
        return _render(form, follow_up_id, 400)
    if was_open:
        flash(_("Anket takibi #%(id)s kapatıldı.", id=follow_up_id), "success")
    else:
        flash(_("Anket takibi #%(id)s zaten kapatılmıştı.", id=follow_up_id), "info")
    filters: dict[str, Any] = dict(_filters())
    return redirect(url_for("follow_ups.index", **filters))
