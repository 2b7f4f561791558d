"""The dialer's tick (outbound.jobs.dial_once) against a committed SQLite database, with the
PBX replaced by stand-ins: what happens when the PBX cannot be reached, when it accepts,
and when a tick runs out of time (decision 0021; issue 6 item 2, R5.6). The real PBX path
is tests/telephony/test_outbound_dialer.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import outbound.jobs
from acikkapi.db import make_engine, make_session_factory
from acikkapi.migrate import upgrade
from models import (
    AttemptStatus,
    CallAttempt,
    CampaignKind,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
)
from outbound.jobs import dial_once
from services.campaign_targets import TargetRow, add_targets
from services.campaigns import CampaignSettings, create_campaign, start_campaign
from tests.conftest import _seed
from tests.factories import at, mobile_e164

TUESDAY_11 = at(2026, 11, 24, 11)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'dial.db'}"
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        campaign = create_campaign(
            session,
            actor=None,
            now=TUESDAY_11,
            settings=CampaignSettings(
                name="Tick", kind=CampaignKind.SURVEY, max_concurrent=3, calls_per_second=50
            ),
            target_source=CampaignTargetSource.CSV,
            target_criteria={},
        )
        rows = [TargetRow(phone=mobile_e164(151_000 + i)) for i in range(3)]
        add_targets(session, now=TUESDAY_11, campaign_id=campaign.id, rows=rows)
        start_campaign(session, actor=None, now=TUESDAY_11, campaign_id=campaign.id)
    return factory


class Accepting:
    """Stands in for the AMI connection: Asterisk accepts every Originate."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []

    async def action(
        self,
        fields: Mapping[str, Any],
        *,
        timeout: float | None = None,
        as_list: bool | None = None,
    ) -> dict[str, str]:
        self.sent.append(fields)
        return {"Response": "Success", "Message": "Originate successfully queued"}


def _targets(sessions: sessionmaker[Session]) -> list[tuple[CampaignTargetStatus, int]]:
    with sessions() as session:
        return [
            (t.status, t.attempts)
            for t in session.scalars(select(CampaignTarget).order_by(CampaignTarget.id))
        ]


def _attempts(sessions: sessionmaker[Session]) -> list[AttemptStatus]:
    with sessions() as session:
        return list(session.scalars(select(CallAttempt.status).order_by(CallAttempt.number)))


def test_an_unreachable_pbx_claims_nothing_and_spends_no_attempt(
    sessions: sessionmaker[Session],
) -> None:
    @asynccontextmanager
    async def unreachable() -> AsyncIterator[Accepting]:
        raise ConnectionRefusedError("AMI 127.0.0.1:5038 refused")
        yield Accepting()  # pragma: no cover

    for _ in range(3):
        report = dial_once(sessions, unreachable, now=TUESDAY_11)  # type: ignore[arg-type]
        assert report.claimed == 0
    assert _attempts(sessions) == []
    assert _targets(sessions) == [(CampaignTargetStatus.PENDING, 0)] * 3


def test_accepted_originates_are_marked_with_the_attempt_as_channel_id(
    sessions: sessionmaker[Session],
) -> None:
    pbx = Accepting()

    @asynccontextmanager
    async def connect() -> AsyncIterator[Accepting]:
        yield pbx

    report = dial_once(sessions, connect, now=TUESDAY_11)  # type: ignore[arg-type]
    assert (report.claimed, report.originated) == (3, 3)
    assert _attempts(sessions) == [AttemptStatus.ORIGINATED] * 3
    assert [f["ChannelId"] for f in pbx.sent] == report.attempt_ids
    assert _targets(sessions) == [(CampaignTargetStatus.DIALING, 1)] * 3


def test_a_tick_out_of_time_releases_what_it_did_not_send(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the send budget an Originate could race recovery; what was not sent is handed
    back as if never claimed (no attempt spent, number free for the next claim)."""
    monkeypatch.setattr(outbound.jobs, "SEND_BUDGET_S", -1.0)
    pbx = Accepting()

    @asynccontextmanager
    async def connect() -> AsyncIterator[Accepting]:
        yield pbx

    report = dial_once(sessions, connect, now=TUESDAY_11)  # type: ignore[arg-type]
    assert (report.claimed, report.unsent, pbx.sent) == (3, 3, [])
    assert _attempts(sessions) == []
    assert _targets(sessions) == [(CampaignTargetStatus.PENDING, 0)] * 3
    monkeypatch.setattr(outbound.jobs, "SEND_BUDGET_S", 15.0)
    later: datetime = TUESDAY_11.replace(second=5)
    again = dial_once(sessions, connect, now=later)  # type: ignore[arg-type]
    assert again.originated == 3 and _attempts(sessions) == [AttemptStatus.ORIGINATED] * 3
