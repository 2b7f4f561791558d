"""The KVKK access log for the supervisor: who opened which citizen record, revealed which
TC number, played which recording, and every sign-in — newest first, filterable."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from agent_console import db
from models import AuditAction, StaffUser
from services.audit import AuditFilter, list_events

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE = 100


def _int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.route("")
def index() -> ResponseReturnValue:
    s = db.session()
    action_raw = request.args.get("action", "")
    action = AuditAction(action_raw) if action_raw in AuditAction._value2member_map_ else None
    wanted = AuditFilter(
        action=action,
        actor_id=_int("actor"),
        citizen_id=_int("citizen"),
        before_id=_int("before"),
    )
    events = list_events(s, wanted, limit=PAGE)
    staff = list(s.scalars(select(StaffUser).order_by(StaffUser.full_name)))
    names = {u.id: u.full_name for u in staff}
    return render_template(
        "audit/index.html",
        events=events,
        names=names,
        staff=staff,
        actions=list(AuditAction),
        wanted=wanted,
        next_before=events[-1].id if len(events) == PAGE else None,
    )
