"""Outbound campaigns: create, start, pause, stop, progress (R5.1–R5.6; decision 0021).

A campaign moves draft → running ⇄ paused → stopped, or → finished when the dialer has
nothing left to do (:mod:`services.dialer`). Pausing stops new claims only: calls in flight
run to their outcome. Stopping cancels every pending target; attempts already in flight end
normally (their outcome is still recorded). Nothing here commits.

The audit log (:mod:`services.audit`) only knows personal-data and sign-in actions, so
campaign changes are not audited there; ``created_by_id`` and the timestamps on the row
say who created it and when it started/finished.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    AuditAction,
    CallAttempt,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    Language,
    StaffUser,
)
from services import audit
from services.errors import InvalidField, InvalidTransition, UnknownEntity

__all__ = [
    "FINAL_TARGET_STATUSES",
    "IN_FLIGHT",
    "CampaignProgress",
    "CampaignSettings",
    "campaign_progress",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "pause_campaign",
    "start_campaign",
    "stop_campaign",
]

IN_FLIGHT = (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)
FINAL_TARGET_STATUSES = frozenset(
    {
        CampaignTargetStatus.DONE,
        CampaignTargetStatus.EXHAUSTED,
        CampaignTargetStatus.SKIPPED,
        CampaignTargetStatus.CANCELLED,
    }
)


@dataclass(frozen=True)
class CampaignSettings:
    """What a supervisor fills in for a new campaign (defaults as in the model)."""

    name: str
    kind: CampaignKind
    window_days: str = "123456"
    window_start: time = time(10)
    window_end: time = time(19)
    skip_holidays: bool = True
    max_attempts: int = 3
    retry_spacing_minutes: int = 60
    max_concurrent: int = 2
    calls_per_second: float = 1.0
    message_tr: str | None = None
    message_en: str | None = None
    default_language: Language = Language.TR


def _invalid(field_name: str, tr: str, en: str, value: object) -> InvalidField:
    return InvalidField(tr, en, field=field_name, value=value)


# (setting, lowest, highest, Turkish message, English message)
_NUMBER_RANGES: tuple[tuple[str, float, float, str, str], ...] = (
    (
        "max_attempts",
        1,
        10,
        "En fazla deneme sayısı 1 ile 10 arasında olmalı.",
        "Maximum attempts must be between 1 and 10.",
    ),
    (
        "retry_spacing_minutes",
        1,
        7 * 24 * 60,
        "Yeniden deneme aralığı 1 dakika ile 7 gün arasında olmalı.",
        "Retry spacing must be between 1 minute and 7 days.",
    ),
    (
        "max_concurrent",
        1,
        50,
        "Eş zamanlı arama sayısı 1 ile 50 arasında olmalı.",
        "Concurrent calls must be between 1 and 50.",
    ),
    (
        "calls_per_second",
        0.1,
        50,
        "Saniyedeki arama hızı 0,1 ile 50 arasında olmalı.",
        "Calls per second must be between 0.1 and 50.",
    ),
)


def validate_settings(settings: CampaignSettings) -> None:
    """Raise :class:`InvalidField` (field name in ``details['field']``) for the first bad value."""
    if not settings.name or not settings.name.strip():
        raise _invalid("name", "Kampanya adı boş olamaz.", "The campaign name is empty.", "")
    if len(settings.name.strip()) > 200:
        raise _invalid(
            "name",
            "Kampanya adı en fazla 200 karakter olabilir.",
            "The campaign name is at most 200 characters.",
            settings.name,
        )
    days = settings.window_days
    if not days or any(ch not in "1234567" for ch in days) or len(set(days)) != len(days):
        raise _invalid(
            "window_days",
            "Arama günleri 1 (Pazartesi) ile 7 (Pazar) arasında, en az bir gün olmalı.",
            "Calling days must be at least one of 1 (Monday) to 7 (Sunday).",
            days,
        )
    if settings.window_start >= settings.window_end:
        raise _invalid(
            "window_start",
            "Arama saatinin başlangıcı bitişinden önce olmalı.",
            "The calling window must start before it ends.",
            f"{settings.window_start}-{settings.window_end}",
        )
    for field_name, low, high, tr, en in _NUMBER_RANGES:
        value = getattr(settings, field_name)
        if not low <= value <= high:
            raise _invalid(field_name, tr, en, value)


def create_campaign(
    session: Session,
    *,
    actor: StaffUser | None,
    now: datetime,
    settings: CampaignSettings,
    target_source: CampaignTargetSource,
    target_criteria: dict[str, object],
) -> Campaign:
    """Create a DRAFT campaign after validating ``settings`` (R5.6 limits).

    Raises :class:`InvalidField` naming the field: empty name, days not a non-empty subset of
    1..7, window start not before end, attempts outside 1..10, concurrency outside 1..50,
    calls per second outside 0.1..50. Flushed, not committed.
    """
    validate_settings(settings)
    campaign = Campaign(
        name=settings.name.strip(),
        kind=settings.kind,
        status=CampaignStatus.DRAFT,
        target_source=target_source,
        target_criteria=dict(target_criteria),
        message_tr=settings.message_tr,
        message_en=settings.message_en,
        default_language=settings.default_language,
        window_days="".join(sorted(settings.window_days)),
        window_start=settings.window_start,
        window_end=settings.window_end,
        skip_holidays=settings.skip_holidays,
        max_attempts=settings.max_attempts,
        retry_spacing_minutes=settings.retry_spacing_minutes,
        max_concurrent=settings.max_concurrent,
        calls_per_second=float(settings.calls_per_second),
        next_dial_at=None,
        created_by_id=actor.id if actor is not None else None,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    _audit(session, actor, now, campaign, "created")
    return campaign


def _audit(
    session: Session, actor: StaffUser | None, now: datetime, campaign: Campaign, change: str
) -> None:
    audit.record(
        session,
        actor,
        now,
        AuditAction.CAMPAIGN_CHANGED,
        reason=f"{change}: {campaign.name}",
        campaign_id=campaign.id,
        change=change,
        status=campaign.status.value,
    )


def get_campaign(session: Session, campaign_id: int, *, for_update: bool = False) -> Campaign:
    """The campaign, locked (PostgreSQL ``FOR UPDATE``) if asked; :class:`UnknownEntity` if none."""
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    if for_update:
        stmt = stmt.with_for_update()
    campaign = session.scalars(stmt).one_or_none()
    if campaign is None:
        raise UnknownEntity(
            f"Kampanya bulunamadı: {campaign_id}",
            f"No such campaign: {campaign_id}",
            campaign_id=campaign_id,
        )
    return campaign


def _refuse(campaign: Campaign, action_tr: str, action_en: str) -> InvalidTransition:
    return InvalidTransition(
        f"Bu kampanya {action_tr} (durum: {campaign.status.value}).",
        f"This campaign cannot be {action_en} (status: {campaign.status.value}).",
        campaign_id=campaign.id,
        status=campaign.status.value,
    )


def start_campaign(
    session: Session, *, actor: StaffUser | None, now: datetime, campaign_id: int
) -> Campaign:
    """DRAFT or PAUSED → RUNNING; ``started_at`` is set on the first start only.

    Raises :class:`InvalidField` (field ``targets``) when the campaign has no target to call
    and :class:`InvalidTransition` from any other status.
    """
    campaign = get_campaign(session, campaign_id, for_update=True)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
        raise _refuse(campaign, "başlatılamaz", "started")
    has_target = session.scalar(
        select(CampaignTarget.id).where(CampaignTarget.campaign_id == campaign_id).limit(1)
    )
    if has_target is None:
        raise InvalidField(
            "Kampanyada aranacak kimse yok: önce hedef ekleyin.",
            "The campaign has nobody to call: add targets first.",
            field="targets",
            campaign_id=campaign_id,
        )
    campaign.status = CampaignStatus.RUNNING
    if campaign.started_at is None:
        campaign.started_at = now
    campaign.updated_at = now
    session.flush()
    _audit(session, actor, now, campaign, "started")
    return campaign


def pause_campaign(
    session: Session, *, actor: StaffUser | None, now: datetime, campaign_id: int
) -> Campaign:
    """RUNNING → PAUSED: no new claims; calls in flight continue to their outcome.

    Pausing a paused campaign is a no-op; any other status raises :class:`InvalidTransition`.
    """
    campaign = get_campaign(session, campaign_id, for_update=True)
    if campaign.status == CampaignStatus.PAUSED:
        return campaign
    if campaign.status != CampaignStatus.RUNNING:
        raise _refuse(campaign, "duraklatılamaz", "paused")
    campaign.status = CampaignStatus.PAUSED
    campaign.updated_at = now
    session.flush()
    _audit(session, actor, now, campaign, "paused")
    return campaign


def stop_campaign(
    session: Session, *, actor: StaffUser | None, now: datetime, campaign_id: int
) -> Campaign:
    """Any open status → STOPPED; every PENDING target becomes CANCELLED.

    Targets being dialled (DIALING) keep their attempt: its outcome is still recorded and
    the target then ends DONE or CANCELLED (no retry on a stopped campaign). Stopping a
    stopped campaign is a no-op; a FINISHED one raises :class:`InvalidTransition`.
    """
    campaign = get_campaign(session, campaign_id, for_update=True)
    if campaign.status == CampaignStatus.STOPPED:
        return campaign
    if campaign.status == CampaignStatus.FINISHED:
        raise _refuse(campaign, "durdurulamaz", "stopped")
    session.execute(
        update(CampaignTarget)
        .where(
            CampaignTarget.campaign_id == campaign_id,
            CampaignTarget.status == CampaignTargetStatus.PENDING,
        )
        .values(
            status=CampaignTargetStatus.CANCELLED,
            completed_at=now,
            next_attempt_at=None,
            note="Kampanya durduruldu.",
        ),
        execution_options={"synchronize_session": False},
    )
    campaign.status = CampaignStatus.STOPPED
    campaign.finished_at = now
    campaign.updated_at = now
    session.flush()
    _audit(session, actor, now, campaign, "stopped")
    return campaign


@dataclass(frozen=True)
class CampaignProgress:
    """Counts for the campaign page and the wallboard."""

    campaign_id: int
    status: CampaignStatus
    total: int
    by_status: dict[CampaignTargetStatus, int] = field(default_factory=dict)
    by_outcome: dict[AttemptStatus, int] = field(default_factory=dict)  # terminal attempts
    in_flight: int = 0
    attempts: int = 0
    done_ratio: float = 0.0  # share of targets in a final state, 0..1


def campaign_progress(session: Session, campaign_ids: Sequence[int]) -> dict[int, CampaignProgress]:
    """Progress of each campaign in ``campaign_ids`` (unknown ids are left out).

    Three queries whatever the number of campaigns: campaigns, targets grouped by
    (campaign, status), attempts grouped by (campaign, status).
    """
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    statuses = dict(
        session.execute(select(Campaign.id, Campaign.status).where(Campaign.id.in_(ids))).all()
    )
    by_status: dict[int, dict[CampaignTargetStatus, int]] = {cid: {} for cid in statuses}
    for cid, target_status, count in session.execute(
        select(CampaignTarget.campaign_id, CampaignTarget.status, func.count())
        .where(CampaignTarget.campaign_id.in_(ids))
        .group_by(CampaignTarget.campaign_id, CampaignTarget.status)
    ):
        by_status[cid][target_status] = count
    by_attempt: dict[int, dict[AttemptStatus, int]] = {cid: {} for cid in statuses}
    for cid, attempt_status, count in session.execute(
        select(CallAttempt.campaign_id, CallAttempt.status, func.count())
        .where(CallAttempt.campaign_id.in_(ids))
        .group_by(CallAttempt.campaign_id, CallAttempt.status)
    ):
        by_attempt[cid][attempt_status] = count
    result: dict[int, CampaignProgress] = {}
    for cid, status in statuses.items():
        targets = by_status[cid]
        attempts = by_attempt[cid]
        total = sum(targets.values())
        final = sum(n for s, n in targets.items() if s in FINAL_TARGET_STATUSES)
        result[cid] = CampaignProgress(
            campaign_id=cid,
            status=status,
            total=total,
            by_status=targets,
            by_outcome={s: n for s, n in attempts.items() if s not in IN_FLIGHT},
            in_flight=sum(n for s, n in attempts.items() if s in IN_FLIGHT),
            attempts=sum(attempts.values()),
            done_ratio=final / total if total else 0.0,
        )
    return result


def list_campaigns(
    session: Session, *, statuses: Collection[CampaignStatus] | None = None
) -> list[Campaign]:
    """Campaigns (optionally only those in ``statuses``), newest first."""
    stmt = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
    if statuses is not None:
        stmt = stmt.where(Campaign.status.in_(list(statuses)))
    return list(session.scalars(stmt))
