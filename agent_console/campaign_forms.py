"""Forms and screen names of the supervisor's campaign pages (R5.1–R5.6, R8.2).

Flask-WTF forms (CSRF checked by the form and by ``CSRFProtect``): the new-campaign form
(what, who, when, how often, how fast), the do-not-call entry and the survey-results
filter. The forms only read and type the input; limits (days, attempts, pacing) are the
domain's (:func:`services.campaigns.validate_settings`), whose refusals are shown on the
field they name (:func:`show_domain_error`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    Field,
    FloatField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from models import (
    AttemptStatus,
    CampaignKind,
    CampaignStatus,
    CampaignTargetSource,
    CampaignTargetStatus,
    Language,
)
from services.errors import DomainError

KIND = {
    CampaignKind.SURVEY: _l("Memnuniyet anketi (çözüm sonrası)"),
    CampaignKind.CALLBACK: _l("Geri arama"),
    CampaignKind.RESOLUTION_INFO: _l("Çözüm bilgilendirmesi"),
    CampaignKind.DELAY_NOTICE: _l("Gecikme bildirimi"),
    CampaignKind.EVENT_INVITATION: _l("Etkinlik / mahalle toplantısı daveti"),
    CampaignKind.SPECIAL_GROUP: _l("Özel gruplarla temas"),
    CampaignKind.DATA_COMPLETION: _l("Veri toplama ve tamamlama"),
}

STATUS = {
    CampaignStatus.DRAFT: _l("taslak"),
    CampaignStatus.RUNNING: _l("sürüyor"),
    CampaignStatus.PAUSED: _l("duraklatıldı"),
    CampaignStatus.STOPPED: _l("durduruldu"),
    CampaignStatus.FINISHED: _l("tamamlandı"),
}

SOURCE = {
    CampaignTargetSource.RESOLVED_TICKETS: _l("Dönem içinde çözülen başvurular"),
    CampaignTargetSource.CITIZEN_GROUP: _l("Vatandaş grubu"),
    CampaignTargetSource.CSV: _l("CSV dosyası"),
    CampaignTargetSource.CALLBACK_TASKS: _l("Geri arama talepleri"),
}

TARGET_STATUS = {
    CampaignTargetStatus.PENDING: _l("sırada"),
    CampaignTargetStatus.DIALING: _l("aranıyor"),
    CampaignTargetStatus.DONE: _l("ulaşıldı"),
    CampaignTargetStatus.EXHAUSTED: _l("denemeler tükendi"),
    CampaignTargetStatus.SKIPPED: _l("atlandı"),
    CampaignTargetStatus.CANCELLED: _l("iptal edildi"),
}

OUTCOME = {
    AttemptStatus.CLAIMED: _l("aranmak üzere"),
    AttemptStatus.ORIGINATED: _l("çalıyor"),
    AttemptStatus.ANSWERED: _l("yanıtlandı"),
    AttemptStatus.NO_ANSWER: _l("yanıt yok"),
    AttemptStatus.BUSY: _l("meşgul"),
    AttemptStatus.FAILED: _l("başarısız"),
}

# Citizen.special_groups values (acikkapi/data/demo.json) and their screen names (R5.5).
GROUP = {
    "elderly": _l("Yaşlılar"),
    "disabled": _l("Engelliler"),
    "lives_alone": _l("Yalnız yaşayanlar"),
    "patient": _l("Sağlık taraması olan hastalar"),
    "youth": _l("Gençler"),
    "home_maker": _l("Ev hanımları"),
}

WEEKDAY = {
    "1": _l("Pazartesi"),
    "2": _l("Salı"),
    "3": _l("Çarşamba"),
    "4": _l("Perşembe"),
    "5": _l("Cuma"),
    "6": _l("Cumartesi"),
    "7": _l("Pazar"),
}

LABELS: dict[str, dict[Any, Any]] = {
    "kind": KIND,
    "status": STATUS,
    "source": SOURCE,
    "target_status": TARGET_STATUS,
    "outcome": OUTCOME,
    "group": GROUP,
    "weekday": WEEKDAY,
}

# Sources a supervisor picks on the form (callback tasks come from the callback list).
FORM_SOURCES = (
    CampaignTargetSource.RESOLVED_TICKETS,
    CampaignTargetSource.CITIZEN_GROUP,
    CampaignTargetSource.CSV,
)


def options(pairs: Iterable[tuple[str, object]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms choices (labels may be lazy translations)."""
    return [SelectChoice(value, label) for value, label in pairs]


def clabel(kind: str, value: object) -> str:
    """The screen name of ``value`` in campaign vocabulary ``kind`` (raw value if unknown)."""
    table = LABELS.get(kind, {})
    found = table.get(value)
    if found is None and hasattr(value, "value"):
        found = table.get(value.value)
    return str(found) if found is not None else str(getattr(value, "value", value))


class DecimalCommaFloatField(FloatField):  # type: ignore[misc]
    """A number that may be written the Turkish way, ``0,5``."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and isinstance(valuelist[0], str):
            valuelist = [valuelist[0].replace(",", ".")]
        super().process_formdata(valuelist)


class CheckboxesField(SelectMultipleField):  # type: ignore[misc]
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CampaignForm(FlaskForm):  # type: ignore[misc]
    """A new campaign and where its targets come from (issue 6 item 1)."""

    name = StringField(_l("Kampanya adı"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(
        _l("Tür"), choices=options((k.value, v) for k, v in KIND.items()), default="survey"
    )
    message_tr = TextAreaField(
        _l("Vatandaşa okunacak metin (Türkçe)"), validators=[Optional(), Length(max=2000)]
    )
    message_en = TextAreaField(
        _l("Vatandaşa okunacak metin (İngilizce)"), validators=[Optional(), Length(max=2000)]
    )
    default_language = SelectField(
        _l("Varsayılan dil"),
        choices=options([(Language.TR.value, _l("Türkçe")), (Language.EN.value, _l("İngilizce"))]),
        default=Language.TR.value,
    )
    source = RadioField(
        _l("Aranacak kişiler"),
        choices=options((s.value, SOURCE[s]) for s in FORM_SOURCES),
        default=CampaignTargetSource.RESOLVED_TICKETS.value,
    )
    period_start = DateField(_l("Çözüldüğü dönem: başlangıç"), validators=[Optional()])
    period_end = DateField(_l("Çözüldüğü dönem: bitiş (dahil)"), validators=[Optional()])
    department_id = SelectField(_l("Müdürlük"), choices=[], validate_choice=False, default="")
    neighbourhood_id = SelectField(_l("Mahalle"), choices=[], validate_choice=False, default="")
    group = SelectField(
        _l("Vatandaş grubu"),
        choices=options(GROUP.items()),
        default="elderly",
    )
    group_neighbourhood_id = SelectField(
        _l("Mahalle"), choices=[], validate_choice=False, default=""
    )
    csv_file = FileField(_l("CSV dosyası"))
    skip_bad_lines = BooleanField(_l("Hatalı satırları atlayarak oluştur"))
    window_days = CheckboxesField(
        _l("Arama günleri"),
        choices=options(WEEKDAY.items()),
        default=["1", "2", "3", "4", "5", "6"],
    )
    window_start = TimeField(_l("Arama saati: başlangıç"), default=time(10), format="%H:%M")
    window_end = TimeField(_l("Arama saati: bitiş"), default=time(19), format="%H:%M")
    skip_holidays = BooleanField(_l("Resmî tatillerde arama yapma"), default=True)
    max_attempts = IntegerField(_l("En fazla deneme"), default=3, validators=[InputRequired()])
    retry_spacing_minutes = IntegerField(
        _l("Yeniden deneme aralığı (dakika)"), default=60, validators=[InputRequired()]
    )
    max_concurrent = IntegerField(
        _l("En fazla eş zamanlı arama"), default=2, validators=[InputRequired()]
    )
    calls_per_second = DecimalCommaFloatField(
        _l("Hız (saniyede arama)"), default=1.0, validators=[InputRequired()]
    )

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then what depends on the chosen source (period, file)."""
        ok = bool(super().validate(extra_validators))
        if self.source.data == CampaignTargetSource.RESOLVED_TICKETS.value:
            start, end = self.period_start.data, self.period_end.data
            if start is None or end is None:
                self._fail(self.period_end, _l("Dönemin başlangıç ve bitiş tarihini girin."))
                ok = False
            elif end < start:
                self._fail(self.period_end, _l("Dönemin bitişi başlangıcından önce olamaz."))
                ok = False
        if self.source.data == CampaignTargetSource.CSV.value and not self.csv_file.data:
            self._fail(self.csv_file, _l("Bir CSV dosyası seçin."))
            ok = False
        return ok

    @staticmethod
    def _fail(field: Field, message: object) -> None:
        field.errors = [*field.errors, str(message)]

    def validate_window_days(self, field: Field) -> None:
        if not field.data:
            raise ValidationError(str(_l("En az bir arama günü seçin.")))


class DoNotCallForm(FlaskForm):  # type: ignore[misc]
    """A number never to be called by any campaign (R5.6)."""

    phone = StringField(_l("Telefon numarası"), validators=[DataRequired(), Length(max=40)])
    reason = StringField(_l("Gerekçe"), validators=[Optional(), Length(max=200)])


class SurveyFilterForm(FlaskForm):  # type: ignore[misc]
    """The survey-results page: period, grouping, and a policy change to compare around."""

    class Meta:
        csrf = False  # a GET form: it only filters what is shown

    start = DateField(_l("Başlangıç"), validators=[Optional()])
    end = DateField(_l("Bitiş (dahil)"), validators=[Optional()])
    period = SelectField(
        _l("Zaman aralığı"),
        choices=options([("week", _l("Haftalık")), ("month", _l("Aylık"))]),
        default="week",
    )
    department_id = SelectField(_l("Müdürlük"), choices=[], validate_choice=False, default="")
    pivot = DateField(_l("Politika değişikliği tarihi"), validators=[Optional()])
    days = IntegerField(_l("Karşılaştırma süresi (gün)"), default=30, validators=[Optional()])


def optional_id(raw: object) -> int | None:
    """A select's value as an id (``""`` or junk: none)."""
    text = str(raw or "").strip()
    return int(text) if text.isdigit() else None


def show_domain_error(form: FlaskForm, exc: DomainError, language: str) -> None:
    """Put a domain refusal on the field it names (``details['field']``), else on the form."""
    name = str(exc.details.get("field", ""))
    target = getattr(form, name, None)
    message = exc.message(language)
    if isinstance(target, Field):
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


def days_value(form: CampaignForm) -> str:
    """The checked weekdays as the model's ``window_days`` (``"12345"``)."""
    return "".join(sorted(str(d) for d in form.window_days.data or []))


def period_dates(form: CampaignForm) -> tuple[date, date]:
    start, end = form.period_start.data, form.period_end.data
    assert isinstance(start, date) and isinstance(end, date)
    return start, end
