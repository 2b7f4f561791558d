"""Notification dispatch throughput with 2 RQ workers through the file gateway (a benchmark).

Issue 5 target: "notification dispatch with 2 workers through the file gateway (target ≥ 100
messages/s), with the ratio to a bare RQ no-op job in the same run."

What it does, in one process tree, on PostgreSQL (database ``acikkapi_bench_dispatch``,
re-created, migrated and seeded each run) and a private ``redis-server`` (AOF on, random
port):

1. baseline: N bare no-op RQ jobs (``jobs.notifications.noop``) through the same 2
   ``acikkapi worker run`` processes: jobs/s from the first enqueue to the last finish;
2. dispatch: N SMS rows written to the outbox (as intake writes them), then
   ``acikkapi worker schedule`` + the 2 workers send them through the file gateway: messages/s
   from the scheduler's start to the last row marked sent, checking that every row is
   ``sent`` and the gateway holds exactly N messages (one per idempotency key).

Repeated ``--runs`` times (default 3); prints medians. ``--write-docs`` keeps the figures in
docs/benchmarks.md.

Usage: .venv/bin/python bench/notification_dispatch.py [--messages 3000] [--runs 3] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import ROOT, replace_docs_section
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

SECTION_TITLE = "## Notifications: dispatch through RQ (issue 5)"
TARGET_PER_S = 100.0
ACIKKAPI = str(Path(sys.executable).with_name("acikkapi"))
BASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_bench"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database() -> str:
    from acikkapi.db import make_engine
    from acikkapi.migrate import upgrade

    base = make_url(BASE_URL)
    name = "acikkapi_bench_dispatch"
    admin = make_engine(base.render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def one_run(n: int, url: str, work: Path) -> dict[str, float]:
    from redis import Redis
    from rq import Queue

    from acikkapi.db import make_engine
    from jobs.notifications import noop
    from models import Language, Notification, NotificationChannel, OutboxStatus

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    port = free_port()
    redis_proc = start(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(work),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        dict(os.environ),
        work / "redis.log",
    )
    r = Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            break
        except Exception:
            time.sleep(0.1)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACIKKAPI_", "DATABASE_", "REDIS_"))
    }
    env.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "ACIKKAPI_INSTANCE_DIR": str(work / "instance"),
            "ACIKKAPI_SMS_GATEWAY": "file",
            "ACIKKAPI_SMS_FILE_DIR": str(work / "sms"),
        }
    )
    engine = make_engine(url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM notifications"))
        workers = [
            start(
                [ACIKKAPI, "worker", "run", "--name", f"bench-{i}-{port}"], env, work / f"w{i}.log"
            )
            for i in (1, 2)
        ]
        procs += workers
        # 1. baseline: bare no-op jobs through the same two workers.
        q = Queue("notifications", connection=r)
        time.sleep(2)  # both workers registered and idle
        t0 = time.perf_counter()
        jobs = [q.enqueue(noop, result_ttl=60) for _ in range(n)]
        last = jobs[-1]
        while q.count or last.get_status(refresh=True) != "finished":
            time.sleep(0.02)
        while any(j.get_status(refresh=True) != "finished" for j in jobs[-4:]):
            time.sleep(0.02)
        noop_s = time.perf_counter() - t0
        # 2. the outbox: N rows as intake writes them, then the scheduler starts dispatch.
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(Notification),
                [
                    {
                        "idempotency_key": f"bench:{i}",
                        "channel": NotificationChannel.SMS,
                        "recipient": f"+90532{i:07d}",
                        "template": "ticket_opened",
                        "language": Language.TR,
                        "payload": {"reference_code": f"BNCH-{i:06d}"},
                        "status": OutboxStatus.PENDING,
                        "attempts": 0,
                        "created_at": now,
                        "available_at": now,
                    }
                    for i in range(n)
                ],
            )
        t1 = time.perf_counter()
        procs.append(start([ACIKKAPI, "worker", "schedule"], env, work / "scheduler.log"))
        with engine.connect() as conn:
            while True:
                sent = conn.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.status == OutboxStatus.SENT)
                )
                conn.rollback()
                if sent == n:
                    break
                time.sleep(0.05)
        dispatch_s = time.perf_counter() - t1
        files = len(list((work / "sms").glob("*.json")))
        with engine.connect() as conn:
            attempts = conn.scalar(select(func.sum(Notification.attempts)))
        return {
            "noop_per_s": n / noop_s,
            "sent_per_s": n / dispatch_s,
            "files": files,
            "attempts": float(attempts or 0),
            "dispatch_s": dispatch_s,
            "noop_s": noop_s,
        }
    finally:
        for p in procs:
            stop(p)
        stop(redis_proc)
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    url = fresh_database()
    results = []
    with tempfile.TemporaryDirectory(prefix="ak-dispatch-") as tmp:
        for i in range(args.runs):
            res = one_run(args.messages, url, Path(tmp) / f"run{i}")
            print(
                f"run {i + 1}: no-op {res['noop_per_s']:.0f} jobs/s, "
                f"dispatch {res['sent_per_s']:.0f} messages/s ({res['dispatch_s']:.1f} s), "
                f"files {res['files']}, attempts {res['attempts']:.0f}",
                flush=True,
            )
            results.append(res)
    load_after = os.getloadavg()
    noop = statistics.median(r["noop_per_s"] for r in results)
    sent = statistics.median(r["sent_per_s"] for r in results)
    exact = all(r["files"] == args.messages and r["attempts"] == args.messages for r in results)
    verdict = "met" if sent >= TARGET_PER_S else "NOT met"
    lines = [
        SECTION_TITLE,
        "",
        f"Latest run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, PostgreSQL (same machine), private redis-server "
        f"(AOF on); load average before {load_before[0]:.2f}, after {load_after[0]:.2f}.",
        "",
        f"{args.messages:,} SMS rows in the outbox, 2 `acikkapi worker run` processes "
        "(RQ's SimpleWorker: jobs run in the worker process), "
        "`acikkapi worker schedule` leasing rows in batches of 25, "
        f"file gateway (one JSON file per message). {args.runs} runs, medians:",
        "",
        "| Measurement | per second (median) | runs |",
        "|---|---:|---|",
        f"| bare RQ no-op job, same 2 workers (baseline) | {noop:.0f} jobs | "
        + ", ".join(f"{r['noop_per_s']:.0f}" for r in results)
        + " |",
        f"| **outbox → gateway**, messages sent and settled | **{sent:.0f}** messages | "
        + ", ".join(f"{r['sent_per_s']:.0f}" for r in results)
        + " |",
        "",
        f"Ratio messages/s ÷ no-op jobs/s: {sent / noop:.2f} (a batch job carries 25 messages, so "
        "the ratio can exceed 1). Every run ended with every row `sent`, exactly one gateway file "
        f"per row and one attempt per row: {'yes' if exact else 'NO'}.",
        "",
        f"Target of issue 5 (≥ {TARGET_PER_S:.0f} messages/s with 2 workers): "
        f"{sent:.0f} — **{verdict}**.",
        "",
        "Command:",
        "",
        "```sh",
        f".venv/bin/python bench/notification_dispatch.py --messages {args.messages} "
        f"--runs {args.runs} --write-docs",
        "```",
        "",
    ]
    text_out = "\n".join(lines)
    print(text_out)
    if args.write_docs:
        replace_docs_section(SECTION_TITLE, text_out)
        print(f"written to {ROOT / 'docs' / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
