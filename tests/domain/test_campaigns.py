"""Campaign life cycle, validation and progress on SQLite and PostgreSQL (R5.1–R5.6)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    AuditAction,
    AuditEvent,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTargetSource,
    CampaignTargetStatus,
    Language,
    StaffUser,
)
from services.campaign_targets import TargetRow, add_targets
from services.campaigns import (
    CampaignSettings,
    campaign_progress,
    create_campaign,
    list_campaigns,
    pause_campaign,
    start_campaign,
    stop_campaign,
)
from services.dialer import claim_due_attempts, record_outcome
from services.do_not_call import add_do_not_call, remove_do_not_call
from services.errors import InvalidField, InvalidTransition, UnknownEntity
from tests.factories import mobile_e164


def settings(**kw: Any) -> CampaignSettings:
    values: dict[str, Any] = {"name": "Memnuniyet anketi", "kind": CampaignKind.SURVEY}
    values.update(kw)
    return CampaignSettings(**values)


def new_campaign(
    session: Session, now: datetime, actor: StaffUser | None = None, **kw: Any
) -> Campaign:
    return create_campaign(
        session,
        actor=actor,
        now=now,
        settings=settings(**kw),
        target_source=CampaignTargetSource.CSV,
        target_criteria={"file": "liste.csv"},
    )


def add_numbers(session: Session, now: datetime, campaign_id: int, seed: int, n: int) -> None:
    rows = [TargetRow(phone=mobile_e164(seed * 1000 + i)) for i in range(n)]
    assert add_targets(session, now=now, campaign_id=campaign_id, rows=rows).added == n


def test_create_makes_a_draft_with_the_settings(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    campaign = new_campaign(
        session,
        now,
        supervisor,
        window_days="54321",
        max_attempts=5,
        message_en="Hello",
        default_language=Language.EN,
    )
    assert campaign.status == CampaignStatus.DRAFT and campaign.created_by_id == supervisor.id
    assert campaign.window_days == "12345" and campaign.max_attempts == 5
    assert campaign.window_start == time(10) and campaign.window_end == time(19)
    assert campaign.target_criteria == {"file": "liste.csv"}
    assert campaign.default_language == Language.EN and campaign.started_at is None


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("name", {"name": "  "}),
        ("window_days", {"window_days": ""}),
        ("window_days", {"window_days": "089"}),
        ("window_days", {"window_days": "11"}),
        ("window_start", {"window_start": time(19), "window_end": time(10)}),
        ("window_start", {"window_start": time(10), "window_end": time(10)}),
        ("max_attempts", {"max_attempts": 0}),
        ("max_attempts", {"max_attempts": 11}),
        ("max_concurrent", {"max_concurrent": 0}),
        ("max_concurrent", {"max_concurrent": 51}),
        ("calls_per_second", {"calls_per_second": 0.05}),
        ("calls_per_second", {"calls_per_second": 51}),
        ("retry_spacing_minutes", {"retry_spacing_minutes": 0}),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(
    session: Session, now: datetime, field: str, values: dict[str, Any]
) -> None:
    with pytest.raises(InvalidField) as refused:
        new_campaign(session, now, **values)
    assert refused.value.details["field"] == field
    assert refused.value.message("tr") and refused.value.message("en")


def test_start_needs_targets_and_sets_started_at_once(session: Session, now: datetime) -> None:
    campaign = new_campaign(session, now)
    with pytest.raises(InvalidField) as refused:
        start_campaign(session, actor=None, now=now, campaign_id=campaign.id)
    assert refused.value.details["field"] == "targets"
    add_numbers(session, now, campaign.id, 201, 2)
    start_campaign(session, actor=None, now=now, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.RUNNING and campaign.started_at == now
    later = now + timedelta(hours=1)
    pause_campaign(session, actor=None, now=later, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.PAUSED
    start_campaign(session, actor=None, now=later, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.RUNNING and campaign.started_at == now
    with pytest.raises(InvalidTransition):
        start_campaign(session, actor=None, now=later, campaign_id=campaign.id)


def test_transitions_that_make_no_sense_are_refused(session: Session, now: datetime) -> None:
    campaign = new_campaign(session, now)
    with pytest.raises(InvalidTransition):
        pause_campaign(session, actor=None, now=now, campaign_id=campaign.id)
    with pytest.raises(UnknownEntity):
        start_campaign(session, actor=None, now=now, campaign_id=987_654)
    stop_campaign(session, actor=None, now=now, campaign_id=campaign.id)
    assert campaign.status == CampaignStatus.STOPPED and campaign.finished_at == now
    stop_campaign(session, actor=None, now=now, campaign_id=campaign.id)  # no-op
    with pytest.raises(InvalidTransition):
        start_campaign(session, actor=None, now=now, campaign_id=campaign.id)


@contextmanager
def count_statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind()

    def before(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_progress_counts_targets_and_attempts_in_three_queries(
    session: Session, now: datetime
) -> None:
    first = new_campaign(session, now, max_concurrent=2, calls_per_second=10)
    second = new_campaign(session, now, name="İkinci")
    add_numbers(session, now, first.id, 202, 4)
    add_numbers(session, now, second.id, 203, 1)
    start_campaign(session, actor=None, now=now, campaign_id=first.id)
    orders = [
        o for o in claim_due_attempts(session, now=now, worker="t") if o.campaign_id == first.id
    ]
    assert len(orders) == 2
    record_outcome(
        session, now=now, attempt_id=orders[0].attempt_id, outcome=AttemptStatus.ANSWERED
    )
    session.flush()
    with count_statements(session) as statements:
        progress = campaign_progress(session, [first.id, second.id, 424_242])
    assert len(statements) == 3
    p = progress[first.id]
    assert p.status == CampaignStatus.RUNNING and p.total == 4
    assert p.by_status == {
        CampaignTargetStatus.DONE: 1,
        CampaignTargetStatus.DIALING: 1,
        CampaignTargetStatus.PENDING: 2,
    }
    assert p.by_outcome == {AttemptStatus.ANSWERED: 1}
    assert p.in_flight == 1 and p.attempts == 2 and p.done_ratio == 0.25
    q = progress[second.id]
    assert q.status == CampaignStatus.DRAFT and q.total == 1 and q.attempts == 0
    assert q.done_ratio == 0.0 and 424_242 not in progress
    assert campaign_progress(session, []) == {}


def test_list_campaigns_filters_by_status(session: Session, now: datetime) -> None:
    draft = new_campaign(session, now, name="Taslak")
    running = new_campaign(session, now + timedelta(minutes=1), name="Çalışan")
    add_numbers(session, now, running.id, 204, 1)
    start_campaign(session, actor=None, now=now, campaign_id=running.id)
    ids = [c.id for c in list_campaigns(session)]
    assert ids.index(running.id) < ids.index(draft.id)  # newest first
    only_running = list_campaigns(session, statuses={CampaignStatus.RUNNING})
    assert running.id in [c.id for c in only_running]
    assert draft.id not in [c.id for c in only_running]


def test_who_started_paused_and_stopped_calling_is_audited(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    """R5.6: every change to who gets called is traceable to a person (audit log)."""
    campaign = new_campaign(session, now, supervisor)
    add_numbers(session, now, campaign.id, 71, 2)
    start_campaign(session, actor=supervisor, now=now, campaign_id=campaign.id)
    pause_campaign(session, actor=supervisor, now=now, campaign_id=campaign.id)
    pause_campaign(session, actor=supervisor, now=now, campaign_id=campaign.id)  # no-op
    stop_campaign(session, actor=supervisor, now=now, campaign_id=campaign.id)
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == AuditAction.CAMPAIGN_CHANGED)
        .order_by(AuditEvent.id)
    ).all()
    mine = [e for e in events if e.data.get("campaign_id") == campaign.id]
    assert [e.data["change"] for e in mine] == ["created", "started", "paused", "stopped"]
    assert {e.actor_id for e in mine} == {supervisor.id}
    assert mine[-1].data["status"] == "stopped"


def test_do_not_call_changes_are_audited(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    phone = mobile_e164(7_401)
    add_do_not_call(session, actor=supervisor, now=now, phone=phone, reason="Vatandaş istedi")
    add_do_not_call(session, actor=supervisor, now=now, phone=phone, reason="tekrar")  # no-op
    assert remove_do_not_call(session, actor=supervisor, now=now, phone=phone)
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == AuditAction.DO_NOT_CALL_CHANGED)
        .order_by(AuditEvent.id)
    ).all()
    mine = [e for e in events if e.data.get("phone") == phone]
    assert [e.data["change"] for e in mine] == ["added", "removed"]
    assert mine[0].reason == "Vatandaş istedi" and mine[0].actor_id == supervisor.id
