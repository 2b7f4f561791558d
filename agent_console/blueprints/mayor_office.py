"""The mayor's weekly call list (R5.4, issue 6 item 5) for the mayor's office (Özel Kalem)
and the supervisors: the week's list with each citizen to call, the form recording each
call's result (with an optional follow-up ticket through the intake path), the printable
PDF, the supervisor's hand draw and the completion report of a list (decision 0022).

Routes take the list and entry ids as query or form values (``?list=<id>``), not as path
parts: a list is a page of this one screen.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from agent_console import db
from agent_console.context import console, now
from agent_console.i18n import current_language
from agent_console.permissions import wants_json
from agent_console.security import current_staff
from models import MayorCallList, MayorCallResult
from services import mayor_calls
from services.errors import DomainError, InvalidField
from services.mayor_pdf import render_list_pdf

bp = Blueprint("mayor_office", __name__, url_prefix="/mayor")

RESULTS: dict[MayorCallResult, object] = {
    MayorCallResult.PENDING: _l("Aranmadı"),
    MayorCallResult.REACHED: _l("Ulaşıldı"),
    MayorCallResult.NOT_REACHED: _l("Ulaşılamadı"),
    MayorCallResult.WRONG_NUMBER: _l("Yanlış numara"),
}


def _chosen_list(raw: str | None) -> MayorCallList | None:
    """The list named by ``?list=<id>``, else the latest one (``None`` when there is none)."""
    s = db.session()
    if raw:
        if not raw.isdigit():
            abort(404)
        found = s.get(MayorCallList, int(raw))
        if found is None:
            abort(404)
        return found
    return mayor_calls.latest_list(s)


@bp.route("")
def index() -> ResponseReturnValue:
    """The list of a week (the latest by default) with the result forms."""
    staff = current_staff()
    mayor_calls.require_reader(staff)
    s = db.session()
    call_list = _chosen_list(request.args.get("list"))
    tz = ZoneInfo(console().settings.timezone)
    this_week = mayor_calls.week_start_of(now(), tz)
    return render_template(
        "mayor_office/index.html",
        call_list=call_list,
        rows=mayor_calls.entry_rows(s, call_list) if call_list is not None else [],
        lists=mayor_calls.recent_lists(s),
        results=RESULTS,
        recordable=[r for r in RESULTS if r in mayor_calls.RECORDABLE],
        drawn_this_week=mayor_calls.list_for_week(s, this_week) is not None,
        this_week=this_week,
        may_draw=staff.role in mayor_calls.DRAWERS,
        previous=mayor_calls.previous_list(s, call_list) if call_list is not None else None,
    )


@bp.route("/pdf")
def pdf() -> ResponseReturnValue:
    """The printable PDF of a list (the latest by default) in the screen's language."""
    mayor_calls.require_reader(current_staff())
    call_list = _chosen_list(request.args.get("list"))
    if call_list is None:
        abort(404)
    body = render_list_pdf(
        municipality=console().settings.municipality_name,
        week_start=call_list.week_start,
        seed=call_list.seed,
        drawn_at=call_list.drawn_at,
        pool_size=call_list.pool_size,
        rows=mayor_calls.entry_rows(db.session(), call_list),
        language=current_language(),
    )
    name = f"baskanlik-arama-listesi-{call_list.week_start.isoformat()}.pdf"
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@bp.route("/report")
def report() -> ResponseReturnValue:
    """The completion report of a list (default: the one before the latest, i.e. the list
    whose week is over) next to the newest list."""
    mayor_calls.require_reader(current_staff())
    s = db.session()
    latest = mayor_calls.latest_list(s)
    raw = request.args.get("list")
    target = (
        _chosen_list(raw) if raw else (mayor_calls.previous_list(s, latest) if latest else None)
    )
    return render_template(
        "mayor_office/report.html",
        report=mayor_calls.completion_report(s, target.id) if target is not None else None,
        latest=latest,
        latest_rows=mayor_calls.entry_rows(s, latest) if latest is not None else [],
        results=RESULTS,
        lists=mayor_calls.recent_lists(s),
    )


def _back(list_id: int | None) -> ResponseReturnValue:
    if list_id is None:
        return redirect(url_for("mayor_office.index"))
    return redirect(url_for("mayor_office.index", list=list_id))


def _called_at(raw: str | None) -> datetime | None:
    """A ``datetime-local`` value in the console's time zone, as an aware moment."""
    if not raw:
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidField(
            "Arama zamanı geçersiz.", "The call time is not valid.", field="called_at"
        ) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(console().settings.timezone))
    return local


@bp.route("/record", methods=["POST"])
def record() -> ResponseReturnValue:
    """Record one call's result (and open the follow-up ticket when its text is given)."""
    staff = current_staff()
    raw_entry = request.form.get("entry_id", "").strip()
    raw_list = request.form.get("list_id", "").strip()
    list_id = int(raw_list) if raw_list.isdigit() else None
    try:
        if not raw_entry.isdigit():
            raise InvalidField("Liste kaydı seçilmedi.", "No list entry chosen.", field="entry")
        moment = now()
        with db.transaction() as s:
            entry = mayor_calls.record_call_result(
                s,
                actor=staff,
                now=moment,
                entry_id=int(raw_entry),
                result=request.form.get("result", ""),
                notes=request.form.get("notes"),
                follow_up_text=request.form.get("follow_up"),
                called_at=_called_at(request.form.get("called_at", "").strip() or None),
            )
            follow_code = entry.follow_up_ticket.reference_code if entry.follow_up_ticket else None
            list_id = entry.list_id
            entry_position = entry.position
    except DomainError as exc:
        if wants_json():
            raise
        flash(exc.message(current_language()), "error")
        return _back(list_id)
    flash(_("%(n)s. kaydın sonucu kaydedildi.", n=entry_position), "success")
    if follow_code and request.form.get("follow_up", "").strip():
        flash(_("Takip başvurusu açıldı: %(code)s", code=follow_code), "success")
    return _back(list_id)


@bp.route("/draw", methods=["POST"])
def draw() -> ResponseReturnValue:
    """The supervisor draws (and publishes) this week's list by hand; the week's existing
    list is kept when there is one (R5.4)."""
    staff = current_staff()
    settings = console().settings
    tz = ZoneInfo(settings.timezone)
    moment = now()
    try:
        with db.transaction() as s:
            existed = mayor_calls.list_for_week(s, mayor_calls.week_start_of(moment, tz))
            call_list = mayor_calls.draw_weekly_list(
                s,
                now=moment,
                actor=staff,
                size=settings.mayor_list_size,
                exclude_weeks=settings.mayor_list_exclude_weeks,
                tz=tz,
            )
            mayor_calls.publish_list(s, now=moment, call_list=call_list)
            list_id = call_list.id
    except DomainError as exc:
        if wants_json():
            raise
        flash(exc.message(current_language()), "error")
        return _back(None)
    if existed is not None:
        flash(_("Bu haftanın listesi zaten çekilmiş."), "info")
    else:
        flash(_("Bu haftanın listesi çekildi ve Özel Kalem'e gönderildi."), "success")
    return _back(list_id)
