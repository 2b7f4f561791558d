"""Notifications that could not be sent (the outbox's dead letters, issue 5) and the
supervisor's "requeue" action (services.dead_letters: who may, masking, timeline)."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from agent_console import db
from agent_console.context import now
from agent_console.permissions import wants_json
from agent_console.security import current_staff
from services.dead_letters import list_dead, requeue

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


@bp.route("/dead")
def dead() -> ResponseReturnValue:
    """The dead-letter list, newest first (recipients masked)."""
    page = list_dead(db.session(), current_staff(), now())
    return render_template("outbox/dead.html", page=page)


@bp.route("/<int:notification_id>/requeue", methods=["POST"])
def requeue_one(notification_id: int) -> ResponseReturnValue:
    """Give one dead notification fresh attempts (POST, CSRF; redirect back to the list)."""
    with db.transaction() as s:
        requeue(s, current_staff(), now(), notification_id)
    message = _("Bildirim #%(id)s yeniden gönderim kuyruğuna alındı.", id=notification_id)
    if wants_json():
        return jsonify(ok=True, message=message)
    flash(message, "success")
    return redirect(url_for("outbox.dead"))
