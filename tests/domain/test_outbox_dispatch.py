"""Outbox leasing and settling (issue 5 item 3; R2.2, R3.4) on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from models import Language, Notification, NotificationChannel, OutboxStatus
from services import outbox, outbox_dispatch

# The database holds rows other tests and the demo data committed, and a process of another
# test may still be adding some. None of them may be claimed or counted here: these tests
# run at a moment long before any of them is due, so at ``now`` only their own rows are.
LONG_AGO = datetime(2001, 3, 6, 7, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return LONG_AGO


def _queue(
    session: Session, now: datetime, n: int, prefix: str = "dispatch-test"
) -> list[Notification]:
    rows = [
        outbox.enqueue(
            session,
            now,
            key=f"{prefix}:{i}",
            channel=NotificationChannel.SMS,
            recipient=f"+90532000{i:04d}",
            template="ticket_opened",
            language=Language.TR,
            payload={"reference_code": f"R{i}"},
        )
        for i in range(n)
    ]
    session.flush()
    return rows


def test_claim_leases_due_rows_once_and_counts_an_attempt(session: Session, now: datetime) -> None:
    rows = _queue(session, now, 3)
    first = outbox_dispatch.claim_due(session, now, limit=10)
    assert sorted(first.claimed) == sorted(r.id for r in rows)
    again = outbox_dispatch.claim_due(session, now + timedelta(seconds=30), limit=10)
    assert again.claimed == []  # leased rows are not handed out twice while the lease runs
    session.expire_all()
    for r in rows:
        assert r.status is OutboxStatus.SENDING
        assert r.attempts == 1
        assert r.available_at == now + outbox_dispatch.LEASE


def test_claim_respects_limit_and_future_rows(session: Session, now: datetime) -> None:
    rows = _queue(session, now, 5)
    rows[4].available_at = now + timedelta(minutes=5)
    session.flush()
    report = outbox_dispatch.claim_due(session, now, limit=2)
    assert len(report.claimed) == 2
    report = outbox_dispatch.claim_due(session, now, limit=10)
    assert len(report.claimed) == 2  # the fifth is not due yet


def test_expired_lease_is_handed_out_again_with_the_same_key(
    session: Session, now: datetime
) -> None:
    (row,) = _queue(session, now, 1)
    outbox_dispatch.claim_due(session, now, limit=1)
    later = now + outbox_dispatch.LEASE + timedelta(seconds=1)
    report = outbox_dispatch.claim_due(session, later, limit=1)
    assert report.claimed == [row.id]
    session.expire_all()
    assert row.attempts == 2 and row.idempotency_key == "dispatch-test:0"


def test_lease_expiring_with_no_attempts_left_goes_dead(session: Session, now: datetime) -> None:
    (row,) = _queue(session, now, 1)
    moment = now
    for _ in range(outbox_dispatch.MAX_ATTEMPTS):
        assert outbox_dispatch.claim_due(session, moment, limit=1).claimed == [row.id]
        moment += outbox_dispatch.LEASE + timedelta(seconds=1)
    report = outbox_dispatch.claim_due(session, moment, limit=1)
    assert report.claimed == [] and report.dead == [row.id]
    session.expire_all()
    assert row.status is OutboxStatus.DEAD
    assert row.last_error == outbox_dispatch.LEASE_EXPIRED
    listed = [n.id for n in outbox_dispatch.dead_letters(session)]
    assert row.id in listed and listed == sorted(listed, reverse=True)  # newest first


def test_mark_sent_applies_once(session: Session, now: datetime) -> None:
    (row,) = _queue(session, now, 1)
    outbox_dispatch.claim_due(session, now, limit=1)
    outbox_dispatch.mark_sent_many(session, now, [(row.id, "p-1")])
    session.expire_all()
    assert row.status is OutboxStatus.SENT
    assert row.provider_message_id == "p-1" and row.sent_at == now
    later = now + timedelta(minutes=1)
    outbox_dispatch.mark_sent_many(session, later, [(row.id, "p-2")])  # a late second answer
    session.expire_all()
    assert row.provider_message_id == "p-1" and row.sent_at == now
    assert outbox_dispatch.leased(session, [row.id]) == []


def test_retryable_failure_backs_off_then_dies(session: Session, now: datetime) -> None:
    (row,) = _queue(session, now, 1)
    rng = random.Random(7)
    moment = now
    delays = []
    for attempt in range(1, outbox_dispatch.MAX_ATTEMPTS + 1):
        assert outbox_dispatch.claim_due(session, moment, limit=1).claimed == [row.id]
        status = outbox_dispatch.mark_failed(
            session, moment, row.id, error="timeout", retryable=True, rng=rng
        )
        session.expire_all()
        if attempt < outbox_dispatch.MAX_ATTEMPTS:
            assert status is OutboxStatus.FAILED
            delays.append(row.available_at - moment)
            moment = row.available_at
        else:
            assert status is OutboxStatus.DEAD
    assert all(
        b >= a * 1.3 or b >= outbox_dispatch.LAST_RETRY * 0.8 for a, b in itertools.pairwise(delays)
    ), delays
    assert delays[0] >= outbox_dispatch.FIRST_RETRY * 0.8
    assert max(delays) <= outbox_dispatch.LAST_RETRY * 1.2
    assert row.last_error == "timeout"


def test_permanent_failure_goes_dead_at_once_and_can_be_requeued(
    session: Session, now: datetime
) -> None:
    (row,) = _queue(session, now, 1)
    outbox_dispatch.claim_due(session, now, limit=1)
    status = outbox_dispatch.mark_failed(
        session, now, row.id, error="invalid number", retryable=False
    )
    assert status is OutboxStatus.DEAD
    assert outbox_dispatch.claim_due(session, now + timedelta(days=1), limit=5).claimed == []
    assert outbox_dispatch.requeue_dead(session, now, row.id)
    assert not outbox_dispatch.requeue_dead(session, now, row.id)
    assert outbox_dispatch.claim_due(session, now, limit=5).claimed == [row.id]


def test_failure_of_a_settled_row_changes_nothing(session: Session, now: datetime) -> None:
    (row,) = _queue(session, now, 1)
    outbox_dispatch.claim_due(session, now, limit=1)
    outbox_dispatch.mark_sent_many(session, now, [(row.id, "p")])
    assert outbox_dispatch.mark_failed(session, now, row.id, error="x", retryable=True) is None
    session.expire_all()
    assert row.status is OutboxStatus.SENT


def test_backlog_counts(session: Session, now: datetime) -> None:
    _queue(session, now, 4)
    counts = outbox_dispatch.backlog(session, now)
    assert counts["due"] == 4
    assert counts["pending"] >= 4


def test_release_hands_rows_back_without_counting_the_attempt(
    session: Session, now: datetime
) -> None:
    rows = _queue(session, now, 2)
    outbox_dispatch.claim_due(session, now, limit=5)
    later = now + timedelta(seconds=70)
    assert outbox_dispatch.release(session, later, [r.id for r in rows]) == 2
    session.expire_all()
    assert all(r.status is OutboxStatus.PENDING and r.attempts == 0 for r in rows)
    assert all(r.available_at == later for r in rows)
    assert sorted(outbox_dispatch.claim_due(session, later, limit=5).claimed) == sorted(
        r.id for r in rows
    )


def test_mark_sent_many_settles_only_leased_rows(session: Session, now: datetime) -> None:
    rows = _queue(session, now, 3)
    outbox_dispatch.claim_due(session, now, limit=2)  # rows[0], rows[1] leased
    outbox_dispatch.mark_sent_many(
        session, now, [(rows[0].id, "p0"), (rows[1].id, "p1"), (rows[2].id, "p2")]
    )
    session.expire_all()
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.SENT, OutboxStatus.PENDING]
    assert [r.provider_message_id for r in rows] == ["p0", "p1", None]
    assert rows[0].sent_at == now


def test_a_held_message_waits_and_only_an_unstarted_one_can_be_withdrawn(
    session: Session, now: datetime
) -> None:
    """Decision 0023: a call's placeholder acknowledgement is held, then withdrawn when the
    agent's ticket absorbs the placeholder — but never once it has started to leave."""
    held = outbox.enqueue(
        session,
        now,
        key="withdraw-test:held",
        channel=NotificationChannel.SMS,
        recipient="+905320000001",
        template="ticket_opened",
        language=Language.TR,
        payload={"reference_code": "H1"},
        available_at=now + timedelta(minutes=10),
    )
    leaving = _queue(session, now, 1, prefix="withdraw-test:leaving")[0]
    claimed = outbox_dispatch.claim_due(session, now, limit=10)
    assert claimed.claimed == [leaving.id]  # the held one is not due yet
    assert not outbox.withdraw(session, "withdraw-test:leaving:0")  # being sent: left alone
    assert outbox.withdraw(session, "withdraw-test:held")
    assert not outbox.withdraw(session, "withdraw-test:held")  # once
    later = outbox_dispatch.claim_due(session, now + timedelta(minutes=11), limit=10)
    assert held.id not in later.claimed  # withdrawn rows are never dispatched
    session.expire_all()
    assert held.status is OutboxStatus.WITHDRAWN and leaving.status is OutboxStatus.SENDING
