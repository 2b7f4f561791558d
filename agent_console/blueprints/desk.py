"""The walk-in desk (Başvuru Merkezi, R1.1, R9.2): the desk greeting with the staff
member's name, a tablet-friendly application form, and photos straight from the tablet's
camera. Tickets are opened through the one intake path (channel desk)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Blueprint,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from agent_console import db
from agent_console.context import console, now
from agent_console.forms import form_text, form_token_ok, uploads
from agent_console.i18n import current_language
from agent_console.security import current_staff
from models import Channel, Language, StaffUser
from services.citizen_history import ticket_lines
from services.errors import DomainError, InvalidField
from services.intake import open_ticket
from services.intake_request import IntakeRequest
from services.ticket_photos import MAX_PHOTOS, add_photos, attachment_store, check_photos
from services.ticket_screens import (
    active_ticket_types,
    neighbourhoods,
    ticket_photos,
    visible_ticket,
)

bp = Blueprint("desk", __name__, url_prefix="/desk")

PLACE = "Başvuru Merkezi"  # place of application recorded on desk tickets (R2.1)
PHOTO_INPUTS = 3  # camera inputs on the form: one photo each, so each tap opens the camera
FIELDS = (
    "ticket_type",
    "description",
    "first_name",
    "last_name",
    "tc_number",
    "phone",
    "email",
    "neighbourhood",
    "address",
    "language",
)


def greeting(staff: StaffUser) -> str:
    """The desk greeting of R9.2 with the staff member's own first name."""
    return str(
        _(
            "Belediyemize (Açık Kapı'ya) hoş geldiniz, ben %(name)s, "
            "size nasıl yardımcı olabilirim?",
            name=staff.first_name,
        )
    )


def _form(values: dict[str, Any], error: str | None = None, status: int = 200) -> tuple[str, int]:
    s = db.session()
    staff = current_staff()
    return (
        render_template(
            "desk/index.html",
            staff=staff,
            greeting=greeting(staff),
            types=active_ticket_types(s),
            neighbourhoods=neighbourhoods(s),
            values=values,
            error=error,
            form_token=values.get("form_token") or uuid.uuid4().hex,
            photo_inputs=range(1, PHOTO_INPUTS + 1),
            max_photos=MAX_PHOTOS,
        ),
        status,
    )


@bp.route("")
def index() -> ResponseReturnValue:
    return _form({})


@bp.route("", methods=["POST"])
def submit() -> ResponseReturnValue:
    """Open the ticket (or add the contact to the citizen's open ticket of that type) with
    the photos; a refused form is shown again with what was typed."""
    staff = current_staff()
    token = request.form.get("form_token", "")
    values = {name: request.form.get(name, "") for name in FIELDS} | {"form_token": token}
    try:
        if not form_token_ok(token):
            raise InvalidField("Form belirteci geçersiz.", "Invalid form token.", field="form")
        photos = uploads("photos")
        check_photos(photos)  # before intake: a bad photo must not cost the typed form
        raw_language = request.form.get("language", "")
        with db.transaction() as s:
            result = open_ticket(
                s,
                staff,
                now(),
                IntakeRequest(
                    channel=Channel.DESK,
                    ticket_type_code=form_text("ticket_type"),
                    description=request.form.get("description", ""),
                    first_name=form_text("first_name"),
                    last_name=form_text("last_name"),
                    tc_number=form_text("tc_number"),
                    phone=form_text("phone"),
                    email=form_text("email"),
                    neighbourhood=form_text("neighbourhood"),
                    address_text=form_text("address"),
                    language=Language(raw_language) if raw_language in set(Language) else None,
                    place_of_application=PLACE,
                    external_ref=f"desk:{token}",
                ),
            )
            added = []
            if photos and not result.replayed:
                added = add_photos(
                    s,
                    staff,
                    now(),
                    result.ticket,
                    photos,
                    store_dir=attachment_store(console().settings.instance_dir),
                )
            ticket_id, code, created = (
                result.ticket.id,
                result.ticket.reference_code,
                result.created,
            )
    except DomainError as exc:
        get_flashed_messages()  # nothing stale above the form
        return _form(values, exc.message(current_language()), 400)
    if created:
        flash(_("Başvuru kaydedildi: %(code)s", code=code), "success")
    else:
        flash(_("Açık başvuruya eklendi: %(code)s", code=code), "info")
    if added:
        flash(_("%(n)s fotoğraf eklendi.", n=len(added)), "success")
    return redirect(url_for("desk.receipt", ticket_id=ticket_id))


@bp.route("/tickets/<int:ticket_id>")
def receipt(ticket_id: int) -> ResponseReturnValue:
    """What to tell the citizen: the reference code (also sent by SMS), the unit, the
    deadline."""
    s = db.session()
    found = visible_ticket(s, current_staff(), ticket_id)
    return render_template(
        "desk/receipt.html",
        ticket=found,
        line=ticket_lines(s, now(), [found])[0],
        photos=ticket_photos(s, found),
    )
