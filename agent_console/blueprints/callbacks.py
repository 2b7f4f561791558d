"""The callback list ("Geri arama listesi", R5.3): abandoned calls, out-of-hours and IVR
requests and agents' promises, with what the dialer did about each; "Şimdi ara" makes a
callback due at once and "Kapat/İptal" closes it with a note (services.callback_campaign)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from agent_console import db
from agent_console.context import now
from agent_console.permissions import wants_json
from agent_console.security import current_staff
from models import AttemptStatus, CallbackReason, CallbackStatus
from services.callback_campaign import OPEN_TASK_STATUSES, call_now, callback_list, close_callback
from services.dead_letters import mask_phone

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")

LIMIT = 300  # rows on the page

# ?durum=<key>: which tasks the page lists (the first is the default).
FILTERS: dict[str, tuple[object, tuple[CallbackStatus, ...] | None]] = {
    "acik": (_l("Bekleyen ve aranan"), OPEN_TASK_STATUSES),
    "tamam": (_l("Ulaşıldı"), (CallbackStatus.DONE,)),
    "basarisiz": (_l("Ulaşılamadı"), (CallbackStatus.FAILED,)),
    "iptal": (_l("Kapatıldı"), (CallbackStatus.CANCELLED,)),
    "hepsi": (_l("Tümü"), None),
}

STATUS = {
    CallbackStatus.PENDING: _l("bekliyor"),
    CallbackStatus.IN_PROGRESS: _l("aranıyor"),
    CallbackStatus.DONE: _l("ulaşıldı"),
    CallbackStatus.FAILED: _l("ulaşılamadı"),
    CallbackStatus.CANCELLED: _l("kapatıldı"),
}

REASON = {
    CallbackReason.ABANDONED: _l("beklerken kapattı"),
    CallbackReason.OUT_OF_HOURS: _l("mesai dışı arama"),
    CallbackReason.IVR_REQUEST: _l("geri arama istedi"),
    CallbackReason.PROMISED: _l("temsilci söz verdi"),
}

OUTCOME = {
    AttemptStatus.CLAIMED: _l("aranıyor"),
    AttemptStatus.ORIGINATED: _l("aranıyor"),
    AttemptStatus.ANSWERED: _l("yanıtladı"),
    AttemptStatus.NO_ANSWER: _l("yanıt vermedi"),
    AttemptStatus.BUSY: _l("meşgul"),
    AttemptStatus.FAILED: _l("bağlanamadı"),
}


@bp.route("")
def index() -> ResponseReturnValue:
    """The callback list: open callbacks first by due time (phone numbers masked)."""
    key = request.args.get("durum", "acik")
    if key not in FILTERS:
        key = "acik"
    statuses = FILTERS[key][1]
    rows = callback_list(db.session(), statuses=statuses, limit=LIMIT)
    return render_template(
        "callbacks/index.html",
        rows=rows,
        current=key,
        filters=[(k, str(text)) for k, (text, _s) in FILTERS.items()],
        status_names={s.value: str(t) for s, t in STATUS.items()},
        reason_names={r.value: str(t) for r, t in REASON.items()},
        outcome_names={o.value: str(t) for o, t in OUTCOME.items()},
        mask_phone=mask_phone,
        open_statuses=[s.value for s in OPEN_TASK_STATUSES],
        limit=LIMIT,
    )


def _task_id() -> int:
    value = request.form.get("task_id", "")
    if not value.isdigit():
        abort(400)
    return int(value)


def _done(message: str) -> ResponseReturnValue:
    if wants_json():
        return jsonify(ok=True, message=message)
    flash(message, "success")
    return redirect(url_for("callbacks.index", durum=request.form.get("durum") or "acik"))


@bp.route("/call-now", methods=["POST"])
def call_now_view() -> ResponseReturnValue:
    """ "Şimdi ara": the callback is due now (a failed one is reopened)."""
    task_id = _task_id()
    with db.transaction() as s:
        call_now(s, now=now(), actor=current_staff(), task_id=task_id)
    return _done(_("Geri arama #%(id)s hemen aranacak.", id=task_id))


@bp.route("/close", methods=["POST"])
def close() -> ResponseReturnValue:
    """ "Kapat/İptal": close a callback with a note (required)."""
    task_id = _task_id()
    with db.transaction() as s:
        close_callback(
            s,
            now=now(),
            actor=current_staff(),
            task_id=task_id,
            note=request.form.get("note", ""),
        )
    return _done(_("Geri arama #%(id)s kapatıldı.", id=task_id))
