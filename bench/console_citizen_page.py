"""Benchmark (issue 4 item 11): server time of the console's heavy pages on the big data set
(1,000,000 citizens, 5,000,000 tickets in ``acikkapi_bench``), p50/p95/p99.

Pages, each requested for a different random citizen / ticket every time:

- the citizen's 360° record ``GET /citizens/<id>`` (card, phones, household, open and past
  tickets with SLA clocks, calls, surveys; the opening is audited);
- the agent's call panel ``GET /agent/calls/<call id>`` (what the screen pop loads: greeting,
  citizen card and history, ticket form, transfer targets; audited);
- search by phone (written as people say it), by TC number, by reference code, and by name;
- a ticket ``GET /tickets/<id>``;
- baseline: a trivial signed-in page (``GET /search`` without a query: session, CSRF token,
  menu, base template) in the same run.

How: the real application (``agent_console.create_app``) on one connection of the bench
database **inside a transaction that is rolled back at the end** (the console tests'
wiring): nothing is written to ``acikkapi_bench`` — not the test password of the two staff
members used, not the audit rows, not the call records made for the call panels (written
through ``services.call_records.apply_fact`` like the AMI listener, with the FastAGI
caller-lookup hint). Server time = the WSGI call (routing, session, permission matrix,
view, services, SQL, template) timed around Flask's test client, one request at a time;
what it leaves out is the HTTP parsing of waitress (the baseline row of
``bench/console_users.py`` has it) and the commit of the audit row, which is a savepoint
here. Statement counts and the time inside the database driver are recorded per request.

Usage:
    .venv/bin/python bench/console_citizen_page.py                 # 300 requests per page
    .venv/bin/python bench/console_citizen_page.py -n 100
    .venv/bin/python bench/console_citizen_page.py --write-docs
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import console_common as cc
from _common import DEFAULT_URL, replace_docs_section

SECTION_TITLE = "## Console: citizen 360° page and search on 5 M tickets (issue 4)"
TARGET_P95_MS = 100.0


class StatementClock:
    """Counts statements and the time spent in the driver on one connection."""

    def __init__(self, connection: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        self.seconds = 0.0
        self._started: list[float] = []
        event.listen(connection, "before_cursor_execute", self._before)
        event.listen(connection, "after_cursor_execute", self._after)

    def _before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, *_args: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop()
        self.count += 1

    def reset(self) -> None:
        self.count, self.seconds = 0, 0.0


def sample(session: Any, n: int, seed: int) -> dict[str, Any]:
    """Random citizens that have a phone and tickets, and random tickets with codes."""
    from sqlalchemy import func, select

    from models import Citizen, CitizenPhone, Ticket

    rng = random.Random(seed)
    low, high = session.execute(select(func.min(Citizen.id), func.max(Citizen.id))).one()
    citizens: list[tuple[int, str, str | None, str]] = []
    while len(citizens) < n:
        ids = [rng.randint(low, high) for _ in range(n * 2)]
        rows = session.execute(
            select(Citizen.id, Citizen.tc_number, Citizen.first_name, Citizen.last_name).where(
                Citizen.id.in_(ids)
            )
        ).all()
        phones = dict(
            session.execute(
                select(CitizenPhone.citizen_id, func.min(CitizenPhone.e164))
                .where(CitizenPhone.citizen_id.in_([r[0] for r in rows]))
                .group_by(CitizenPhone.citizen_id)
            ).all()
        )
        for cid, tc, first, last in rows:
            if cid in phones and len(citizens) < n:
                citizens.append((cid, phones[cid], tc, f"{first or ''} {last or ''}".strip()))
    t_low, t_high = session.execute(select(func.min(Ticket.id), func.max(Ticket.id))).one()
    tickets: list[tuple[int, str]] = []
    while len(tickets) < n:
        ids = [rng.randint(t_low, t_high) for _ in range(n * 2)]
        for tid, code in session.execute(
            select(Ticket.id, Ticket.reference_code).where(Ticket.id.in_(ids))
        ):
            if code and len(tickets) < n:
                tickets.append((tid, code))
    return {"citizens": citizens, "tickets": tickets}


def spoken(e164: str) -> str:
    """``+905321234567`` -> ``0532 123 45 67`` (how an agent types it)."""
    national = "0" + e164[3:]
    return f"{national[:4]} {national[4:7]} {national[7:9]} {national[9:]}"


Citizens = list[tuple[int, str, str | None, str]]  # (id, phone E.164, TC number, name)


def calls_for(
    session: Any, agent: Any, citizens: list[tuple[int, str, str | None, str]]
) -> list[str]:
    """One answered call per citizen, as the listener writes it (in the rolled-back
    transaction): started, caller-lookup hint, queued, answered by ``agent``."""
    from services.call_records import (
        AgentAnswered,
        CallDetails,
        CallStarted,
        QueueJoined,
        apply_fact,
    )

    now = datetime.now(UTC)
    ids = []
    for k, (cid, e164, _tc, _name) in enumerate(citizens):
        call_id = f"1799000000.{k}"
        start = now - timedelta(seconds=30)
        for fact in (
            CallStarted(call_id, start, spoken(e164), dialled="4448007"),
            CallDetails(call_id, start, citizen_hint=str(cid)),
            QueueJoined(call_id, start + timedelta(seconds=5), "cagri-merkezi"),
            AgentAnswered(
                call_id, start + timedelta(seconds=12), f"PJSIP/{agent.sip_extension}", 7
            ),
        ):
            apply_fact(session, now, fact)
        ids.append(call_id)
    session.flush()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("-n", type=int, default=300, help="requests per page")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--name-n", type=int, default=5, help="requests of the (slow) name search; 0: none"
    )
    parser.add_argument("--profile", default="", help="cProfile the pages whose label has this")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    from flask.testing import FlaskClient
    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from acikkapi.db import make_engine
    from acikkapi.settings import load_settings
    from agent_console import create_app
    from models import Citizen, Role, StaffUser, Ticket
    from services.staff_auth import hash_password

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    engine = make_engine(args.database_url)
    connection = engine.connect()
    outer = connection.begin()
    clock = StatementClock(connection)
    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    db = factory()
    try:
        sizes = {
            "citizens": db.scalar(select(func.count()).select_from(Citizen)),
            "tickets": db.scalar(select(func.count()).select_from(Ticket)),
        }
        cc.log(f"data: {sizes['citizens']:,} citizens, {sizes['tickets']:,} tickets")
        users = {}
        digest = hash_password(cc.PASSWORD)
        for role in (Role.AGENT, Role.SUPERVISOR):
            query = select(StaffUser).where(StaffUser.role == role, StaffUser.is_active)
            if role is Role.AGENT:
                query = query.where(StaffUser.sip_extension.is_not(None))
            user = db.scalars(query.order_by(StaffUser.id)).first()
            assert user is not None, role
            user.password_hash = digest  # inside the rolled-back transaction
            users[role] = user
        db.flush()
        total = args.n + args.warmup
        picked = sample(db, total, args.seed)
        call_ids = calls_for(db, users[Role.AGENT], picked["citizens"])
        db.commit()  # a savepoint: the views see it, the outer transaction still rolls back
        tmp = tempfile.TemporaryDirectory(prefix="ak-console-bench-")
        settings = load_settings(
            {
                "ACIKKAPI_INSTANCE_DIR": str(Path(tmp.name) / "instance"),
                "DATABASE_URL": args.database_url,
                "REDIS_URL": cc.REDIS_URL,
                "ACIKKAPI_AMI_PORT": str(cc.free_port()),
                "ACIKKAPI_CONSOLE_SECRET_KEY": "console-bench-secret-key",
            }
        )
        app = create_app(settings, session_factory=factory)

        def signed_in(user: StaffUser) -> FlaskClient:
            client = app.test_client()
            page = client.get("/login").text
            token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            answer = client.post(
                "/login",
                data={"username": user.username, "password": cc.PASSWORD, "csrf_token": token},
            )
            assert answer.status_code == 302, answer.status_code
            return client

        agent, supervisor = signed_in(users[Role.AGENT]), signed_in(users[Role.SUPERVISOR])
        citizens, tickets = picked["citizens"], picked["tickets"]
        why = "?why=bench%20console"
        fetch = {"X-Requested-With": "fetch"}
        pages: dict[str, Callable[[int], tuple[FlaskClient, str, dict[str, str]]]] = {
            "baseline: signed-in page (`/search`, no query)": lambda k: (agent, "/search", {}),
            "citizen 360° (`/citizens/<id>`)": lambda k: (
                agent,
                f"/citizens/{citizens[k][0]}{why}",
                {},
            ),
            "agent's call panel (`/agent/calls/<id>`, fetch)": lambda k: (
                agent,
                f"/agent/calls/{call_ids[k]}",
                fetch,
            ),
            "search: phone `0532 123 45 67`": lambda k: (
                agent,
                f"/search?q={spoken(citizens[k][1]).replace(' ', '+')}",
                {},
            ),
            "search: TC number": lambda k: (
                agent,
                f"/search?q={citizens[k][2] or citizens[k][1]}",
                {},
            ),
            "search: reference code": lambda k: (agent, f"/search?q={tickets[k][1]}", {}),
            "search: name (first and last)": lambda k: (
                agent,
                f"/search?q={citizens[k][3].replace(' ', '+')}",
                {},
            ),
            "ticket (`/tickets/<id>`)": lambda k: (supervisor, f"/tickets/{tickets[k][0]}", {}),
        }
        name_label = "search: name (first and last)"
        times: dict[str, list[float]] = defaultdict(list)
        statements: dict[str, list[int]] = defaultdict(list)
        db_ms: dict[str, list[float]] = defaultdict(list)
        load0 = os.getloadavg()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        for k in range(total):
            for label, make in pages.items():
                if label == name_label and not (args.warmup <= k < args.warmup + args.name_n):
                    continue
                client, url, headers = make(k)
                clock.reset()
                profiling = profiler is not None and args.profile in label and k >= args.warmup
                if profiling:
                    profiler.enable()
                t0 = time.perf_counter()
                response = client.get(url, headers=headers)
                ms = (time.perf_counter() - t0) * 1000
                if profiling:
                    profiler.disable()
                if response.status_code != 200:
                    raise SystemExit(f"{label} {url}: HTTP {response.status_code}")
                if k >= args.warmup:
                    times[label].append(ms)
                    statements[label].append(clock.count)
                    db_ms[label].append(clock.seconds * 1000)
            if k and k % 50 == 0:
                cc.log(f"{k}/{total} rounds")
        load1 = os.getloadavg()
        if profiler is not None:
            import pstats

            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        rows = {label: cc.summary(values) for label, values in times.items()}
        for label, s in rows.items():
            s["statements"] = cc.percentile(statements[label], 50)
            s["db_p50"] = cc.percentile(db_ms[label], 50)
            s["db_p95"] = cc.percentile(db_ms[label], 95)
            cc.log(f"{label}: {cc.describe(s)}, {s['statements']:.0f} statements")
        facts = {
            "started": started,
            "machine": cc.machine(),
            "db": cc.postgres(args.database_url),
            "sizes": sizes,
            "load": load0,
            "load_after": load1,
        }
    finally:
        db.close()
        outer.rollback()  # nothing of this run stays in the bench database
        connection.close()
        engine.dispose()
    text = render(args, rows, facts)
    print(text)
    if args.write_docs:
        path = replace_docs_section(SECTION_TITLE, text)
        cc.log(f"wrote {path}")


def render(
    args: argparse.Namespace, rows: dict[str, dict[str, float]], facts: dict[str, Any]
) -> str:
    f = cc.fmt_ms
    sizes = facts["sizes"]
    lines = [
        SECTION_TITLE,
        "",
        f"Latest run: {facts['started']} — {facts['machine']}, {facts['db']}; "
        f"{sizes['citizens']:,} citizens, {sizes['tickets']:,} tickets; load average "
        f"{facts['load'][0]:.2f} → {facts['load_after'][0]:.2f} (other work shares the 2 cores).",
        "",
        f"Server time of one request at a time (the WSGI application, as described in the "
        f"script), {args.n} requests per page after {args.warmup} warm-up rounds, a different "
        "random citizen or ticket each time, pages interleaved. Target: citizen 360° page "
        f"p95 ≤ {TARGET_P95_MS:.0f} ms.",
        "",
        "| Page | p50 ms | p95 ms | p99 ms | max ms | SQL statements "
        "| in the driver p50 / p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in rows.items():
        bold = "**" if "360" in label else ""
        lines.append(
            f"| {label} | {f(s['p50'])} | {bold}{f(s['p95'])}{bold} | {f(s['p99'])} | "
            f"{f(s['max'])} | {s['statements']:.0f} | {f(s['db_p50'])} / {f(s['db_p95'])} |"
        )
    c360 = next(v for k, v in rows.items() if "360" in k)
    base = next(v for k, v in rows.items() if "baseline" in k)
    name = next((v for k, v in rows.items() if "name" in k), None)
    lines += [
        "",
        "Where the time goes (citizen 360°):",
        "",
        f"- p50 {f(c360['p50'])} ms: {f(c360['db_p50'])} ms in the database driver for "
        f"{c360['statements']:.0f} statements; the rest is Python — ORM rows, the SLA clock of "
        "each open ticket (working-time arithmetic), the template with Babel date formatting, "
        f"and what every signed-in page costs (the baseline: {f(base['p50'])} ms). The p95 "
        "moves with the load of the shared cores (load average above).",
        "- The ticket query of the record loads each ticket's type and department with it "
        "(`contains_eager` in `services.citizen_history._tickets`): no ticket line loads "
        "them again.",
    ]
    if name is not None:
        lines.append(
            f"- Search by name scans every citizen: p50 {f(name['p50'])} ms "
            "(`services.citizen_search`: `lower(replace(...))` of first and last names with "
            "`LIKE 'x%'`, no index can serve it). An index on the folded names (a stored "
            "folded column with a `text_pattern_ops` b-tree, or `pg_trgm`) would make it a "
            "range scan. Not changed here."
        )
    lines += [
        "",
        "Command:",
        "",
        "```sh",
        ".venv/bin/python bench/console_citizen_page.py --write-docs",
        "```",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
