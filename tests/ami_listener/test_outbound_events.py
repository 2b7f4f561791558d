"""Outbound call attempts in recorded AMI streams → dialer outcomes (R5.6, decision 0021).

The transcripts ``transcripts/outbound/*.txt`` were recorded from Asterisk 22 by
tests/telephony/test_outbound_dialer.py (``ACIKKAPI_RECORD_TRANSCRIPTS=1``), then trimmed
to the frames that mention a call attempt: a keypad survey answered ("complete"), an
information message heard to the end, a trunk answering 486 Busy, and a phone that rang
until the Originate gave up. They are replayed through :class:`OutboundStage` into real
SQLite and PostgreSQL databases (the ``session`` fixture).

The busy recording is the reason for the stage's grace period: Asterisk reports
``OriginateResponse`` ``Reason: 0`` (failed) *before* the dialplan's ``busy`` user event.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ami_listener.framing import AmiEvent
from ami_listener.outbound_events import (
    AttemptEvent,
    OutboundStage,
    hangup_outcome,
    parse_event,
)
from ami_listener.replay import load_events
from models import (
    AttemptStatus,
    CallAttempt,
    CampaignKind,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
)
from services.campaign_targets import TargetRow, add_targets
from services.campaigns import CampaignSettings, create_campaign, start_campaign
from tests.ami_listener.conftest import inline, transaction_on

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "outbound"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
_CHANNEL_DIGITS = re.compile(r"^Local/(\d+)@acikkapi-outbound-dial")


def events(name: str) -> list[AmiEvent]:
    return load_events(TRANSCRIPTS / name)


def attempts_in(stream: list[AmiEvent]) -> list[tuple[str, str]]:
    """(attempt id, dialled digits) in the order the attempts' channels appeared."""
    seen: list[tuple[str, str]] = []
    for event in stream:
        if event.get("Event") != "Newchannel":
            continue
        item = parse_event(event)
        match = _CHANNEL_DIGITS.match(event.get("Channel", ""))
        if item is not None and match is not None:
            seen.append((item.attempt_id, match.group(1)))
    return seen


def e164(digits: str) -> str:
    return "+90" + digits[1:]


def seed_attempts(
    session: Session, stream: list[AmiEvent], kind: CampaignKind, *, max_attempts: int = 3
) -> dict[str, CallAttempt]:
    """A running campaign with one target per dialled number and, for every attempt of the
    recording, a CLAIMED attempt row with the recorded id (numbered per target)."""
    seen = attempts_in(stream)
    assert seen, "no attempt in the recording"
    campaign = create_campaign(
        session,
        actor=None,
        now=NOW,
        settings=CampaignSettings(
            name=f"replay {kind}",
            kind=kind,
            window_days="1234567",
            window_start=time(0),
            window_end=time(23, 59),
            max_attempts=max_attempts,
        ),
        target_source=CampaignTargetSource.CSV,
        target_criteria={},
    )
    phones = sorted({e164(d) for _a, d in seen})
    add_targets(session, now=NOW, campaign_id=campaign.id, rows=[TargetRow(p) for p in phones])
    start_campaign(session, actor=None, now=NOW, campaign_id=campaign.id)
    targets = {
        t.phone_e164: t
        for t in session.scalars(
            select(CampaignTarget).where(CampaignTarget.campaign_id == campaign.id)
        )
    }
    rows: dict[str, CallAttempt] = {}
    for attempt_id, digits in seen:
        target = targets[e164(digits)]
        target.attempts += 1
        target.status = CampaignTargetStatus.DIALING
        rows[attempt_id] = CallAttempt(
            id=attempt_id,
            campaign_id=campaign.id,
            target_id=target.id,
            number=target.attempts,
            status=AttemptStatus.CLAIMED,
            worker="replay",
            lease_until=NOW,
            created_at=NOW,
        )
        session.add(rows[attempt_id])
    session.flush()
    return rows


async def replay(
    session: Session, stream: list[AmiEvent], *, grace: float = 0.2, times: int = 1
) -> OutboundStage:
    """Feed ``stream`` (``times`` over) to a running stage as the listener does; stop it when
    every event, held fallbacks included, is applied."""
    stage = OutboundStage(transaction_on(session), offload=inline, grace=grace, clock=lambda: NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    for _ in range(times):
        for event in stream:
            stage.feed(event)
    await asyncio.sleep(grace + 0.3)  # the held fallbacks are released and queued
    await stage.drain()
    stop.set()
    await task
    return stage


def run(coro: Callable[[], Any]) -> Any:
    return asyncio.run(coro())


def status_of(session: Session, attempt_id: str) -> CallAttempt:
    attempt = session.get(CallAttempt, attempt_id, populate_existing=True)
    assert attempt is not None
    return attempt


# --- parsing (no database) -------------------------------------------------------------------


def test_parse_survey_recording() -> None:
    stream = events("survey.txt")
    parsed = [p for p in map(parse_event, stream) if p is not None]
    ids = [a for a, _d in attempts_in(stream)]
    results = [p for p in parsed if p.step == "outcome" and not p.fallback]
    assert {p.attempt_id for p in results} == set(ids)
    assert {(p.outcome, p.result) for p in results} == {(AttemptStatus.ANSWERED, "complete")}
    # the dialling half (Uniqueid "<id>-dial") and the trunk channel are not attempts
    assert all(p.attempt_id in ids for p in parsed)
    answered = {p.attempt_id for p in parsed if p.step == "answered"}
    assert answered == set(ids)


def test_parse_busy_recording_reason_0_comes_first() -> None:
    stream = events("busy.txt")
    first: dict[str, AttemptEvent] = {}
    for item in filter(None, map(parse_event, stream)):
        if item.step in ("outcome", "hangup"):
            first.setdefault(item.attempt_id, item)
    assert len(first) == 6, "six busy attempts in the recording"
    # A race inside Asterisk: for some calls "failed" (Reason 0) comes before the dialplan.
    early = [i for i in first.values() if i.fallback]
    assert early, "the recording no longer shows the race"
    assert {(i.outcome, i.reason) for i in early} == {(AttemptStatus.FAILED, "originate reason 0")}


def test_parse_ignores_other_events_and_malformed_user_events() -> None:
    assert parse_event({"Event": "Newchannel", "Uniqueid": "1796682488.2"}) is None
    assert parse_event({"Event": "Hangup", "Uniqueid": "abc-dial", "Cause": "16"}) is None
    assert parse_event({"Event": "UserEvent", "UserEvent": "Other", "Attempt": "x"}) is None
    uid = "0b4c1e2a-6f5d-4c3b-9a8e-7d6c5b4a3f2e"
    bad = {"Event": "UserEvent", "UserEvent": "AkAttemptResult", "Attempt": uid}
    assert parse_event({**bad, "Outcome": "maybe"}) is None
    good = parse_event({**bad, "Outcome": "Busy"})
    assert good == AttemptEvent(uid, "outcome", AttemptStatus.BUSY, reason="dialplan: Busy")
    response = {"Event": "OriginateResponse", "Response": "Failure", "Reason": "5"}
    by_action = parse_event({**response, "Uniqueid": "<null>", "ActionID": f"ak-dial-{uid}"})
    assert by_action is not None and by_action.outcome == AttemptStatus.BUSY
    assert parse_event({**response, "Reason": "1", "Uniqueid": uid}) is None


@pytest.mark.parametrize(
    ("answered", "cause", "outcome"),
    [
        (True, 16, AttemptStatus.ANSWERED),
        (False, 17, AttemptStatus.BUSY),
        (False, 19, AttemptStatus.NO_ANSWER),
        (False, 16, AttemptStatus.NO_ANSWER),
        (False, 34, AttemptStatus.FAILED),
        (False, None, AttemptStatus.FAILED),
    ],
)
def test_hangup_outcome(answered: bool, cause: int | None, outcome: AttemptStatus) -> None:
    assert hangup_outcome(answered, cause) == outcome


# --- replayed into SQLite and PostgreSQL -----------------------------------------------------


def test_survey_recording_answered_with_result(session: Session) -> None:
    stream = events("survey.txt")
    rows = seed_attempts(session, stream, CampaignKind.SURVEY)
    run(lambda: replay(session, stream))
    for attempt_id in rows:
        attempt = status_of(session, attempt_id)
        assert attempt.status == AttemptStatus.ANSWERED
        assert attempt.originated_at is not None and attempt.answered_at is not None
        target = session.get(CampaignTarget, attempt.target_id, populate_existing=True)
        assert target is not None
        assert (target.status, target.result) == (CampaignTargetStatus.DONE, "complete")


def test_message_recording_answered_and_heard(session: Session) -> None:
    stream = events("message.txt")
    (attempt_id,) = seed_attempts(session, stream, CampaignKind.EVENT_INVITATION)
    run(lambda: replay(session, stream))
    attempt = status_of(session, attempt_id)
    assert attempt.status == AttemptStatus.ANSWERED
    target = session.get(CampaignTarget, attempt.target_id, populate_existing=True)
    assert target is not None and target.result == "heard"


def test_busy_recording_is_busy_not_failed(session: Session) -> None:
    """The dialplan's ``busy`` wins over the earlier ``Reason: 0`` thanks to the grace."""
    stream = events("busy.txt")
    rows = seed_attempts(session, stream, CampaignKind.RESOLUTION_INFO)
    assert len(rows) == 6
    run(lambda: replay(session, stream))
    for attempt_id in rows:
        attempt = status_of(session, attempt_id)
        assert (attempt.status, attempt.reason) == (AttemptStatus.BUSY, "dialplan: busy")
    for target in session.scalars(
        select(CampaignTarget).where(CampaignTarget.campaign_id == attempt.campaign_id)
    ):
        session.refresh(target)
        assert target.status == CampaignTargetStatus.EXHAUSTED
        assert target.last_outcome == AttemptStatus.BUSY


def test_no_answer_recording(session: Session) -> None:
    stream = events("no_answer.txt")
    rows = seed_attempts(session, stream, CampaignKind.DELAY_NOTICE, max_attempts=2)
    run(lambda: replay(session, stream))
    assert {status_of(session, a).status for a in rows} == {AttemptStatus.NO_ANSWER}


def test_without_grace_the_first_fallback_would_win(session: Session) -> None:
    """Why the grace exists: applied in arrival order, some busy calls would read as failed."""
    stream = events("busy.txt")
    rows = seed_attempts(session, stream, CampaignKind.RESOLUTION_INFO)
    run(lambda: replay(session, stream, grace=0))
    assert AttemptStatus.FAILED in {status_of(session, a).status for a in rows}


def test_replaying_twice_changes_nothing(session: Session) -> None:
    """First outcome wins: the same stream again (a reconnect, a replay) is harmless."""
    stream = events("survey.txt")
    rows = seed_attempts(session, stream, CampaignKind.SURVEY)
    stage = run(lambda: replay(session, stream, times=2))
    assert {status_of(session, a).status for a in rows} == {AttemptStatus.ANSWERED}
    assert stage.stats.failed == 0


def test_listener_marks_a_claimed_attempt_originated(session: Session) -> None:
    """A worker died between sending the Originate and ``mark_originated``: the channel's
    ``Newchannel`` alone moves the attempt to ORIGINATED with the long lease, so recovery
    does not fail a call that is ringing."""
    stream = events("message.txt")
    (attempt_id,) = seed_attempts(session, stream, CampaignKind.EVENT_INVITATION)
    newchannel = [
        e for e in stream if e.get("Event") == "Newchannel" and e.get("Uniqueid") == attempt_id
    ]
    run(lambda: replay(session, newchannel))
    attempt = status_of(session, attempt_id)
    assert attempt.status == AttemptStatus.ORIGINATED
    assert attempt.lease_until is not None and attempt.lease_until > NOW
