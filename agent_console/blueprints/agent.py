"""The call-taker's screen (R4.3, R9.2): queue sign-in, ready / pause with a reason,
wrap-up, the live screen pop (SSE), the ticket form of the call and transfers."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console import db
from agent_console.ami import (
    SIGNED_OUT,
    WRAP_UP,
    AgentState,
    interface_of,
    require_interface,
    summarise,
    transfer_live_call,
)
from agent_console.context import console, now
from agent_console.forms import form_text, form_token_ok
from agent_console.i18n import current_language
from agent_console.labels import AGENT_STATE
from agent_console.permissions import wants_json
from agent_console.security import IDLE_TIMEOUT, current_staff, session_deadline
from models import CallRecord, Channel, Neighbourhood, StaffUser, Ticket, TicketType
from services.call_desk import call_for, current_call, record_call_ticket
from services.citizen_history import CitizenHistory, display_phone
from services.errors import DomainError, InvalidField
from services.intake_request import IntakeRequest
from services.personal_data import open_citizen
from services.switchboard import unit_directory
from services.ticket_screens import active_ticket_types, neighbourhoods
from telephony.render import QUEUE_EN, QUEUE_TR, SWITCHBOARD_NUMBER

bp = Blueprint("agent", __name__, url_prefix="/agent")

STREAM_SECONDS = 300.0  # an SSE response ends after this; the browser reconnects

PAUSE_REASONS: dict[str, object] = {
    "mola": _l("Mola"),
    "yemek": _l("Yemek arası"),
    "egitim": _l("Eğitim"),
    "toplanti": _l("Toplantı"),
    "teknik": _l("Teknik sorun"),
}


# --- queue state ---------------------------------------------------------------------------


def queues_of(staff: StaffUser) -> list[str]:
    """The queues an agent serves: Turkish always, English when they speak it."""
    return [QUEUE_TR, QUEUE_EN] if "en" in (staff.languages or []) else [QUEUE_TR]


def _state(staff: StaffUser) -> tuple[AgentState, str | None]:
    interface = interface_of(staff)
    if interface is None:
        return AgentState("unknown", "", ()), _("Size tanımlı bir dahili numara yok.")
    try:
        with console().pbx() as pbx:
            return summarise(pbx.queue_status(interface)), None
    except DomainError as exc:
        return AgentState("unknown", "", ()), exc.message(current_language())


def _after_action(message: str) -> ResponseReturnValue:
    if wants_json():
        state, error = _state(current_staff())
        return jsonify(ok=True, message=message, state=state.code, reason=state.reason, error=error)
    flash(message, "info")
    return redirect(url_for("agent.screen"))


# --- the screen ----------------------------------------------------------------------------


@bp.route("")
def screen() -> ResponseReturnValue:
    staff = current_staff()
    state, pbx_error = _state(staff)
    try:
        since = console().hub().last_id()
    except Exception:  # Redis is a convenience: the screen works without it
        since = "0-0"
    moment = now()
    record = current_call(db.session(), staff, moment)
    panel = _call_panel(record) if record is not None else None
    return render_template(
        "agent/screen.html",
        staff=staff,
        state=state,
        pbx_error=pbx_error,
        pause_reasons=PAUSE_REASONS,
        since=since,
        panel=panel,
        state_names={code: str(text) for code, text in AGENT_STATE.items()},
    )


@bp.route("/state")
def state() -> ResponseReturnValue:
    """The agent's queue state as JSON (polled by the screen; passive: no activity)."""
    current, error = _state(current_staff())
    return jsonify(state=current.code, reason=current.reason, queues=current.queues, error=error)


@bp.route("/events")
def events() -> ResponseReturnValue:
    """Server-Sent Events: the screen pops of this agent (see agent_console/screenpop.py)."""
    staff = current_staff()
    hub = console().hub()
    after = request.headers.get("Last-Event-ID") or request.args.get("since") or ""
    if not after or after == "0-0":
        after = hub.last_id()
    moment = now()
    deadline = session_deadline(moment)
    remaining = (deadline - moment).total_seconds() if deadline else IDLE_TIMEOUT.total_seconds()
    until = time.monotonic() + max(1.0, min(STREAM_SECONDS, remaining))
    agent_id = staff.id
    db.close()  # hold no database connection while streaming

    from agent_console.screenpop import sse_events

    response = Response(sse_events(hub, agent_id, after, until=until), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"
    return response


# --- the call panel --------------------------------------------------------------------------


@dataclass(frozen=True)
class CallPanel:
    record: CallRecord
    caller_display: str | None
    history: CitizenHistory | None
    greeting: str
    form_token: str
    ticket_types: list[TicketType]
    neighbourhoods: list[Neighbourhood]
    targets: list[tuple[str, str]]  # (extension, label)
    reference_code: str | None


def transfer_targets(session: Session) -> list[tuple[str, str]]:
    """Department extensions and the switchboard (R1.11)."""
    language = current_language()
    targets = [(SWITCHBOARD_NUMBER, _("Santral (operatör)"))]
    for entry in unit_directory(session):
        targets.append((entry.extension, f"{entry.extension} — {entry.name(language)}"))
    return targets


def greeting(staff: StaffUser) -> str:
    """The call-centre greeting of R9.2 with the agent's own first name."""
    return str(_("Açık Kapı, ben %(name)s, size nasıl yardımcı olabilirim?", name=staff.first_name))


def _call_panel(record: CallRecord) -> CallPanel:
    staff = current_staff()
    history = None
    if record.citizen_id is not None:
        with db.transaction() as tx:
            history = open_citizen(
                tx,
                staff,
                now(),
                record.citizen_id,
                f"screen pop: call {record.call_id}",
                ip=request.remote_addr,
                call_id=record.call_id,
            )
    s = db.session()
    code = None
    if record.ticket_id is not None:
        code = s.scalar(select(Ticket.reference_code).where(Ticket.id == record.ticket_id))
    return CallPanel(
        record=record,
        caller_display=display_phone(record.caller_e164) if record.caller_e164 else None,
        history=history,
        greeting=greeting(staff),
        form_token=uuid.uuid4().hex,
        ticket_types=active_ticket_types(s),
        neighbourhoods=neighbourhoods(s),
        targets=transfer_targets(s),
        reference_code=code,
    )


@bp.route("/calls/<call_id>")
def call(call_id: str) -> ResponseReturnValue:
    """The screen pop's content for one call: greeting, citizen card and history, the
    ticket form and transfer (HTML fragment for the screen's script, or a full page)."""
    record = call_for(db.session(), current_staff(), call_id)
    panel = _call_panel(record)
    if request.headers.get("X-Requested-With") == "fetch":
        return render_template("agent/_call.html", panel=panel)
    return render_template("agent/call_page.html", panel=panel)


# --- queue actions ---------------------------------------------------------------------------


@bp.route("/queue/login", methods=["POST"])
def queue_login() -> ResponseReturnValue:
    staff = current_staff()
    interface = require_interface(staff)
    with console().pbx() as pbx:
        for queue in queues_of(staff):
            pbx.queue_add(queue, interface, staff.full_name)
        pbx.queue_pause(interface, False)
    return _after_action(_("Kuyruklara giriş yaptınız; çağrı alabilirsiniz."))


@bp.route("/queue/logout", methods=["POST"])
def queue_logout() -> ResponseReturnValue:
    staff = current_staff()
    interface = require_interface(staff)
    with console().pbx() as pbx:
        removed = [pbx.queue_remove(queue, interface) for queue in queues_of(staff)]
        if not all(removed):  # static members cannot leave: they are paused instead
            pbx.queue_pause(interface, True, SIGNED_OUT)
    return _after_action(_("Kuyruklardan çıktınız."))


@bp.route("/pause", methods=["POST"])
def pause() -> ResponseReturnValue:
    reason = request.form.get("reason", "")
    if reason not in PAUSE_REASONS:
        raise InvalidField(
            "Bir mola nedeni seçin.", "Choose a reason for the pause.", field="reason"
        )
    interface = require_interface(current_staff())
    with console().pbx() as pbx:
        pbx.queue_pause(interface, True, reason)
    return _after_action(_("Moladasınız: %(reason)s", reason=PAUSE_REASONS[reason]))


@bp.route("/ready", methods=["POST"])
def ready() -> ResponseReturnValue:
    interface = require_interface(current_staff())
    with console().pbx() as pbx:
        pbx.queue_pause(interface, False)
    return _after_action(_("Hazırsınız; sıradaki çağrı size gelecek."))


@bp.route("/wrapup", methods=["POST"])
def wrapup() -> ResponseReturnValue:
    """After a call: no new call until the agent says ready (notes, the ticket form)."""
    interface = require_interface(current_staff())
    with console().pbx() as pbx:
        pbx.queue_pause(interface, True, WRAP_UP)
    return _after_action(_("Son işlem: işiniz bitince “Hazırım” deyin."))


# --- the call's ticket and transfer ----------------------------------------------------------


@bp.route("/calls/<call_id>/ticket", methods=["POST"])
def call_ticket(call_id: str) -> ResponseReturnValue:
    """Open the ticket of the call through the one intake path (services.call_desk)."""
    staff = current_staff()
    token = request.form.get("form_token", "")
    if not form_token_ok(token):
        abort(400)
    citizen_raw = request.form.get("citizen_id", "")
    first_contact = request.form.get("resolved_at_first_contact") == "1"
    with db.transaction() as s:
        record = call_for(s, staff, call_id)
        result = record_call_ticket(
            s,
            staff,
            now(),
            record,
            IntakeRequest(
                channel=Channel.PHONE,  # switchboard calls: services.call_desk decides
                ticket_type_code=form_text("ticket_type"),
                description=request.form.get("description", ""),
                citizen_id=int(citizen_raw) if citizen_raw.isdigit() else None,
                tc_number=form_text("tc_number"),
                first_name=form_text("first_name"),
                last_name=form_text("last_name"),
                phone=form_text("phone"),
                email=form_text("email"),
                neighbourhood=form_text("neighbourhood"),
                address_text=form_text("address"),
                external_ref=f"console:{token}",
                resolved_at_first_contact=first_contact,
                resolution=form_text("resolution") if first_contact else None,
            ),
        )
        ticket = result.ticket
        code = ticket.reference_code
        ticket_id = ticket.id
        created = result.intake.created
    if created:
        flash(_("Başvuru kaydedildi: %(code)s", code=code), "success")
    else:
        flash(_("Açık başvuruya eklendi: %(code)s", code=code), "info")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@bp.route("/calls/<call_id>/transfer", methods=["POST"])
def transfer(call_id: str) -> ResponseReturnValue:
    """Blind-transfer the live call to a department extension or the switchboard (R1.11)."""
    staff = current_staff()
    target = request.form.get("target", "")
    s = db.session()
    record = call_for(s, staff, call_id)
    allowed = dict(transfer_targets(s))
    if target not in allowed:
        raise InvalidField("Aktarım hedefi geçersiz.", "Unknown transfer target.", field="target")
    transfer_live_call(console().pbx, staff, record, target)
    return _after_action(_("Görüşme aktarıldı: %(target)s", target=allowed[target]))
