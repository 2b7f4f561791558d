"""The coordination desk (R3.1, R2.4, R2.6): every incoming ticket; forward it to a unit
(its primary and backup liaison are notified), re-route it by type, refer it to an external
institution, merge duplicates after a side-by-side preview, split it, give it more time.

What the ticket screens read is :mod:`services.ticket_screens`; their form helpers are
:mod:`agent_console.forms`."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console import db
from agent_console.context import now
from agent_console.forms import back_on_error, choice, form_int
from agent_console.i18n import current_language, when
from agent_console.security import current_staff
from models import (
    Channel,
    Department,
    ExternalInstitution,
    StaffUser,
    Ticket,
    TicketType,
)
from services.citizen_history import ticket_lines
from services.coordination import (
    DeskView,
    duplicate_candidates,
    duplicate_counts,
    incoming,
    merge_preview,
)
from services.deadline_extension import MAX_DAYS, extend_deadline
from services.errors import MissingField, UnknownEntity
from services.permissions import require_can_view, require_coordination
from services.ticket_screens import (
    active_ticket_types,
    ticket_contacts,
    ticket_photos,
    ticket_timeline,
    ticket_units,
    visible_ticket,
)
from services.ticket_split import split_ticket
from services.ticket_workflow import (
    find_by_reference,
    forward_ticket,
    merge_tickets,
    reclassify_ticket,
    refer_externally,
)

bp = Blueprint("coordination", __name__, url_prefix="/coordination")

VIEWS: dict[DeskView, object] = {
    DeskView.WAITING: _l("Yönlendirme bekleyenler"),
    DeskView.OPEN: _l("Tüm açık başvurular"),
    DeskView.ALL: _l("Tümü"),
}
WARNINGS: dict[str, object] = {
    "other_citizen": _l("Başvurular farklı kişilere ait."),
    "other_type": _l("Başvuruların türleri farklı."),
    "other_department": _l("Başvurular farklı birimlerde."),
}


def _by_code(session: Session, model: Any, code: str, what_tr: str, what_en: str) -> Any:
    if not code:
        raise MissingField(f"{what_tr} seçin.", f"Choose the {what_en}.", field=what_en)
    found = session.scalar(select(model).where(model.code == code))
    if found is None:
        raise UnknownEntity(f"{what_tr} bulunamadı.", f"No such {what_en}.", code=code)
    return found


# --- the desk ------------------------------------------------------------------------------


@bp.route("")
def index() -> ResponseReturnValue:
    staff = current_staff()
    s = db.session()
    moment = now()
    view = choice(DeskView, request.args.get("view"), DeskView.WAITING)
    raw_channel = request.args.get("channel", "")
    channel = Channel(raw_channel) if raw_channel in set(Channel) else None
    code = request.args.get("department", "")
    department = s.scalar(select(Department).where(Department.code == code)) if code else None
    tickets = incoming(
        s,
        staff,
        moment,
        view=view,
        department_id=department.id if department else None,
        channel=channel,
    )
    return render_template(
        "coordination/index.html",
        view=view,
        views=VIEWS,
        channel=channel,
        channels=list(Channel),
        department=department,
        departments=ticket_units(s),
        lines=ticket_lines(s, moment, tickets),
        duplicates=duplicate_counts(s, tickets),
    )


@bp.route("/<int:ticket_id>")
def ticket(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    require_coordination(staff)
    s = db.session()
    moment = now()
    found = visible_ticket(s, staff, ticket_id)
    candidates = duplicate_candidates(s, found)
    return render_template(
        "coordination/ticket.html",
        ticket=found,
        line=ticket_lines(s, moment, [found])[0],
        contacts=ticket_contacts(s, found),
        events=ticket_timeline(s, found),
        photos=ticket_photos(s, found),
        candidates=ticket_lines(s, moment, candidates),
        departments=ticket_units(s),
        types=active_ticket_types(s),
        institutions=list(
            s.scalars(select(ExternalInstitution).order_by(ExternalInstitution.name_tr))
        ),
        split_token=uuid.uuid4().hex,
        max_days=MAX_DAYS,
    )


@bp.route("/<int:ticket_id>/forward", methods=["POST"])
@back_on_error("coordination.ticket")
def forward(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        found = visible_ticket(s, staff, ticket_id)
        unit = _by_code(s, Department, request.form.get("department", ""), "Birim", "unit")
        queued = forward_ticket(
            s, staff, now(), found, unit, request.form.get("note", "").strip() or None
        )
        name = unit.name_en if current_language() == "en" else unit.name_tr
    flash(
        _(
            "%(unit)s birimine iletildi; asil ve yedek görevliye %(n)s bildirim gönderildi.",
            unit=name,
            n=len(queued),
        ),
        "success",
    )
    return redirect(url_for("coordination.ticket", ticket_id=ticket_id))


@bp.route("/<int:ticket_id>/reclassify", methods=["POST"])
@back_on_error("coordination.ticket")
def reclassify(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        found = visible_ticket(s, staff, ticket_id)
        kind = _by_code(s, TicketType, request.form.get("ticket_type", ""), "Tür", "type")
        reclassify_ticket(s, staff, now(), found, kind)
        name = kind.name_en if current_language() == "en" else kind.name_tr
    flash(_("Türü değiştirildi ve yeniden yönlendirildi: %(type)s", type=name), "success")
    return redirect(url_for("coordination.ticket", ticket_id=ticket_id))


@bp.route("/<int:ticket_id>/refer", methods=["POST"])
@back_on_error("coordination.ticket")
def refer(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        found = visible_ticket(s, staff, ticket_id)
        institution = _by_code(
            s, ExternalInstitution, request.form.get("institution", ""), "Kurum", "institution"
        )
        refer_externally(s, staff, now(), found, institution, request.form.get("note") or None)
        name = institution.name_en if current_language() == "en" else institution.name_tr
    flash(_("Kuruma yönlendirildi: %(name)s; vatandaşa bilgi verildi.", name=name), "success")
    return redirect(url_for("coordination.ticket", ticket_id=ticket_id))


@bp.route("/<int:ticket_id>/split", methods=["POST"])
@back_on_error("coordination.ticket")
def split(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        found = visible_ticket(s, staff, ticket_id)
        result = split_ticket(
            s,
            staff,
            now(),
            found,
            ticket_type_code=request.form.get("ticket_type", ""),
            description=request.form.get("description", ""),
            form_token=request.form.get("form_token", ""),
        )
        code, part_id, created = (
            result.ticket.reference_code,
            result.ticket.id,
            result.intake.created,
        )
    if created:
        flash(_("Başvuru bölündü; yeni başvuru: %(code)s", code=code), "success")
    else:
        flash(_("Ayrılan bölüm kişinin açık başvurusuna eklendi: %(code)s", code=code), "info")
    return redirect(url_for("coordination.ticket", ticket_id=part_id))


@bp.route("/<int:ticket_id>/extend", methods=["POST"])
@back_on_error("coordination.ticket")
def extend(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    days = form_int("days", "Gün sayısı", "The number of days")
    with db.transaction() as s:
        found = visible_ticket(s, staff, ticket_id)
        extension = extend_deadline(
            s, staff, now(), found, days=days, reason=request.form.get("reason", "")
        )
    flash(_("Son tarih uzatıldı: %(due)s", due=when(extension.due_at)), "success")
    return redirect(url_for("coordination.ticket", ticket_id=ticket_id))


def _merge_target(session: Session, staff: StaffUser) -> Ticket | None:
    raw_id = request.values.get("into_id", "")
    if raw_id.isdigit():
        return visible_ticket(session, staff, int(raw_id))
    code = request.values.get("into", "").strip()
    if code:
        found = find_by_reference(session, code)
        require_can_view(staff, found)
        return found
    return None


@bp.route("/<int:ticket_id>/merge")
def merge_preview_page(ticket_id: int) -> ResponseReturnValue:
    """Both tickets side by side before merging ``ticket_id`` into the target."""
    staff = current_staff()
    s = db.session()
    duplicate = visible_ticket(s, staff, ticket_id)
    target = _merge_target(s, staff)
    preview = merge_preview(s, staff, now(), duplicate, target) if target is not None else None
    return render_template(
        "coordination/merge.html",
        duplicate=duplicate,
        preview=preview,
        warnings=WARNINGS,
    )


@bp.route("/<int:ticket_id>/merge", methods=["POST"])
@back_on_error("coordination.ticket")
def merge(ticket_id: int) -> ResponseReturnValue:
    staff = current_staff()
    with db.transaction() as s:
        duplicate = visible_ticket(s, staff, ticket_id)
        target = _merge_target(s, staff)
        if target is None:
            raise MissingField(
                "Birleştirilecek başvuruyu seçin.", "Choose the ticket to merge into.", field="into"
            )
        merge_tickets(s, staff, now(), duplicate, target)
        codes = {"duplicate": duplicate.reference_code, "target": target.reference_code}
        target_id = target.id
    flash(_("%(duplicate)s, %(target)s ile birleştirildi.", **codes), "success")
    return redirect(url_for("coordination.ticket", ticket_id=target_id))
