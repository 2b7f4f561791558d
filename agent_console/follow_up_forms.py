"""Forms and screen names of the survey follow-up page (R5.2, issue 6 item 3).

The close form (Flask-WTF: the CSRF token is checked by the form and by ``CSRFProtect``)
only reads and types the note; that a note is required is also the domain's rule
(:func:`services.survey_outcomes.close_follow_up`), whose refusal is shown on the field.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

NOTE_MAX = 500  # SurveyFollowUp.note

CHANNEL = {
    "ivr": _l("telefonda tuşlama"),
    "sms": _l("SMS yanıtı"),
    "agent": _l("temsilci"),
}
"""How the answer that opened the follow-up came (SurveyFollowUp.channel)."""

STATUS = {
    "open": _l("açık"),
    "done": _l("kapatıldı"),
}


class FollowUpCloseForm(FlaskForm):  # type: ignore[misc]
    """Close a low-score follow-up with what the supervisor did (a note is required)."""

    note = TextAreaField(
        _l("Takip notu"),
        validators=[
            DataRequired(message=_l("Kapatmak için ne yapıldığını yazın.")),
            Length(max=NOTE_MAX, message=_l("Not en fazla 500 karakter olabilir.")),
        ],
    )
