"""Test data builders for outbound calling (R5, decision 0021): resolved tickets to survey,
campaigns, targets and call attempts written directly as the dialer leaves them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    StaffUser,
    Ticket,
)
from services.intake import open_ticket
from services.ticket_workflow import resolve_ticket
from tests.factories import mobile, request, valid_tc


def resolved_ticket(
    session: Session,
    agent: StaffUser,
    now: datetime,
    seed: int,
    *,
    resolved_after: timedelta = timedelta(hours=2),
) -> Ticket:
    """A ticket opened by ``agent`` at ``now`` for the citizen of ``seed`` (TC and mobile),
    resolved ``resolved_after`` later (flushed)."""
    ticket = open_ticket(
        session, agent, now, request(tc_number=valid_tc(seed), phone=mobile(seed))
    ).ticket
    resolve_ticket(session, agent, now + resolved_after, ticket, "Çukur asfaltlandı.")
    session.flush()
    return ticket


def add_campaign(
    session: Session,
    now: datetime,
    kind: CampaignKind = CampaignKind.SURVEY,
    *,
    name: str = "Anket",
    status: CampaignStatus = CampaignStatus.RUNNING,
) -> Campaign:
    """A campaign of resolved tickets in ``status``, written directly (flushed)."""
    campaign = Campaign(
        name=name,
        kind=kind,
        status=status,
        target_source=CampaignTargetSource.RESOLVED_TICKETS,
        target_criteria={},
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    return campaign


def add_target(
    session: Session,
    now: datetime,
    campaign_id: int,
    ticket: Ticket,
    phone_e164: str,
    status: CampaignTargetStatus,
    **fields: Any,
) -> CampaignTarget:
    """The target ``phone_e164`` about ``ticket`` (dedupe key ``<phone>:<ticket id>``) in
    ``status``; ``fields`` are further columns (flushed)."""
    target = CampaignTarget(
        campaign_id=campaign_id,
        dedupe_key=f"{phone_e164}:{ticket.id}",
        phone_e164=phone_e164,
        ticket_id=ticket.id,
        status=status,
        created_at=now,
        **fields,
    )
    session.add(target)
    session.flush()
    return target


def add_attempt(
    session: Session,
    now: datetime,
    target: CampaignTarget,
    status: AttemptStatus = AttemptStatus.ORIGINATED,
    number: int = 1,
) -> CallAttempt:
    """Attempt ``number`` of ``target`` in ``status`` (originated at ``now`` when that is
    its status), keyed by a fresh UUID as the dialer does (flushed)."""
    attempt = CallAttempt(
        id=str(uuid.uuid4()),
        campaign_id=target.campaign_id,
        target_id=target.id,
        number=number,
        status=status,
        created_at=now,
        originated_at=now if status is AttemptStatus.ORIGINATED else None,
    )
    session.add(attempt)
    session.flush()
    return attempt


def dial(session: Session, now: datetime, target: CampaignTarget) -> CallAttempt:
    """An attempt in flight as the dialer writes it (claimed, then originated)."""
    target.attempts += 1
    target.status = CampaignTargetStatus.DIALING
    return add_attempt(session, now, target, number=target.attempts)
