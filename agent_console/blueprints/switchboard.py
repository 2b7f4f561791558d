"""The switchboard operator's screen (R1.11, R4.2): the live calls, and one-click transfer
of the call on the operator's line to the call centre or to any unit in the directory,
with a note that travels with the call (services.call_notes; decision 0018)."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from agent_console import db
from agent_console.ami import call_id_of, interface_of, transfer_live_call
from agent_console.context import console, now
from agent_console.i18n import current_language
from agent_console.permissions import wants_json
from agent_console.security import current_staff
from models import CallRecord, StaffUser
from services.call_notes import (
    MAX_NOTE,
    CallNoteLine,
    add_call_note,
    clean_note,
    notes_for_call,
)
from services.errors import DomainError, MissingField, UnknownEntity
from services.switchboard import CallStage, LiveCall, directory, directory_entry, live_calls
from telephony.render import TRANSFER_TARGET

bp = Blueprint("switchboard", __name__, url_prefix="/switchboard")

STAGES: dict[CallStage, object] = {
    CallStage.SWITCHBOARD: _l("santralde"),
    CallStage.IVR: _l("sesli menüde"),
    CallStage.QUEUE: _l("çağrı merkezi kuyruğunda"),
    CallStage.AGENT: _l("temsilciyle görüşüyor"),
}


def calls_on_line(staff: StaffUser) -> tuple[set[str] | None, str | None]:
    """The call ids on ``staff``'s phone, as the PBX reports them now; ``None`` and the
    reason when that cannot be known (no extension, PBX down)."""
    interface = interface_of(staff)
    if interface is None:
        return None, _("Size tanımlı bir dahili numara yok.")
    try:
        with console().pbx() as pbx:
            channels = pbx.channels()
    except DomainError as exc:
        return None, exc.message(current_language())
    prefix = interface + "-"
    return {
        call_id
        for channel in channels
        if channel.get("Channel", "").startswith(prefix) and (call_id := call_id_of(channel))
    }, None


def _selected(calls: list[LiveCall], mine: set[str] | None, wanted: str | None) -> LiveCall | None:
    by_id = {c.call_id: c for c in calls}
    if wanted and wanted in by_id:
        return by_id[wanted]
    for call in calls:  # the call on the operator's line, else the oldest at the switchboard
        if mine and call.call_id in mine:
            return call
    return next((c for c in calls if c.stage is CallStage.SWITCHBOARD), None)


@bp.route("")
def index() -> ResponseReturnValue:
    staff = current_staff()
    s = db.session()
    calls = live_calls(s, now())
    mine, pbx_error = calls_on_line(staff)
    selected = _selected(calls, mine, request.args.get("call"))
    return render_template(
        "switchboard/index.html",
        staff=staff,
        calls=calls,
        mine=mine or set(),
        pbx_error=pbx_error,
        selected=selected,
        notes=notes_for_call(s, selected.call_id) if selected else [],
        entries=directory(s, TRANSFER_TARGET),
        stages=STAGES,
        max_note=MAX_NOTE,
        language=current_language(),
    )


@bp.route("/calls")
def calls() -> ResponseReturnValue:
    """The live calls for the screen's script (passive: polling is not activity)."""
    staff = current_staff()
    found = live_calls(db.session(), now())
    mine, pbx_error = calls_on_line(staff)
    html = render_template(
        "switchboard/_calls.html",
        calls=found,
        mine=mine or set(),
        selected=None,
        stages=STAGES,
    )
    return jsonify(
        html=html,
        calls=[c.call_id for c in found],
        mine=sorted(mine or ()),
        pbx_error=pbx_error,
    )


def _done(message: str, call_id: str) -> ResponseReturnValue:
    if wants_json():
        return jsonify(ok=True, message=message)
    flash(message, "success")
    return redirect(url_for("switchboard.index", call=call_id))


def _record(call_id: str) -> CallRecord:
    record = db.session().scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if record is None:
        raise UnknownEntity("Görüşme bulunamadı.", "No such call.", call_id=call_id)
    return record


@bp.route("/calls/<call_id>/note", methods=["POST"])
def note(call_id: str) -> ResponseReturnValue:
    """Keep a note on the call without transferring it (it is shown to whoever gets it)."""
    with db.transaction() as s:
        add_call_note(s, current_staff(), now(), call_id, request.form.get("note", ""))
    return _done(_("Not görüşmeye eklendi."), call_id)


@bp.route("/calls/<call_id>/transfer", methods=["POST"])
def transfer(call_id: str) -> ResponseReturnValue:
    """Blind-transfer the call on the operator's line to ``target`` (the call centre or a
    unit of the directory); the note, if any, is stored on the call once the PBX has
    accepted the transfer, so a refused transfer leaves no note claiming otherwise."""
    staff = current_staff()
    text = clean_note(request.form.get("note", ""))
    target = request.form.get("target", "")
    if not target:
        raise MissingField("Aktarım hedefini seçin.", "Choose where to transfer.", field="target")
    entry = directory_entry(db.session(), TRANSFER_TARGET, target)
    transfer_live_call(console().pbx, staff, _record(call_id), entry.extension)
    if text:
        with db.transaction() as s:
            add_call_note(s, staff, now(), call_id, text, transfer_target=entry.extension)
    where = entry.extension + " — " + entry.name(current_language())
    return _done(_("Görüşme aktarıldı: %(target)s", target=where), call_id)


@bp.app_template_global("call_notes")
def call_notes_global(call_id: str) -> list[CallNoteLine]:
    """For any template showing a call (the agent's call panel): the notes that came with
    it (``{% include "switchboard/_call_notes.html" %}`` with ``call_id`` set)."""
    return notes_for_call(db.session(), call_id)
