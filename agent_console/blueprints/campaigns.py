"""The supervisor's outbound campaigns (issue 6 item 1; R5.1–R5.6) and survey results (R8.2).

- ``/campaigns``: every campaign with a live progress bar (``campaigns.js`` polls
  ``/campaigns/progress`` every 2 s while a campaign is running or paused).
- ``/campaigns/new``: what, who (resolved tickets of a period, a citizen group, or a CSV
  file with per-line errors), when (days, hours, holidays), how often and how fast.
- ``/campaigns/<id>``: start, pause, stop (POST + CSRF), progress, outcome counts, the
  targets (paginated, phones masked) and, for a survey, its results.
- ``/campaigns/do-not-call``: numbers no campaign may ever dial (list, add, remove).
- ``/campaigns/surveys``: survey results per department, neighbourhood, over time, and
  before/after a policy change (also for the advisor and the mayor's office).

Views stay thin: the rules are in services.campaigns, services.campaign_targets,
services.do_not_call and services.survey_results (decision 0021).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console import db
from agent_console.campaign_forms import (
    GROUP,
    CampaignForm,
    DoNotCallForm,
    SurveyFilterForm,
    clabel,
    days_value,
    optional_id,
    options,
    period_dates,
    show_domain_error,
)
from agent_console.context import console, now
from agent_console.i18n import current_language
from agent_console.permissions import wants_json
from agent_console.security import current_staff
from models import (
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTargetSource,
    Department,
    Language,
    Neighbourhood,
)
from services.campaign_targets import (
    TargetImport,
    TargetRow,
    add_targets,
    parse_targets_csv,
    target_page,
    targets_from_citizen_group,
    targets_from_resolved_tickets,
)
from services.campaigns import (
    FINAL_TARGET_STATUSES,
    CampaignProgress,
    CampaignSettings,
    campaign_progress,
    create_campaign,
    get_campaign,
    list_campaigns,
    pause_campaign,
    start_campaign,
    stop_campaign,
)
from services.dead_letters import mask_phone
from services.do_not_call import add_do_not_call, list_do_not_call, remove_do_not_call
from services.errors import DomainError
from services.survey_results import (
    Period,
    SurveyFilter,
    before_after,
    overall,
    results_by_department,
    results_by_neighbourhood,
    results_over_time,
)

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

PAGE = 50  # targets per page on the campaign page
POLL_SECONDS = 2
MAX_POLLED = 200  # campaigns in one progress request
DNC_PAGE = 500
LIVE = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)
MAX_ERRORS_SHOWN = 50


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"clabel": clabel, "mask_phone": mask_phone, "poll_seconds": POLL_SECONDS}


def _tz() -> ZoneInfo:
    return ZoneInfo(console().settings.timezone)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=_tz()).astimezone(UTC)


def _today() -> date:
    return now().astimezone(_tz()).date()


# --- list and live progress ----------------------------------------------------------------


def progress_json(p: CampaignProgress) -> dict[str, Any]:
    """What ``campaigns.js`` needs to redraw a campaign's bar and counts."""
    final = sum(n for s, n in p.by_status.items() if s in FINAL_TARGET_STATUSES)
    return {
        "id": p.campaign_id,
        "status": p.status.value,
        "status_label": clabel("status", p.status),
        "live": p.status in LIVE,
        "total": p.total,
        "final": final,
        "done_ratio": p.done_ratio,
        "percent": round(p.done_ratio * 100),
        "by_status": {s.value: n for s, n in p.by_status.items()},
        "by_outcome": {s.value: n for s, n in p.by_outcome.items()},
        "in_flight": p.in_flight,
        "attempts": p.attempts,
    }


@bp.route("")
def index() -> ResponseReturnValue:
    """Every campaign, newest first, with its progress."""
    s = db.session()
    campaigns = list_campaigns(s)
    progress = campaign_progress(s, [c.id for c in campaigns])
    return render_template("campaigns/index.html", campaigns=campaigns, progress=progress)


@bp.route("/progress")
def progress() -> ResponseReturnValue:
    """``{"campaigns": [...]}`` for ``?id=1&id=2`` (polled by ``campaigns.js``)."""
    ids = [int(v) for v in request.args.getlist("id") if v.isdigit()][:MAX_POLLED]
    found = campaign_progress(db.session(), ids)
    return jsonify(campaigns=[progress_json(found[i]) for i in ids if i in found])


# --- new campaign ------------------------------------------------------------------------------


def _choices(form: CampaignForm | SurveyFilterForm, s: Session) -> None:
    english = current_language() == "en"
    departments = s.execute(
        select(Department.id, Department.name_tr, Department.name_en).order_by(Department.name_tr)
    ).all()
    form.department_id.choices = options(
        [("", _("Tümü"))] + [(str(i), en if english else tr) for i, tr, en in departments]
    )
    if isinstance(form, CampaignForm):
        hoods = options(
            [("", _("Tümü"))]
            + [
                (str(i), name)
                for i, name in s.execute(
                    select(Neighbourhood.id, Neighbourhood.name).order_by(Neighbourhood.name)
                )
            ]
        )
        form.neighbourhood_id.choices = hoods
        form.group_neighbourhood_id.choices = hoods


class _NobodyToCall(Exception):
    """Raised inside the transaction so that an empty campaign is not kept."""

    def __init__(self, imported: TargetImport) -> None:
        super().__init__("nobody to call")
        self.imported = imported


@dataclass
class _Targets:
    rows: list[TargetRow]
    criteria: dict[str, object]
    line_errors: list[tuple[int, str]]


def _settings(form: CampaignForm) -> CampaignSettings:
    return CampaignSettings(
        name=form.name.data or "",
        kind=CampaignKind(form.kind.data),
        window_days=days_value(form),
        window_start=form.window_start.data,
        window_end=form.window_end.data,
        skip_holidays=bool(form.skip_holidays.data),
        max_attempts=int(form.max_attempts.data),
        retry_spacing_minutes=int(form.retry_spacing_minutes.data),
        max_concurrent=int(form.max_concurrent.data),
        calls_per_second=float(form.calls_per_second.data),
        message_tr=(form.message_tr.data or "").strip() or None,
        message_en=(form.message_en.data or "").strip() or None,
        default_language=Language(form.default_language.data),
    )


def _read_csv(form: CampaignForm) -> tuple[str, str]:
    upload = form.csv_file.data
    raw: bytes = upload.read()
    for encoding in ("utf-8-sig", "cp1254"):  # Excel in Turkish writes Windows-1254
        try:
            return upload.filename or "hedefler.csv", raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return upload.filename or "hedefler.csv", raw.decode("utf-8", errors="replace")


def _targets(form: CampaignForm, s: Session) -> _Targets:
    source = CampaignTargetSource(form.source.data)
    if source is CampaignTargetSource.RESOLVED_TICKETS:
        first, last = period_dates(form)
        department_id = optional_id(form.department_id.data)
        neighbourhood_id = optional_id(form.neighbourhood_id.data)
        rows = targets_from_resolved_tickets(
            s,
            start=_local_midnight(first),
            end=_local_midnight(last + timedelta(days=1)),
            department_id=department_id,
            neighbourhood_id=neighbourhood_id,
        )
        criteria: dict[str, object] = {
            "period_start": first.isoformat(),
            "period_end": last.isoformat(),
            "department_id": department_id,
            "neighbourhood_id": neighbourhood_id,
        }
        return _Targets(rows, criteria, [])
    if source is CampaignTargetSource.CITIZEN_GROUP:
        group = str(form.group.data)
        neighbourhood_id = optional_id(form.group_neighbourhood_id.data)
        rows = targets_from_citizen_group(s, group=group, neighbourhood_id=neighbourhood_id)
        return _Targets(rows, {"group": group, "neighbourhood_id": neighbourhood_id}, [])
    filename, text = _read_csv(form)
    rows, errors = parse_targets_csv(text)
    return _Targets(rows, {"file": filename[:200], "rows": len(rows)}, list(errors))


def _bare(line: int, message: str) -> str:
    """A per-line message without its own ``Satır <n>:`` prefix (the page shows the line)."""
    prefix = f"Satır {line}:"
    return message[len(prefix) :].strip() if message.startswith(prefix) else message


def _render_new(
    form: CampaignForm, line_errors: list[tuple[int, str]], status: int
) -> ResponseReturnValue:
    return (
        render_template(
            "campaigns/new.html",
            form=form,
            line_errors=[(n, _bare(n, m)) for n, m in line_errors[:MAX_ERRORS_SHOWN]],
            more_errors=max(0, len(line_errors) - MAX_ERRORS_SHOWN),
        ),
        status,
    )


@bp.route("/new", methods=["GET", "POST"])
def new() -> ResponseReturnValue:
    """The new-campaign form; a valid post creates a DRAFT campaign with its targets."""
    form = CampaignForm()
    _choices(form, db.session())
    if request.method == "GET":
        return _render_new(form, [], 200)
    if not form.validate_on_submit():
        return _render_new(form, [], 400)
    language = current_language()
    try:
        targets = _targets(form, db.session())
    except DomainError as exc:
        show_domain_error(form, exc, language)
        return _render_new(form, [], 400)
    if targets.line_errors and not form.skip_bad_lines.data:
        form.csv_file.errors = [
            *form.csv_file.errors,
            _(
                "Dosyada %(n)s hatalı satır var. Düzeltip yeniden yükleyin ya da "
                "“Hatalı satırları atlayarak oluştur” kutusunu işaretleyin.",
                n=len(targets.line_errors),
            ),
        ]
        return _render_new(form, targets.line_errors, 400)
    try:
        with db.transaction() as s:
            campaign = create_campaign(
                s,
                actor=current_staff(),
                now=now(),
                settings=_settings(form),
                target_source=CampaignTargetSource(form.source.data),
                target_criteria=targets.criteria,
            )
            imported = add_targets(s, now=now(), campaign_id=campaign.id, rows=targets.rows)
            if imported.added == 0:
                raise _NobodyToCall(imported)
            campaign_id = campaign.id
    except _NobodyToCall as nobody:
        form.form_errors.append(
            _(
                "Seçilen ölçütlere uyan, aranabilecek kimse yok (atlanan: %(skipped)s, "
                "tekrar: %(duplicates)s). Kampanya oluşturulmadı.",
                skipped=nobody.imported.skipped,
                duplicates=nobody.imported.duplicates,
            )
        )
        return _render_new(form, targets.line_errors + nobody.imported.errors, 400)
    except DomainError as exc:
        show_domain_error(form, exc, language)
        return _render_new(form, targets.line_errors, 400)
    flash(
        _(
            "Kampanya taslak olarak oluşturuldu: %(added)s kişi eklendi, %(skipped)s kişi "
            "atlandı (aranmama listesi, izin yok), %(duplicates)s tekrar.",
            added=imported.added,
            skipped=imported.skipped,
            duplicates=imported.duplicates,
        ),
        "success",
    )
    dropped = targets.line_errors + imported.errors
    for line, message in dropped[:MAX_ERRORS_SHOWN]:
        flash(
            _("Satır %(line)s atlandı: %(message)s", line=line, message=_bare(line, message)),
            "warning",
        )
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


# --- one campaign --------------------------------------------------------------------------


def _criteria(s: Session, campaign: Campaign) -> list[tuple[str, str]]:
    """How the targets were chosen, as (label, value) lines for the page."""
    c = campaign.target_criteria or {}
    english = current_language() == "en"
    lines: list[tuple[str, str]] = [(_("Kaynak"), clabel("source", campaign.target_source))]
    if c.get("period_start"):
        lines.append((_("Dönem"), f"{c.get('period_start')} – {c.get('period_end')}"))
    if isinstance(c.get("department_id"), int):
        dept = s.get(Department, c["department_id"])
        if dept is not None:
            lines.append((_("Müdürlük"), dept.name_en if english else dept.name_tr))
    if isinstance(c.get("neighbourhood_id"), int):
        hood = s.get(Neighbourhood, c["neighbourhood_id"])
        if hood is not None:
            lines.append((_("Mahalle"), hood.name))
    if c.get("group"):
        lines.append((_("Vatandaş grubu"), clabel("group", c["group"])))
    if c.get("file"):
        lines.append((_("Dosya"), str(c["file"])))
    return lines


@bp.route("/<int:campaign_id>")
def show(campaign_id: int) -> ResponseReturnValue:
    """A campaign: controls, progress, outcomes, targets and (surveys) results."""
    s = db.session()
    campaign = get_campaign(s, campaign_id)
    prog = campaign_progress(s, [campaign_id])[campaign_id]
    pages = max(1, -(-prog.total // PAGE))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    targets = target_page(s, campaign_id, offset=(page - 1) * PAGE, limit=PAGE)
    survey = None
    survey_departments: list[Any] = []
    if campaign.kind is CampaignKind.SURVEY:
        only = SurveyFilter(campaign_id=campaign_id)
        survey = overall(s, filters=only)
        survey_departments = results_by_department(s, filters=only)
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        progress=prog,
        live=progress_json(prog),
        criteria=_criteria(s, campaign),
        targets=targets,
        page=page,
        pages=pages,
        survey=survey,
        survey_departments=survey_departments,
    )


def _control(campaign_id: int, action: str) -> ResponseReturnValue:
    actions = {
        "start": (start_campaign, _("Kampanya başlatıldı.")),
        "pause": (pause_campaign, _("Kampanya duraklatıldı; süren aramalar tamamlanacak.")),
        "stop": (stop_campaign, _("Kampanya durduruldu; sıradaki kişiler aranmayacak.")),
    }
    change, message = actions[action]
    try:
        with db.transaction() as s:
            campaign = change(s, actor=current_staff(), now=now(), campaign_id=campaign_id)
            status = campaign.status
    except DomainError as exc:
        if wants_json():
            raise
        flash(exc.message(current_language()), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    if wants_json():
        return jsonify(ok=True, status=status.value, message=message)
    flash(message, "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/start", methods=["POST"])
def start(campaign_id: int) -> ResponseReturnValue:
    """Draft or paused → running (the dialer claims within the calling window only)."""
    return _control(campaign_id, "start")


@bp.route("/<int:campaign_id>/pause", methods=["POST"])
def pause(campaign_id: int) -> ResponseReturnValue:
    """Running → paused: no new calls; calls in flight end normally."""
    return _control(campaign_id, "pause")


@bp.route("/<int:campaign_id>/stop", methods=["POST"])
def stop(campaign_id: int) -> ResponseReturnValue:
    """Any open status → stopped: every waiting target is cancelled."""
    return _control(campaign_id, "stop")


# --- do-not-call list -----------------------------------------------------------------------


@bp.route("/do-not-call")
def do_not_call() -> ResponseReturnValue:
    """The numbers no campaign dials (R5.6), newest first, masked."""
    s = db.session()
    total, rows = list_do_not_call(s, limit=DNC_PAGE)
    return render_template(
        "campaigns/do_not_call.html", form=DoNotCallForm(), rows=rows, total=total
    )


@bp.route("/do-not-call", methods=["POST"])
def do_not_call_add() -> ResponseReturnValue:
    """Add a number (idempotent); a number that cannot be read is refused on the page."""
    form = DoNotCallForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("campaigns.do_not_call"))
    try:
        with db.transaction() as s:
            row = add_do_not_call(
                s,
                actor=current_staff(),
                now=now(),
                phone=form.phone.data or "",
                reason=form.reason.data,
            )
            shown = mask_phone(row.phone_e164)
    except DomainError as exc:
        if wants_json():
            raise
        flash(exc.message(current_language()), "error")
        return redirect(url_for("campaigns.do_not_call"))
    flash(_("%(phone)s aranmama listesine eklendi.", phone=shown), "success")
    return redirect(url_for("campaigns.do_not_call"))


@bp.route("/do-not-call/remove", methods=["POST"])
def do_not_call_remove() -> ResponseReturnValue:
    """Take a number off the list (the citizen asked to be called again)."""
    phone = request.form.get("phone", "").strip()
    try:
        with db.transaction() as s:
            removed = remove_do_not_call(s, actor=current_staff(), now=now(), phone=phone)
    except DomainError as exc:
        if wants_json():
            raise
        flash(exc.message(current_language()), "error")
        return redirect(url_for("campaigns.do_not_call"))
    if removed:
        flash(_("%(phone)s aranmama listesinden çıkarıldı.", phone=mask_phone(phone)), "success")
    else:
        flash(_("Bu numara listede yoktu."), "warning")
    return redirect(url_for("campaigns.do_not_call"))


# --- survey results --------------------------------------------------------------------------


@bp.route("/surveys")
def survey_results() -> ResponseReturnValue:
    """Survey results per department, neighbourhood and over time; before/after (R8.2)."""
    s = db.session()
    form = SurveyFilterForm(request.args)
    _choices(form, s)
    form.validate()
    today = _today()
    first = form.start.data or (today - timedelta(weeks=12))
    last = form.end.data or today
    if last < first:
        first, last = last, first
    department_id = optional_id(form.department_id.data)
    period = Period(form.period.data if form.period.data in ("week", "month") else "week")
    filters = SurveyFilter(
        start=_local_midnight(first),
        end=_local_midnight(last + timedelta(days=1)),
        department_id=department_id,
    )
    comparison = None
    error = None
    try:
        over_time = results_over_time(
            s, start=first, end=last + timedelta(days=1), period=period, filters=filters, tz=_tz()
        )
        if form.pivot.data:
            comparison = before_after(
                s,
                pivot=_local_midnight(form.pivot.data),
                days=form.days.data or 30,
                filters=SurveyFilter(department_id=department_id),
            )
    except DomainError as exc:
        error = exc.message(current_language())
        over_time = []
    return render_template(
        "campaigns/surveys.html",
        form=form,
        first=first,
        last=last,
        total=overall(s, filters=filters),
        departments=results_by_department(s, filters=filters),
        neighbourhoods=results_by_neighbourhood(s, filters=filters),
        over_time=over_time,
        comparison=comparison,
        error=error,
        groups=GROUP,
    )
