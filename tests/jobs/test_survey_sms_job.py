"""The survey SMS fallback's periodic safety net (jobs.surveys, R5.2) on a committed SQLite
database, called as the scheduler's worker calls it (its own transactions)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import jobs.runtime
from acikkapi.db import make_engine
from acikkapi.migrate import upgrade
from jobs.surveys import send_survey_sms_fallbacks
from models import (
    CampaignStatus,
    CampaignTargetStatus,
    Channel,
    Language,
    Notification,
)
from services.actors import system_actor
from services.intake import open_ticket
from services.ticket_workflow import resolve_ticket
from tests.conftest import _seed
from tests.factories import mobile, mobile_e164, request, valid_tc
from tests.outbound_factories import add_campaign, add_target


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ACIKKAPI_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setattr(jobs.runtime, "_current", None)
    yield url
    if jobs.runtime._current is not None:
        jobs.runtime._current.close()
    monkeypatch.setattr(jobs.runtime, "_current", None)


def test_the_job_asks_each_exhausted_survey_target_once(database: str) -> None:
    now = datetime.now(UTC)
    engine = make_engine(database)
    with Session(engine) as session:
        actor = system_actor(session, "test", now)
        ticket = open_ticket(
            session,
            actor,
            now,
            request(Channel.PHONE, tc_number=valid_tc(9301), phone=mobile(9301)),
        ).ticket
        resolve_ticket(session, actor, now, ticket, "Onarıldı.")
        campaign = add_campaign(session, now, status=CampaignStatus.FINISHED)
        add_target(
            session,
            now,
            campaign.id,
            ticket,
            mobile_e164(9301),
            CampaignTargetStatus.EXHAUSTED,
            citizen_id=ticket.citizen_id,
            language=Language.TR,
            attempts=3,
            completed_at=now,
        )
        session.commit()
        ticket_id = ticket.id
    assert send_survey_sms_fallbacks() == 1
    assert send_survey_sms_fallbacks() == 0  # idempotent: a repeated run asks nobody twice
    with Session(engine) as session:
        sent = list(
            session.scalars(
                select(Notification).where(
                    Notification.ticket_id == ticket_id,
                    Notification.template == "survey_sms_request",
                )
            )
        )
    engine.dispose()
    assert [n.recipient for n in sent] == [mobile_e164(9301)]
