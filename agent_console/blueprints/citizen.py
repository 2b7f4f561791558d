"""The citizen's 360° record, TC reveal and call recordings — every access audited (KVKK)."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from agent_console import db
from agent_console.context import console, now
from agent_console.permissions import wants_json
from agent_console.security import current_staff
from services.audit import REASON_MIN
from services.personal_data import open_citizen, release_recording, reveal_tc

bp = Blueprint("citizen", __name__)

GRANT_TTL = timedelta(minutes=10)  # how long a released recording link works
_GRANT_SALT = "acikkapi-recording"


@bp.route("/citizens/<int:citizen_id>")
def show(citizen_id: int) -> ResponseReturnValue:
    """The record (card, tickets with SLA clocks, calls, surveys); opening it is audited with
    the reason given in ``?why=`` (the search or call that led here)."""
    reason = " ".join(request.args.get("why", "").split())[:200]
    if len(reason) < REASON_MIN:
        reason = "citizen record opened from the console"
    with db.transaction() as s:
        history = open_citizen(
            s, current_staff(), now(), citizen_id, reason, ip=request.remote_addr
        )
    return render_template("citizen/show.html", history=history)


@bp.route("/citizens/<int:citizen_id>/tc", methods=["POST"])
def reveal_tc_number(citizen_id: int) -> ResponseReturnValue:
    """The full TC number, after a reason (audited)."""
    with db.transaction() as s:
        tc_number = reveal_tc(
            s,
            current_staff(),
            now(),
            citizen_id,
            request.form.get("reason", ""),
            ip=request.remote_addr,
        )
    if wants_json():
        return jsonify(tc_number=tc_number)
    return render_template("citizen/tc.html", citizen_id=citizen_id, tc_number=tc_number)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_GRANT_SALT)


@bp.route("/calls/<call_id>/recording", methods=["POST"])
def recording_grant(call_id: str) -> ResponseReturnValue:
    """Release a recording for playback after a reason (audited); answers with a link that
    works for this user for :data:`GRANT_TTL`."""
    staff = current_staff()
    with db.transaction() as s:
        path = release_recording(
            s, staff, now(), call_id, request.form.get("reason", ""), ip=request.remote_addr
        )
    grant = _serializer().dumps({"u": staff.id, "c": call_id, "p": path})
    url = url_for("citizen.recording", call_id=call_id, grant=grant)
    if wants_json():
        return jsonify(url=url)
    return render_template("citizen/recording.html", call_id=call_id, url=url)


@bp.route("/calls/<call_id>/recording")
def recording(call_id: str) -> ResponseReturnValue:
    """The audio file, for a link released by :func:`recording_grant` (reads only)."""
    try:
        data = _serializer().loads(
            request.args.get("grant", ""), max_age=int(GRANT_TTL.total_seconds())
        )
    except (BadSignature, SignatureExpired):
        abort(403)
    if (
        not isinstance(data, dict)
        or data.get("u") != current_staff().id
        or data.get("c") != call_id
    ):
        abort(403)
    root = console().monitor_dir().resolve()
    path = (root / str(data.get("p", ""))).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)
