"""A department's inbox (R3.2, R3.4): its own tickets only; accept one, update its status,
add notes and photos, resolve it with a message to the citizen, ask for more time with a
reason (services.deadline_extension; decision 0019)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from agent_console import db
from agent_console.context import console, now
from agent_console.forms import back_on_error, choice, form_int, uploads
from agent_console.i18n import when
from agent_console.labels import label
from agent_console.security import current_staff
from models import Attachment, TicketStatus
from services.citizen_history import ticket_lines
from services.deadline_extension import (
    MAX_DAYS,
    SELF_SERVICE_DAYS,
    extend_deadline,
    self_service_days_left,
)
from services.department_inbox import (
    ACCEPTABLE,
    InboxView,
    accept_ticket,
    inbox,
    inbox_department,
    status_choices,
)
from services.errors import InvalidField, MissingField
from services.permissions import COORDINATION, OWN_DEPARTMENT
from services.ticket_photos import MAX_PHOTOS, add_photos, attachment_store
from services.ticket_screens import (
    ticket_contacts,
    ticket_photos,
    ticket_timeline,
    ticket_units,
    visible_ticket,
)
from services.ticket_workflow import add_note, change_status, resolve_ticket

bp = Blueprint("department", __name__, url_prefix="/department")

VIEWS: dict[InboxView, object] = {
    InboxView.OPEN: _l("Açık başvurular"),
    InboxView.DONE: _l("Çözülen ve kapatılanlar"),
    InboxView.ALL: _l("Tümü"),
}


@bp.route("")
def index() -> ResponseReturnValue:
    staff = current_staff()
    s = db.session()
    view = choice(InboxView, request.args.get("view"), InboxView.OPEN)
    department = inbox_department(s, staff, request.args.get("department") or None)
    tickets = inbox(s, staff, department, view=view) if department is not None else []
    return render_template(
        "department/index.html",
        department=department,
        departments=[] if staff.role in OWN_DEPARTMENT else ticket_units(s),
        view=view,
        views=VIEWS,
        lines=ticket_lines(s, now(), tickets),
    )


@bp.route("/<int:ticket_id>")
def ticket(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    s = db.session()
    found = visible_ticket(s, staff, ticket_id)
    return render_template(
        "department/ticket.html",
        ticket=found,
        line=ticket_lines(s, now(), [found])[0],
        contacts=ticket_contacts(s, found),
        photos=ticket_photos(s, found),
        events=ticket_timeline(s, found),
        can_accept=found.status in ACCEPTABLE,
        statuses=status_choices(found),
        is_open=found.status
        not in (TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.MERGED),
        days_left=self_service_days_left(s, found),
        self_service_days=SELF_SERVICE_DAYS,
        unlimited=staff.role in COORDINATION,
        max_photos=MAX_PHOTOS,
        max_days=MAX_DAYS,
    )


def _back(ticket_id: int) -> ResponseReturnValue:
    return redirect(url_for("department.ticket", ticket_id=ticket_id))


@bp.route("/<int:ticket_id>/accept", methods=["POST"])
@back_on_error("department.ticket")
def accept(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        accept_ticket(s, staff, now(), visible_ticket(s, staff, ticket_id))
    flash(_("Başvuruyu üstlendiniz; durum: işlemde."), "success")
    return _back(ticket_id)


@bp.route("/<int:ticket_id>/status", methods=["POST"])
@back_on_error("department.ticket")
def status(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    raw = request.form.get("status", "")
    with db.transaction() as s:
        found = visible_ticket(s, staff, ticket_id)
        if raw not in {c.value for c in status_choices(found)}:
            raise InvalidField(
                "Bu durum seçilemez.", "This status cannot be chosen.", field="status"
            )
        target = TicketStatus(raw)
        change_status(s, staff, now(), found, target, request.form.get("note", "").strip() or None)
    flash(_("Durum güncellendi: %(status)s", status=label("ticket_status", target)), "success")
    return _back(ticket_id)


@bp.route("/<int:ticket_id>/note", methods=["POST"])
@back_on_error("department.ticket")
def note(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        add_note(s, staff, now(), visible_ticket(s, staff, ticket_id), request.form.get("note", ""))
    flash(_("Not eklendi."), "success")
    return _back(ticket_id)


@bp.route("/<int:ticket_id>/photos", methods=["POST"])
@back_on_error("department.ticket")
def photos(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    files = uploads("photos")
    if not files:
        raise MissingField("Bir fotoğraf seçin.", "Choose a photo.", field="photos")
    with db.transaction() as s:
        added = add_photos(
            s,
            staff,
            now(),
            visible_ticket(s, staff, ticket_id),
            files,
            store_dir=attachment_store(console().settings.instance_dir),
        )
    flash(_("%(n)s fotoğraf eklendi.", n=len(added)), "success")
    return _back(ticket_id)


@bp.route("/<int:ticket_id>/resolve", methods=["POST"])
@back_on_error("department.ticket")
def resolve(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        notice = resolve_ticket(
            s, staff, now(), visible_ticket(s, staff, ticket_id), request.form.get("message", "")
        )
    if notice is not None:
        flash(_("Başvuru çözüldü; vatandaşa mesaj gönderilecek."), "success")
    else:
        flash(_("Başvuru çözüldü; vatandaşa ulaşılacak bir iletişim bilgisi yok."), "warning")
    return _back(ticket_id)


@bp.route("/<int:ticket_id>/extend", methods=["POST"])
@back_on_error("department.ticket")
def extend(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    days = form_int("days", "Gün sayısı", "The number of days")
    with db.transaction() as s:
        extension = extend_deadline(
            s,
            staff,
            now(),
            visible_ticket(s, staff, ticket_id),
            days=days,
            reason=request.form.get("reason", ""),
        )
    flash(_("Ek süre kaydedildi; yeni son tarih: %(due)s", due=when(extension.due_at)), "success")
    return _back(ticket_id)


@bp.route("/<int:ticket_id>/photos/<filename>")
def photo(ticket_id: int, filename: str) -> ResponseReturnValue:
    """One photo of a ticket the user may see (by its content-addressed file name)."""
    s = db.session()
    found = visible_ticket(s, current_staff(), ticket_id)
    digest = filename.split(".", 1)[0]
    attachment = s.scalar(
        select(Attachment).where(Attachment.ticket_id == found.id, Attachment.sha256 == digest)
    )
    if attachment is None or attachment.path.rsplit("/", 1)[-1] != filename:
        abort(404)
    path = attachment_store(console().settings.instance_dir) / attachment.path
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype=attachment.media_type, download_name=filename)
