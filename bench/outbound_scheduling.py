"""Outbound dialer scheduling overhead: a 10,000-target campaign end to end (not a test).

Issue 6 / decision 0021. What it measures is the database work the dialer's policy adds per
call attempt, with a fake clock (no Asterisk, no sleeping):

1. ``services.campaign_targets.add_targets`` of 10,000 CSV numbers (normalise, dedupe,
   do-not-call check, batched insert) and its commit.
2. Until every target is final: ``claim_due_attempts`` (worker batch of ``--limit``,
   committed), then per attempt ``mark_originated`` (committed) and ``record_outcome``
   (committed) with a seeded mix of outcomes — answered 55 %, no answer 25 %, busy 15 %,
   failed 5 % — so about 45 % of calls are retried (max 3 attempts, 5 min spacing), and
   ``--lost`` per mille of claims are never originated, so ``recover_stale_attempts``
   (run every loop) fails them after the 30 s lease and the target is retried. The clock
   moves 1 s per loop, and jumps to the next due retry when nothing is due.
3. Per attempt overhead = its share of the claim transaction + its two event transactions
   (+ its share of recovery). Median and p99 (nearest rank), and the total.
4. Baseline in the same process and database: the same transaction shape on a bare table
   (one INSERT per attempt committed by the batch, then two single-row UPDATEs each
   committed) — the least any design that writes an attempt row and its two state changes
   can cost. The ratio says what the policy (locks, counts, window, pacing, target and
   campaign updates) adds.

It ends with ``lost outcomes: N`` read from the database: attempts not terminal plus
targets not final (0 expected). Figures only; no assertions on time.

Usage:
    .venv/bin/python bench/outbound_scheduling.py [--targets 10000] [--database-url URL]
SQLite always (a fresh file, migrated); PostgreSQL too when ``--database-url`` is given
(migrated to head if needed; the campaign's rows are deleted afterwards).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.migrate import upgrade
from models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignKind,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
)
from services.campaign_targets import TargetRow, add_targets
from services.campaigns import CampaignSettings, create_campaign, start_campaign
from services.dialer import (
    claim_due_attempts,
    mark_originated,
    record_outcome,
    recover_stale_attempts,
)

T0 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday 10:00 in Istanbul
OUTCOMES = [
    (AttemptStatus.ANSWERED, 55),
    (AttemptStatus.NO_ANSWER, 25),
    (AttemptStatus.BUSY, 15),
    (AttemptStatus.FAILED, 5),
]
FINAL = (
    CampaignTargetStatus.DONE,
    CampaignTargetStatus.EXHAUSTED,
    CampaignTargetStatus.SKIPPED,
    CampaignTargetStatus.CANCELLED,
)


def _us(seconds: float) -> float:
    return seconds * 1e6


def run_dialer(engine: Engine, targets: int, limit: int, lost_per_mille: int) -> int:
    rng = random.Random(6)
    choices = [o for o, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    with Session(engine) as session:
        campaign = create_campaign(
            session,
            actor=None,
            now=T0,
            settings=CampaignSettings(
                name="Bench anketi",
                kind=CampaignKind.SURVEY,
                window_days="1234567",
                window_start=datetime.min.time(),
                window_end=datetime.max.time().replace(microsecond=0),
                skip_holidays=False,
                max_attempts=3,
                retry_spacing_minutes=5,
                max_concurrent=50,
                calls_per_second=50,
            ),
            target_source=CampaignTargetSource.CSV,
            target_criteria={"file": "bench.csv"},
        )
        session.commit()
        campaign_id = campaign.id
    # Distinct valid mobiles; a few per mille duplicated to exercise dedupe.
    rows = [TargetRow(phone=f"+90533{i:07d}", name=f"Kişi {i}") for i in range(targets)]
    rows += rows[: targets // 200]
    started = time.perf_counter()
    with Session(engine) as session:
        imported = add_targets(session, now=T0, campaign_id=campaign_id, rows=rows)
        session.commit()
    add_s = time.perf_counter() - started
    print(
        f"  add_targets: {len(rows)} rows → added {imported.added}, duplicates "
        f"{imported.duplicates}, errors {len(imported.errors)} in {add_s * 1000:.0f} ms "
        f"({_us(add_s) / len(rows):.0f} µs/row)"
    )
    with Session(engine) as session:
        start_campaign(session, actor=None, now=T0, campaign_id=campaign_id)
        session.commit()

    per_attempt: list[float] = []
    now = T0
    loops = 0
    total_started = time.perf_counter()
    recovery_s = 0.0
    while True:
        loops += 1
        t = time.perf_counter()
        with Session(engine) as session:
            recovered = recover_stale_attempts(session, now=now)
            session.commit()
        recovery_s += time.perf_counter() - t
        t = time.perf_counter()
        with Session(engine) as session:
            orders = claim_due_attempts(session, now=now, worker="bench", limit=limit)
            session.commit()
        claim_share = (time.perf_counter() - t) / len(orders) if orders else 0.0
        for order in orders:
            if rng.randrange(1000) < lost_per_mille:
                continue  # the worker "dies" before originating: recovery's job
            t = time.perf_counter()
            with Session(engine) as session:
                mark_originated(session, now=now, attempt_id=order.attempt_id)
                session.commit()
            outcome = rng.choices(choices, weights)[0]
            with Session(engine) as session:
                record_outcome(
                    session,
                    now=now + timedelta(milliseconds=500),
                    attempt_id=order.attempt_id,
                    outcome=outcome,
                    result="complete" if outcome == AttemptStatus.ANSWERED else None,
                )
                session.commit()
            per_attempt.append(claim_share + time.perf_counter() - t)
        if not orders and not recovered:
            with Session(engine) as session:  # not timed: the fake clock's bookkeeping
                status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
                if status is not None and status.value == "finished":
                    break
                due = session.scalar(
                    select(func.min(CampaignTarget.next_attempt_at)).where(
                        CampaignTarget.campaign_id == campaign_id,
                        CampaignTarget.status == CampaignTargetStatus.PENDING,
                    )
                )
                lease = session.scalar(
                    select(func.min(CallAttempt.lease_until)).where(
                        CallAttempt.campaign_id == campaign_id,
                        CallAttempt.status.in_((AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)),
                    )
                )
            candidates = [m for m in (due, lease) if m is not None]
            if not candidates:
                break
            now = max(now + timedelta(seconds=1), min(candidates) + timedelta(seconds=1))
        else:
            now += timedelta(seconds=1)
    total_s = time.perf_counter() - total_started
    with Session(engine) as session:
        attempts = session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id)
        )
        not_terminal = session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .where(
                CallAttempt.campaign_id == campaign_id,
                CallAttempt.status.in_((AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)),
            )
        )
        not_final = session.scalar(
            select(func.count())
            .select_from(CampaignTarget)
            .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.status.not_in(FINAL))
        )
        by_status = dict(
            session.execute(
                select(CampaignTarget.status, func.count())
                .where(CampaignTarget.campaign_id == campaign_id)
                .group_by(CampaignTarget.status)
            ).all()
        )
        campaign_status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    print(
        f"  dialer: {attempts} attempts in {loops} loops, fake clock {now - T0}; targets "
        + ", ".join(f"{k.value} {v}" for k, v in sorted(by_status.items()))
        + f"; campaign {campaign_status.value if campaign_status else '?'}"
    )
    print(
        f"  per-attempt scheduling overhead: median {_us(percentile(per_attempt, 50)):.0f} µs,"
        f" p99 {_us(percentile(per_attempt, 99)):.0f} µs over {len(per_attempt)} reported "
        f"attempts; recovery sweeps {recovery_s:.2f} s; total {total_s:.2f} s"
    )
    baseline(engine, len(per_attempt), limit, per_attempt)
    print(f"  lost outcomes: {(not_terminal or 0) + (not_final or 0)}")
    return campaign_id


def baseline(engine: Engine, n: int, batch: int, per_attempt: list[float]) -> None:
    """The same transaction shape on a bare table: batched INSERT, then two UPDATEs."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_outbound_baseline"))
        conn.execute(
            text(
                "CREATE TABLE bench_outbound_baseline (id INTEGER PRIMARY KEY, "
                "status VARCHAR(16) NOT NULL, at TIMESTAMP NULL)"
            )
        )
    timings: list[float] = []
    insert = text("INSERT INTO bench_outbound_baseline (id, status) VALUES (:id, 'claimed')")
    update = text("UPDATE bench_outbound_baseline SET status = :s, at = :at WHERE id = :id")
    started = time.perf_counter()
    for first in range(0, n, batch):
        ids = list(range(first, min(n, first + batch)))
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(insert, [{"id": i} for i in ids])
        share = (time.perf_counter() - t) / len(ids)
        for i in ids:
            t = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(update, {"s": "originated", "at": datetime(2026, 1, 1), "id": i})
            with engine.begin() as conn:
                conn.execute(update, {"s": "answered", "at": datetime(2026, 1, 1), "id": i})
            timings.append(share + time.perf_counter() - t)
    total = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_outbound_baseline"))
    median = percentile(timings, 50)
    print(
        f"  baseline (bare INSERT + 2 UPDATEs, same commits): median {_us(median):.0f} µs, "
        f"p99 {_us(percentile(timings, 99)):.0f} µs, total {total:.2f} s; "
        f"ratio dialer/baseline: median {percentile(per_attempt, 50) / median:.1f}×, "
        f"p99 {percentile(per_attempt, 99) / percentile(timings, 99):.1f}×"
    )


def cleanup(engine: Engine, campaign_id: int) -> None:
    with Session(engine) as session, session.begin():
        session.execute(delete(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        session.execute(delete(CampaignTarget).where(CampaignTarget.campaign_id == campaign_id))
        session.execute(delete(Campaign).where(Campaign.id == campaign_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=50, help="claims per worker batch")
    parser.add_argument("--lost", type=int, default=10, help="per mille never originated")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_OUTBOUND_URL"))
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/outbound.db"
        upgrade(url)
        engine = make_engine(url)
        print(f"SQLite ({url}):")
        run_dialer(engine, args.targets, args.limit, args.lost)
        engine.dispose()
    if args.database_url:
        upgrade(args.database_url)
        engine = make_engine(args.database_url)
        print(f"PostgreSQL ({engine.url.render_as_string(hide_password=True)}):")
        campaign_id = run_dialer(engine, args.targets, args.limit, args.lost)
        cleanup(engine, campaign_id)
        engine.dispose()


if __name__ == "__main__":
    main()
