"""The dialer's policy on SQLite and PostgreSQL (R5.6; decision 0021).

Time travels through ``now``: the suite's fixed moment is Tuesday 24 November 2026, 10:00
in Istanbul, inside the default window (Mon–Sat 10:00–19:00).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
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
    Holiday,
)
from services.campaign_targets import NOTE_DO_NOT_CALL, TargetRow, add_targets
from services.campaigns import (
    CampaignSettings,
    create_campaign,
    pause_campaign,
    start_campaign,
    stop_campaign,
)
from services.dialer import (
    AGENT_RETRY,
    AttemptOrder,
    attempt_answered,
    campaign_for_attempt,
    claim_due_attempts,
    mark_originated,
    record_outcome,
    recover_stale_attempts,
)
from services.do_not_call import add_do_not_call
from tests.factories import mobile_e164

IST = ZoneInfo("Europe/Istanbul")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=IST)


def make_campaign(
    session: Session, now: datetime, targets: int, seed: int, **settings: object
) -> Campaign:
    """A RUNNING campaign with ``targets`` numbers (seeded so tests never share numbers)."""
    values: dict[str, object] = {"name": f"Test {seed}", "kind": CampaignKind.SURVEY}
    values.update(settings)
    campaign = create_campaign(
        session,
        actor=None,
        now=now,
        settings=CampaignSettings(**values),  # type: ignore[arg-type]
        target_source=CampaignTargetSource.CSV,
        target_criteria={"file": "test.csv"},
    )
    rows = [TargetRow(phone=mobile_e164(seed * 1000 + i)) for i in range(targets)]
    imported = add_targets(session, now=now, campaign_id=campaign.id, rows=rows)
    assert imported.added == targets
    start_campaign(session, actor=None, now=now, campaign_id=campaign.id)
    return campaign


def claims(session: Session, now: datetime, campaign: Campaign, **kw: object) -> list[AttemptOrder]:
    orders = claim_due_attempts(session, now=now, worker="w1", **kw)  # type: ignore[arg-type]
    return [o for o in orders if o.campaign_id == campaign.id]


def in_flight(session: Session, campaign: Campaign) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(
                CallAttempt.campaign_id == campaign.id,
                CallAttempt.status.in_((AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)),
            )
        )
        or 0
    )


def target_of(session: Session, order: AttemptOrder) -> CampaignTarget:
    target = session.get(CampaignTarget, order.target_id, populate_existing=True)
    assert target is not None
    return target


def test_claims_never_exceed_max_concurrent(session: Session) -> None:
    """R5.6: at most max_concurrent calls of a campaign in flight, however often we claim."""
    campaign = make_campaign(session, TUESDAY_10, 10, 101, max_concurrent=3, calls_per_second=50)
    now = TUESDAY_10
    first = claims(session, now, campaign)
    assert len(first) == 3 and in_flight(session, campaign) == 3
    assert claims(session, now + timedelta(seconds=5), campaign) == []
    for order in first[:2]:
        assert mark_originated(session, now=now, attempt_id=order.attempt_id)
    assert claims(session, now + timedelta(seconds=6), campaign) == []
    record_outcome(session, now=now, attempt_id=first[0].attempt_id, outcome=AttemptStatus.ANSWERED)
    again = claims(session, now + timedelta(seconds=7), campaign)
    assert len(again) == 1 and in_flight(session, campaign) == 3
    assert {o.target_id for o in again}.isdisjoint({o.target_id for o in first})


def test_claim_returns_what_the_worker_needs(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 102)
    (order,) = claims(session, TUESDAY_10, campaign)
    target = target_of(session, order)
    assert order.number == 1 and order.kind == CampaignKind.SURVEY
    assert order.phone_e164 == mobile_e164(102_000) == target.phone_e164
    assert target.status == CampaignTargetStatus.DIALING and target.attempts == 1
    attempt = session.get(CallAttempt, order.attempt_id)
    assert attempt is not None and attempt.status == AttemptStatus.CLAIMED
    assert attempt.worker == "w1" and attempt.lease_until == TUESDAY_10 + timedelta(seconds=30)
    assert campaign_for_attempt(session, order.attempt_id) == order
    assert campaign_for_attempt(session, "no-such-attempt") is None


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 29, 12, 0, tzinfo=IST),  # Sunday (window Mon–Sat)
        datetime(2026, 11, 24, 9, 59, tzinfo=IST),  # before hours
        datetime(2026, 11, 24, 19, 0, tzinfo=IST),  # after hours
        datetime(2026, 10, 29, 12, 0, tzinfo=IST),  # Republic Day (bundled holiday row)
        datetime(2026, 10, 28, 14, 0, tzinfo=IST),  # the afternoon of its half-day eve
    ],
)
def test_nothing_is_claimed_outside_the_window(session: Session, moment: datetime) -> None:
    campaign = make_campaign(session, moment - timedelta(days=30), 2, 103)
    assert claims(session, moment, campaign) == []
    assert in_flight(session, campaign) == 0


def test_a_holiday_row_added_by_staff_closes_the_window(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 2, 104, calls_per_second=10)
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=IST)
    session.add(Holiday(day=date(2026, 11, 25), name_tr="Yerel tatil", name_en="Local holiday"))
    session.flush()
    assert claims(session, wednesday_noon, campaign) == []
    assert len(claims(session, wednesday_noon + timedelta(days=1), campaign)) == 2


def test_holidays_do_not_close_a_campaign_that_calls_on_holidays(session: Session) -> None:
    republic_day = datetime(2026, 10, 29, 12, 0, tzinfo=IST)  # a Thursday
    campaign = make_campaign(
        session, republic_day - timedelta(days=1), 1, 105, skip_holidays=False, window_days="4"
    )
    assert len(claims(session, republic_day, campaign)) == 1


def test_pacing_allows_at_most_cps_claims_per_second(session: Session) -> None:
    """cps=5: however often the worker asks, at most 5 claims fall in one second of now."""
    campaign = make_campaign(session, TUESDAY_10, 40, 106, max_concurrent=50, calls_per_second=5)
    per_second: Counter[int] = Counter()
    moment = TUESDAY_10
    for _ in range(40):  # ask every 100 ms for four seconds
        got = claims(session, moment, campaign)
        per_second[int((moment - TUESDAY_10).total_seconds())] += len(got)
        moment += timedelta(milliseconds=100)
    assert max(per_second.values()) <= 5
    assert sum(per_second.values()) == 20  # and it does keep the pace: 4 s × 5/s


def test_slow_pacing_spaces_claims_across_seconds(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 5, 107, max_concurrent=10, calls_per_second=0.5)
    got = [len(claims(session, TUESDAY_10 + timedelta(seconds=s), campaign)) for s in range(6)]
    assert got == [1, 0, 1, 0, 1, 0]


def test_busy_and_no_answer_are_retried_after_spacing_then_exhausted(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 108, max_attempts=3, retry_spacing_minutes=30)
    now = TUESDAY_10
    outcomes = [AttemptStatus.BUSY, AttemptStatus.NO_ANSWER, AttemptStatus.BUSY]
    numbers = []
    for outcome in outcomes:
        (order,) = claims(session, now, campaign)
        numbers.append(order.number)
        assert mark_originated(session, now=now, attempt_id=order.attempt_id)
        assert record_outcome(session, now=now, attempt_id=order.attempt_id, outcome=outcome)
        target = target_of(session, order)
        assert target.last_outcome == outcome
        if outcome is not outcomes[-1] or len(numbers) < 3:
            assert target.status == CampaignTargetStatus.PENDING
            assert target.next_attempt_at == now + timedelta(minutes=30)
            assert claims(session, now + timedelta(minutes=29), campaign) == []  # not yet due
        now += timedelta(minutes=30)
    assert numbers == [1, 2, 3]
    assert target.status == CampaignTargetStatus.EXHAUSTED and target.completed_at is not None
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.FINISHED


def test_answered_target_is_done_with_result_and_campaign_finishes(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 2, 109, max_concurrent=2, calls_per_second=10)
    first, second = claims(session, TUESDAY_10, campaign)
    assert attempt_answered(session, now=TUESDAY_10, attempt_id=first.attempt_id)
    assert not attempt_answered(session, now=TUESDAY_10, attempt_id=first.attempt_id)
    assert record_outcome(
        session,
        now=TUESDAY_10,
        attempt_id=first.attempt_id,
        outcome=AttemptStatus.ANSWERED,
        result="complete",
    )
    target = target_of(session, first)
    assert target.status == CampaignTargetStatus.DONE and target.result == "complete"
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.RUNNING  # the second call is still dialling
    record_outcome(
        session, now=TUESDAY_10, attempt_id=second.attempt_id, outcome=AttemptStatus.ANSWERED
    )
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.FINISHED and campaign.finished_at == TUESDAY_10


def test_first_outcome_wins_and_replays_change_nothing(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 110)
    (order,) = claims(session, TUESDAY_10, campaign)
    assert mark_originated(session, now=TUESDAY_10, attempt_id=order.attempt_id)
    assert mark_originated(session, now=TUESDAY_10, attempt_id=order.attempt_id)  # repeat: ok
    assert record_outcome(
        session, now=TUESDAY_10, attempt_id=order.attempt_id, outcome=AttemptStatus.NO_ANSWER
    )
    assert not record_outcome(
        session, now=TUESDAY_10, attempt_id=order.attempt_id, outcome=AttemptStatus.ANSWERED
    )
    assert not record_outcome(
        session, now=TUESDAY_10, attempt_id="unknown", outcome=AttemptStatus.ANSWERED
    )
    assert not mark_originated(session, now=TUESDAY_10, attempt_id=order.attempt_id)
    assert not attempt_answered(session, now=TUESDAY_10, attempt_id=order.attempt_id)
    attempt = session.get(CallAttempt, order.attempt_id, populate_existing=True)
    assert attempt is not None and attempt.status == AttemptStatus.NO_ANSWER
    target = target_of(session, order)
    assert target.status == CampaignTargetStatus.PENDING and target.attempts == 1
    with pytest.raises(ValueError):
        record_outcome(
            session, now=TUESDAY_10, attempt_id=order.attempt_id, outcome=AttemptStatus.CLAIMED
        )


def test_pause_stops_new_claims_but_in_flight_calls_finish(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 3, 111, max_concurrent=1)
    (order,) = claims(session, TUESDAY_10, campaign)
    pause_campaign(session, actor=None, now=TUESDAY_10, campaign_id=campaign.id)
    later = TUESDAY_10 + timedelta(minutes=5)
    assert record_outcome(
        session, now=later, attempt_id=order.attempt_id, outcome=AttemptStatus.ANSWERED
    )
    assert claims(session, later, campaign) == []
    start_campaign(session, actor=None, now=later, campaign_id=campaign.id)
    assert len(claims(session, later, campaign)) == 1


def test_stop_cancels_pending_targets_and_lets_the_call_in_flight_end(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 3, 112, max_concurrent=1)
    (order,) = claims(session, TUESDAY_10, campaign)
    stop_campaign(session, actor=None, now=TUESDAY_10, campaign_id=campaign.id)
    statuses = Counter(
        session.scalars(
            select(CampaignTarget.status).where(CampaignTarget.campaign_id == campaign.id)
        )
    )
    assert statuses == {CampaignTargetStatus.CANCELLED: 2, CampaignTargetStatus.DIALING: 1}
    assert claims(session, TUESDAY_10 + timedelta(hours=1), campaign) == []
    assert record_outcome(
        session, now=TUESDAY_10, attempt_id=order.attempt_id, outcome=AttemptStatus.BUSY
    )
    assert target_of(session, order).status == CampaignTargetStatus.CANCELLED  # no retry
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.STOPPED


def test_stale_claim_is_failed_and_retried_with_the_next_number(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 113, retry_spacing_minutes=10)
    (lost,) = claims(session, TUESDAY_10, campaign)
    assert recover_stale_attempts(session, now=TUESDAY_10 + timedelta(seconds=29)) == 0
    assert recover_stale_attempts(session, now=TUESDAY_10 + timedelta(seconds=31)) == 1
    attempt = session.get(CallAttempt, lost.attempt_id, populate_existing=True)
    assert attempt is not None and attempt.status == AttemptStatus.FAILED
    assert attempt.reason == "worker lost before originate"
    # A late outcome of the lost attempt changes nothing: the failure was first.
    assert not record_outcome(
        session, now=TUESDAY_10, attempt_id=lost.attempt_id, outcome=AttemptStatus.ANSWERED
    )
    (retry,) = claims(session, TUESDAY_10 + timedelta(minutes=11), campaign)
    assert retry.target_id == lost.target_id and retry.number == 2
    # Attempt 2 of the target exists once: writing it again fails in the database.
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            CallAttempt(
                id="dup-attempt-2",
                campaign_id=campaign.id,
                target_id=retry.target_id,
                number=2,
                status=AttemptStatus.CLAIMED,
                created_at=TUESDAY_10,
            )
        )
        session.flush()


def test_originated_attempt_without_outcome_fails_after_the_long_lease(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 114, max_attempts=1)
    (order,) = claims(session, TUESDAY_10, campaign)
    mark_originated(session, now=TUESDAY_10, attempt_id=order.attempt_id)
    assert recover_stale_attempts(session, now=TUESDAY_10 + timedelta(minutes=5)) == 0
    assert recover_stale_attempts(session, now=TUESDAY_10 + timedelta(hours=2, seconds=1)) == 1
    attempt = session.get(CallAttempt, order.attempt_id, populate_existing=True)
    assert attempt is not None and attempt.reason == "no outcome reported"
    assert target_of(session, order).status == CampaignTargetStatus.EXHAUSTED


def test_answer_extends_the_lease_of_a_claim_not_yet_marked_originated(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 115)
    (order,) = claims(session, TUESDAY_10, campaign)
    assert attempt_answered(session, now=TUESDAY_10, attempt_id=order.attempt_id)
    assert recover_stale_attempts(session, now=TUESDAY_10 + timedelta(minutes=10)) == 0
    attempt = session.get(CallAttempt, order.attempt_id, populate_existing=True)
    assert attempt is not None and attempt.status == AttemptStatus.ORIGINATED


def test_running_campaign_with_only_skipped_targets_finishes(session: Session) -> None:
    campaign = make_campaign(session, TUESDAY_10, 1, 116)
    (order,) = claims(session, TUESDAY_10, campaign)
    record_outcome(
        session, now=TUESDAY_10, attempt_id=order.attempt_id, outcome=AttemptStatus.ANSWERED
    )
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.FINISHED
    assert claims(session, TUESDAY_10 + timedelta(seconds=1), campaign) == []


# --- concurrency on PostgreSQL: separate connections, committed data ----------------------


def _cleanup(engine: Engine, campaign_ids: list[int]) -> None:
    with Session(engine) as session, session.begin():
        session.execute(delete(CallAttempt).where(CallAttempt.campaign_id.in_(campaign_ids)))
        session.execute(delete(CampaignTarget).where(CampaignTarget.campaign_id.in_(campaign_ids)))
        session.execute(delete(Campaign).where(Campaign.id.in_(campaign_ids)))


def test_concurrent_claimers_never_share_a_target_or_exceed_the_cap(
    postgresql_engine: Engine,
) -> None:
    """Four workers claim at once, repeatedly: no target twice, never above max_concurrent."""
    engine = postgresql_engine
    with Session(engine) as setup, setup.begin():
        campaign = make_campaign(setup, TUESDAY_10, 60, 117, max_concurrent=7, calls_per_second=50)
        campaign_id = campaign.id
    try:
        taken: list[AttemptOrder] = []
        per_step: Counter[int] = Counter()
        errors: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(4)

        def worker(i: int) -> None:
            try:
                for step in range(12):
                    now = TUESDAY_10 + timedelta(seconds=step)
                    barrier.wait()
                    with Session(engine) as session, session.begin():
                        got = [
                            o
                            for o in claim_due_attempts(session, now=now, worker=f"w{i}")
                            if o.campaign_id == campaign_id
                        ]
                        assert in_flight_count(session, campaign_id) <= 7
                    with lock:
                        taken.extend(got)
                        per_step[step] += len(got)
                    barrier.wait()
                    with Session(engine) as session, session.begin():
                        for order in got:
                            record_outcome(
                                session,
                                now=now,
                                attempt_id=order.attempt_id,
                                outcome=AttemptStatus.ANSWERED,
                            )
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        targets = [o.target_id for o in taken]
        assert len(targets) == len(set(targets)) == 60
        # Every step starts with nothing in flight: all workers together took at most 7.
        assert max(per_step.values()) == 7 and len(per_step) >= 9
        with Session(engine) as session:
            attempts = session.scalar(
                select(func.count())
                .select_from(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
            )
            status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        assert attempts == 60 and status == CampaignStatus.FINISHED
    finally:
        _cleanup(engine, [campaign_id])


def in_flight_count(session: Session, campaign_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(
                CallAttempt.campaign_id == campaign_id,
                CallAttempt.status.in_((AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)),
            )
        )
        or 0
    )


def test_concurrent_outcomes_of_one_attempt_record_one(postgresql_engine: Engine) -> None:
    engine = postgresql_engine
    with Session(engine) as setup, setup.begin():
        campaign = make_campaign(setup, TUESDAY_10, 1, 118)
        campaign_id = campaign.id
        (order,) = claims(setup, TUESDAY_10, campaign)
    try:
        results: list[bool] = []
        barrier = threading.Barrier(3)

        def report(outcome: AttemptStatus) -> None:
            barrier.wait()
            with Session(engine) as session, session.begin():
                results.append(
                    record_outcome(
                        session, now=TUESDAY_10, attempt_id=order.attempt_id, outcome=outcome
                    )
                )

        outcomes = [AttemptStatus.ANSWERED, AttemptStatus.BUSY, AttemptStatus.FAILED]
        threads = [threading.Thread(target=report, args=(o,)) for o in outcomes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == [False, False, True]
        with Session(engine) as session:
            target = session.get(CampaignTarget, order.target_id)
            assert target is not None and target.attempts == 1
            n = session.scalar(
                select(func.count())
                .select_from(CallAttempt)
                .where(CallAttempt.target_id == order.target_id)
            )
            assert n == 1
    finally:
        _cleanup(engine, [campaign_id])


def test_an_agent_who_does_not_pick_up_costs_the_citizen_no_callback_attempt(
    session: Session,
) -> None:
    """Agent first (R5.3): when the agent's phone is not answered the citizen was never
    called, so that attempt does not count against ``max_attempts``; once an agent answered,
    the citizen's outcome counts as usual."""
    now = TUESDAY_10
    campaign = make_campaign(
        session, now, 1, 131, kind=CampaignKind.CALLBACK, max_attempts=2, calls_per_second=50
    )
    spacing = timedelta(minutes=campaign.retry_spacing_minutes)
    [first] = claims(session, now, campaign)
    assert record_outcome(
        session, now=now, attempt_id=first.attempt_id, outcome=AttemptStatus.NO_ANSWER
    )
    target = target_of(session, first)
    assert target.status is CampaignTargetStatus.PENDING
    assert target.next_attempt_at == now + AGENT_RETRY  # soon, not after the spacing
    moment = now + AGENT_RETRY
    for number, final in ((2, CampaignTargetStatus.PENDING), (3, CampaignTargetStatus.EXHAUSTED)):
        [order] = claims(session, moment, campaign)
        assert order.number == number
        assert attempt_answered(session, now=moment, attempt_id=order.attempt_id)
        assert record_outcome(
            session, now=moment, attempt_id=order.attempt_id, outcome=AttemptStatus.BUSY
        )
        assert target_of(session, order).status is final
        moment += spacing


def test_an_opt_out_recorded_mid_campaign_is_honoured_at_the_next_claim(
    session: Session,
) -> None:
    """R5.6: a number put on the do-not-call list after the targets were added is never
    dialled; a campaign whose last targets are skipped that way finishes."""
    now = TUESDAY_10
    campaign = make_campaign(session, now, 2, 141, calls_per_second=50)
    numbers = [mobile_e164(141_000), mobile_e164(141_001)]
    add_do_not_call(session, actor=None, now=now, phone=numbers[0], reason="Vatandaş istedi")
    [order] = claims(session, now, campaign)
    assert order.phone_e164 == numbers[1]
    skipped = session.scalars(
        select(CampaignTarget).where(
            CampaignTarget.campaign_id == campaign.id, CampaignTarget.phone_e164 == numbers[0]
        )
    ).one()
    assert skipped.status is CampaignTargetStatus.SKIPPED and skipped.note == NOTE_DO_NOT_CALL
    add_do_not_call(session, actor=None, now=now, phone=numbers[1], reason=None)
    assert record_outcome(session, now=now, attempt_id=order.attempt_id, outcome=AttemptStatus.BUSY)
    later = now + timedelta(minutes=campaign.retry_spacing_minutes)
    assert claims(session, later, campaign) == []  # the retry is not dialled either
    session.flush()
    assert campaign.status is CampaignStatus.FINISHED
