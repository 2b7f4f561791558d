"""Benchmark (issue 4 item 11): 50 concurrent console users on the big data set, through a
real ``acikkapi console run`` (waitress) subprocess: throughput and latency per page.

Each simulated user is a signed-in session with its own keep-alive connection, in one of
``--procs`` client processes (threads inside), doing a realistic mix until the run ends:

- agents (60 %): search the caller's phone (written as people say it), open the citizen's
  360° record, poll their queue state (the agent screen does every 10 s), now and then a
  ticket; each agent also holds its screen-pop stream (``GET /agent/events``) open, as an
  open agent screen does — one waitress thread each;
- desk staff and unit chiefs (20 %): search by TC number or reference code, the citizen
  record, tickets;
- supervisors and advisors (10 %): the wallboard refresh, tickets, the KVKK access log;
- department liaisons (10 %): tickets of their own department.

Runs: one user without pauses (the per-request floor on the real server), ``--users``
users with think time (``--think`` s on average, exponential: people reading a screen),
and ``--users`` users without think time (saturation: the most the console serves).
Latency is measured at the client (loopback, keep-alive). The console's CPU share is read
from /proc; the client processes share the same 2 cores, so their CPU is reported too.

Writes to the bench database: the sign-ins (audit rows, ``last_login_at``), passwords of
the staff used (only users without one), and one ``citizen_opened`` audit row per citizen
record opened (reason ``bench console``) — the console cannot show personal data without
recording it. Nothing else is written; the data set is not changed.

Usage:
    .venv/bin/python bench/console_users.py            # 1 user; 50 with think time; 50 flat out
    .venv/bin/python bench/console_users.py --seconds 30 --users 20
    .venv/bin/python bench/console_users.py --write-docs
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import console_common as cc
from _common import DEFAULT_URL, replace_docs_section

SECTION_TITLE = "## Console: 50 concurrent users (issue 4)"
WHY = "?why=bench%20console"
MIX = (("agent", 0.6), ("desk", 0.2), ("supervisor", 0.1), ("liaison", 0.1))
ROLES = {  # user kind -> role names to sign in as
    "agent": ["agent"],
    "desk": ["desk_staff", "unit_chief"],
    "supervisor": ["supervisor", "advisor"],
    "liaison": ["department_liaison"],
}


def spoken(e164: str) -> str:
    national = "0" + e164[3:]
    return f"{national[:4]}+{national[4:7]}+{national[7:9]}+{national[9:]}"


def load_samples(url: str, n: int, seed: int) -> dict[str, Any]:
    """Random citizens (id, phone, TC) and tickets (id, code, department) — reads only."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from acikkapi.db import make_engine
    from models import Citizen, CitizenPhone, StaffUser, Ticket

    rng = random.Random(seed)
    engine = make_engine(url)
    with Session(engine) as s:
        low, high = s.execute(select(func.min(Citizen.id), func.max(Citizen.id))).one()
        ids = [rng.randint(low, high) for _ in range(n)]
        citizens = [
            (cid, e164, tc)
            for cid, e164, tc in s.execute(
                select(Citizen.id, func.min(CitizenPhone.e164), Citizen.tc_number)
                .join(CitizenPhone, CitizenPhone.citizen_id == Citizen.id)
                .where(Citizen.id.in_(ids), Citizen.tc_number.is_not(None))
                .group_by(Citizen.id, Citizen.tc_number)
            )
        ]
        t_low, t_high = s.execute(select(func.min(Ticket.id), func.max(Ticket.id))).one()
        tids = [rng.randint(t_low, t_high) for _ in range(n)]
        tickets = [
            (tid, code, dept)
            for tid, code, dept in s.execute(
                select(Ticket.id, Ticket.reference_code, Ticket.department_id).where(
                    Ticket.id.in_(tids), Ticket.reference_code.is_not(None)
                )
            )
        ]
        liaison_departments = dict(
            s.execute(
                select(StaffUser.username, StaffUser.department_id).where(
                    StaffUser.department_id.is_not(None)
                )
            ).all()
        )
        by_department: dict[int, list[int]] = defaultdict(list)
        for dept in {d for d in liaison_departments.values() if d is not None}:
            rows = s.execute(
                select(Ticket.id)
                .where(Ticket.department_id == dept, Ticket.id >= rng.randint(t_low, t_high))
                .order_by(Ticket.id)
                .limit(50)
            )
            by_department[dept] = [r[0] for r in rows]
    engine.dispose()
    return {
        "citizens": citizens,
        "tickets": tickets,
        "liaison_departments": liaison_departments,
        "by_department": dict(by_department),
    }


# --------------------------------------------------------------------------------------------
# one simulated user


def _actions(kind: str, rng: random.Random, samples: dict[str, Any], user: str) -> list[str]:
    """The next few requests of a user of ``kind`` (one "task")."""
    citizens, tickets = samples["citizens"], samples["tickets"]
    cid, e164, tc = rng.choice(citizens)
    tid, code, _dept = rng.choice(tickets)
    if kind == "agent":
        roll = rng.random()
        if roll < 0.45:
            return [f"/search?q={spoken(e164)}", f"/citizens/{cid}{WHY}"]
        if roll < 0.8:
            return ["/agent/state"]
        if roll < 0.95:
            return [f"/search?q={code}", f"/tickets/{tid}"]
        return [f"/citizens/{cid}{WHY}"]
    if kind == "desk":
        roll = rng.random()
        if roll < 0.5:
            return [f"/search?q={tc}", f"/citizens/{cid}{WHY}"]
        return [f"/search?q={code}", f"/tickets/{tid}"]
    if kind == "supervisor":
        roll = rng.random()
        if roll < 0.6:
            return ["/wallboard/board"]
        if roll < 0.9:
            return [f"/tickets/{tid}"]
        return ["/audit"]
    own = samples["by_department"].get(samples["liaison_departments"].get(user), [])
    return [f"/tickets/{rng.choice(own)}"] if own else ["/search"]


def _page(path: str) -> str:
    """The page kind of ``path`` (the report's rows)."""
    if path.startswith("/search?q=0"):
        return "search: phone"
    if path.startswith("/search?q="):
        rest = path[len("/search?q=") :]
        return "search: TC number" if rest.isdigit() else "search: reference code"
    for prefix, name in (
        ("/citizens/", "citizen 360°"),
        ("/tickets/", "ticket"),
        ("/agent/state", "agent: queue state"),
        ("/wallboard/board", "wallboard refresh"),
        ("/audit", "KVKK access log"),
    ):
        if path.startswith(prefix):
            return name
    return "other"


def _stream(host: str, port: int, cookie: str, stop: threading.Event) -> None:
    """Hold the agent's screen-pop stream open (as an open agent screen does)."""
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request(
                "GET", "/agent/events", headers={"Accept": "text/event-stream", "Cookie": cookie}
            )
            response = conn.getresponse()
            while not stop.is_set() and response.fp.readline():
                pass
        except OSError:
            time.sleep(0.5)
        finally:
            conn.close()


def client_process(
    host: str,
    port: int,
    users: list[tuple[str, str, str]],  # (kind, username, cookie)
    samples: dict[str, Any],
    seconds: float,
    warmup: float,
    think: float,
    streams: bool,
    seed: int,
    start_at: float,
    pipe: Any,
) -> None:
    results: list[tuple[str, float, int]] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    end = start_at + warmup + seconds

    def user_loop(index: int, kind: str, username: str, cookie: str) -> None:
        rng = random.Random(seed * 1000 + index)
        client = cc.Http(host, port)
        client.cookies.update(dict(p.split("=", 1) for p in cookie.split("; ") if "=" in p))
        headers = {"X-Requested-With": "fetch"}
        while time.time() < start_at:
            time.sleep(0.01)
        while time.time() < end:
            for path in _actions(kind, rng, samples, username):
                try:
                    response = client.get(path, headers=headers if "board" in path else None)
                    status = response.status
                except OSError as exc:
                    status, response = 0, None
                    with lock:
                        errors.append(f"{path}: {exc}")
                finished = time.time()
                if start_at + warmup <= finished <= end:
                    with lock:
                        results.append((_page(path), response.ms if response else 0.0, status))
                if think:
                    time.sleep(min(rng.expovariate(1 / think), 5 * think))
        client.close()

    threads = []
    for index, (kind, username, cookie) in enumerate(users):
        if streams and kind == "agent":
            holder = threading.Thread(target=_stream, args=(host, port, cookie, stop), daemon=True)
            holder.start()
        thread = threading.Thread(target=user_loop, args=(index, kind, username, cookie))
        thread.start()
        threads.append(thread)
    cpu0 = time.process_time()
    for thread in threads:
        thread.join()
    stop.set()
    pipe.send({"results": results, "errors": errors[:20], "cpu": time.process_time() - cpu0})
    pipe.close()


# --------------------------------------------------------------------------------------------
# runs


def assign(users: int, signed: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str, str]]:
    """``users`` sessions by the mix: (kind, username, cookie), cycling through each kind's
    signed-in sessions."""
    out: list[tuple[str, str, str]] = []
    counts = {kind: max(1, round(users * share)) for kind, share in MIX}
    while sum(counts.values()) > users:
        biggest = max(counts, key=lambda k: counts[k])
        counts[biggest] -= 1
    for kind, count in counts.items():
        pool = signed[kind]
        for k in range(count):
            username, cookie = pool[k % len(pool)]
            out.append((kind, username, cookie))
    return out[:users]


def run(
    args: argparse.Namespace,
    server: cc.Server,
    sessions: list[tuple[str, str, str]],
    samples: dict[str, Any],
    *,
    think: float,
    label: str,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    procs = min(args.procs, len(sessions))
    parts = [sessions[k::procs] for k in range(procs)]
    start_at = time.time() + 3.0
    pipes, children = [], []
    for k, part in enumerate(parts):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=client_process,
            args=(
                server.host,
                server.port,
                part,
                samples,
                args.seconds,
                args.warmup,
                think,
                not args.no_streams,
                args.seed + k,
                start_at,
                child,
            ),
        )
        proc.start()
        pipes.append(parent)
        children.append(proc)
    time.sleep(max(0.0, start_at + args.warmup - time.time()))
    cpu0 = cc.process_cpu_seconds(server.pid())
    load0 = os.getloadavg()
    t0 = time.time()
    time.sleep(max(0.0, start_at + args.warmup + args.seconds - time.time()))
    cpu = cc.process_cpu_seconds(server.pid()) - cpu0
    wall = time.time() - t0
    load1 = os.getloadavg()
    results: list[tuple[str, float, int]] = []
    errors: list[str] = []
    client_cpu = 0.0
    for parent, proc in zip(pipes, children, strict=True):
        got = parent.recv() if parent.poll(args.seconds + 120) else {"results": [], "errors": []}
        results += got["results"]
        errors += got["errors"]
        client_cpu += got.get("cpu", 0.0)
        proc.join(30)
    by_page: dict[str, list[float]] = defaultdict(list)
    failed = 0
    for page, ms, status in results:
        if status in (200, 204):
            by_page[page].append(ms)
        else:
            failed += 1
    every = [ms for values in by_page.values() for ms in values]
    outcome = {
        "label": label,
        "users": len(sessions),
        "think": think,
        "requests": len(results),
        "failed": failed,
        "errors": errors[:5],
        "throughput": len(results) / args.seconds,
        "all": cc.summary(every),
        "pages": {page: cc.summary(values) for page, values in sorted(by_page.items())},
        "server_cpu_pct": 100 * cpu / wall if wall else 0.0,
        "client_cpu_pct": 100 * client_cpu / (args.seconds + args.warmup),
        "load": (load0[0], load1[0]),
    }
    cc.log(
        f"{label}: {outcome['throughput']:.1f} requests/s, {cc.describe(outcome['all'])}, "
        f"failed {failed}, console CPU {outcome['server_cpu_pct']:.0f}%, clients "
        f"{outcome['client_cpu_pct']:.0f}%"
    )
    for page, s in outcome["pages"].items():
        cc.log(f"    {page}: {cc.describe(s)}")
    return outcome


def render(args: argparse.Namespace, runs: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    f = cc.fmt_ms
    lines = [
        SECTION_TITLE,
        "",
        f"Latest run: {facts['started']} — {facts['machine']}, {facts['db']}; "
        f"`acikkapi console run --threads {args.threads}` (waitress) on `acikkapi_bench` "
        f"(1 M citizens, 5 M tickets); clients in {args.procs} processes on the same machine.",
        "",
        "Users and their mix: agents 60 % (phone search → citizen 360°, queue-state polling, "
        "tickets; each holds its screen-pop stream open, one waitress thread per agent), desk "
        "staff and unit chiefs 20 % (TC / reference search, citizen, ticket), supervisors 10 % "
        "(wallboard refresh, tickets, access log), department liaisons 10 % (their tickets). "
        f"{args.seconds:g} s measured after {args.warmup:g} s of warm-up; latency at the client "
        "(loopback, keep-alive).",
        "",
        "| Run | users | think time | requests/s | p50 ms | p95 ms | p99 ms | failed "
        "| console CPU | client CPU | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        a = r["all"]
        think = f"{r['think']:g} s" if r["think"] else "none"
        lines.append(
            f"| {r['label']} | {r['users']} | {think} | {r['throughput']:.1f} | {f(a['p50'])} | "
            f"**{f(a['p95'])}** | {f(a['p99'])} | {r['failed']} | {r['server_cpu_pct']:.0f}% | "
            f"{r['client_cpu_pct']:.0f}% | {r['load'][0]:.2f} → {r['load'][1]:.2f} |"
        )
    pages = sorted({p for r in runs for p in r["pages"]})
    lines += [
        "",
        "p50 / p95 ms per page and run:",
        "",
        "| Page | " + " | ".join(r["label"] for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for page in pages:
        cells = []
        for r in runs:
            s = r["pages"].get(page)
            cells.append(f"{f(s['p50'])} / {f(s['p95'])} (n={int(s['n'])})" if s else "—")
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    flat = runs[-1]
    cpu_ms = 10 * flat["server_cpu_pct"] / flat["throughput"] if flat["throughput"] else 0.0
    lines += [
        "",
        "Where the time goes:",
        "",
        f"- Flat out, the console process uses {flat['server_cpu_pct']:.0f} % of a core "
        f"({cpu_ms:.0f} ms of CPU per request on average): one Python process runs one thread "
        "at a time (GIL), so the threads only overlap their database waits; PostgreSQL and "
        "the clients use the other core. Past that point more users only queue: latency ≈ "
        "users ÷ throughput.",
        "- More throughput therefore needs less Python per page (the citizen record's "
        "statements and template, see the section above) or more console processes behind "
        "the reverse proxy (sessions are signed cookies, every process has its own screen-pop "
        "hub reading the Redis stream) on a machine with more cores.",
        "- Each open agent screen holds one waitress thread for its event stream: "
        f"{args.threads} threads leave {args.threads - round(args.users * MIX[0][1])} for "
        "requests with these users.",
    ]
    lines += [
        "",
        f"Audit rows written by the run (sign-ins and citizen records opened): "
        f"{facts['audit_rows']:,}.",
        "",
        "Command:",
        "",
        "```sh",
        ".venv/bin/python bench/console_users.py --write-docs",
        "```",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--think", type=float, default=2.0, help="mean think time, seconds")
    parser.add_argument("--threads", type=int, default=64, help="waitress threads")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--no-streams", action="store_true", help="agents hold no SSE stream")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    import psycopg
    from _common import libpq_dsn

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with psycopg.connect(libpq_dsn(args.database_url)) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()
        audit_before = int(row[0]) if row else 0
    wanted = {role: 10 for names in ROLES.values() for role in names}
    found = cc.give_passwords(args.database_url, wanted)
    cc.log(f"users: { {k: len(v) for k, v in found.items()} }")
    samples = load_samples(args.database_url, 4000, args.seed)
    cc.log(f"samples: {len(samples['citizens'])} citizens, {len(samples['tickets'])} tickets")
    facts: dict[str, Any] = {
        "started": started,
        "machine": cc.machine(),
        "db": cc.postgres(args.database_url),
    }
    runs = []
    tmp = tempfile.TemporaryDirectory(prefix="ak-console-users-")
    with (
        tmp,
        cc.console_server(
            args.database_url, Path(tmp.name) / "instance", threads=args.threads
        ) as server,
    ):
        signed: dict[str, list[tuple[str, str]]] = {}
        per_kind = {kind: max(1, round(args.users * share)) for kind, share in MIX}
        for kind, names in ROLES.items():
            pool = [u for role in names for u in found.get(role, [])]
            if not pool:
                raise SystemExit(f"no {kind} user could be given the bench password")
            signed[kind] = []
            for k in range(per_kind[kind]):  # one session per simulated user
                username = pool[k % len(pool)]
                http = cc.sign_in(server.host, server.port, username)
                signed[kind].append((username, cc.cookie_header(http)))
                http.close()
        one = [("agent", *signed["agent"][0])]
        runs.append(run(args, server, one, samples, think=0.0, label="1 agent, no pauses"))
        everyone = assign(args.users, signed)
        runs.append(
            run(args, server, everyone, samples, think=args.think, label=f"{args.users} users")
        )
        runs.append(
            run(
                args,
                server,
                everyone,
                samples,
                think=0.0,
                label=f"{args.users} users, no pauses",
            )
        )
    with psycopg.connect(libpq_dsn(args.database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_events WHERE id > %s", (audit_before,)
        ).fetchone()
        facts["audit_rows"] = int(row[0]) if row else 0
    text = render(args, runs, facts)
    print(text)
    if args.write_docs:
        path = replace_docs_section(SECTION_TITLE, text)
        cc.log(f"wrote {path}")


if __name__ == "__main__":
    main()
