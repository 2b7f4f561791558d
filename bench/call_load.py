"""Real calls under load through Asterisk (issue 3, item 7 b; a benchmark, not a test).

Issue 3 target:
    "real calls: sipp at 5 and then 20 call setups/s for 2 minutes through Asterisk with
    listener and AGI running: share of calls with a complete record (target 100%),
    caller-lookup p50/p99 as seen from the dialplan (target p99 ≤ 50 ms with 1,000,000
    citizens), CPU cost against the same load with listener and AGI stopped".

What runs (needs root, sipp, the private Asterisk root of ``acikkapi asterisk install`` and the
1M-citizen database of ``bench/generate_data.py``):

* Asterisk rendered from this clone into a temporary instance folder with the demo phones
  and the test knobs (trunk = sipp on 127.0.0.1:5090, qualify off), as
  ``tests/telephony/conftest.py`` does. The rendered ``etc`` found in the Asterisk root is
  saved before and put back afterwards; Asterisk is left running or stopped as it was found.
  One bench-only AMI user ``bench`` (read ``dialplan``, write nothing, only ``Newexten``) is
  appended to the rendered ``manager.conf``: no AMI user of the project may read the
  ``dialplan`` or ``agi`` class, and that is where the dialplan's own timing is.
* ``acikkapi agi serve --log-level DEBUG`` and ``acikkapi ami-listener run`` as subprocesses
  with ``DATABASE_URL`` = the bench database (1,000,000 citizens), Redis database 12.
* The call: sipp calls 444 80 07 from the trunk with a caller number taken from
  ``citizen_phones`` (mobile numbers held by exactly one citizen, one number per call), waits
  for the KVKK notice, presses 1 (Türkçe, generated RFC 2833 pcap as in
  ``tests/telephony/sipp_tools.py``), and hangs up ``--hangup-ms`` later: the dialplan has run
  ``AGI(caller_lookup)`` and is playing the welcome prompt. Each call lasts ~21 s (the KVKK
  notice alone is 17.6 s and cannot be shortened by a render knob), so the load is
  ``rate`` × 21 s concurrent calls (~105 at 5/s, ~430 at 20/s); ``-l`` caps it below the
  500 calls that Asterisk's RTP port range (10000–10999, two ports per call) allows.
* Caller lookup "as seen from the dialplan": for every call, the AMI ``Newexten`` timestamp of
  the priority after ``AGI(…/caller_lookup…)`` minus that of the AGI priority (Asterisk
  connects, sends the headers, runs the route's commands and the database lookup, closes).
  The FastAGI server's own ``route … done in X ms`` debug lines are reported beside it.
* CPU: utime+stime from ``/proc/<pid>/stat`` (sampled every 0.5 s, per pid, threads
  included) of Asterisk, the FastAGI server, the listener and the PostgreSQL backends
  connected to the bench database, from the start of sipp until every call has ended and
  (with the listener) every record is written; then the same load with the FastAGI server and
  the listener stopped (``AGISTATUS=FAILURE``, the dialplan goes on). sipp is reported
  separately (the load generator, not counted).

Complete record (with listener and AGI running): for every call sipp placed, exactly one
``call_records`` row whose ``caller_raw`` is the number sipp sent, ``caller_e164`` its E.164
form, ``dialled_number`` 4448007, ``language`` tr, ``started_at`` ≤ ``ended_at`` both set,
``citizen_id`` the citizen holding that number (set by caller_lookup), no queue, and outcome
``in_progress`` (the caller hangs up in the IVR before the queue; the listener keeps
``in_progress`` and sets ``ended_at`` for such calls — there is no IVR-hang-up outcome).

Tables the listener needs (``call_records``, ``callback_tasks``, survey tables) are created in
the bench database when missing and dropped again at the end (``--keep-tables`` keeps them).

Usage:
    .venv/bin/python bench/call_load.py [--rates 5,20] [--seconds 120] [--write-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DEFAULT_URL,
    ROOT,
    Service,
    log,
    pbx_environ,
    percentile,
    replace_docs_section,
)
from sqlalchemy import create_engine, inspect, text

SECTION_TITLE = "## Telephony: real calls under load (issue 3)"
SCENARIO = ROOT / "bench" / "sipp" / "bench_caller.xml"
TRUNK_PORT = 5090
MEDIA_PORT = 23000
REDIS_URL = "redis://127.0.0.1:6379/12"
LOOKUP_P99_TARGET_MS = 50.0
CALL_CENTRE = "4448007"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LISTENER_TABLES = ("call_records", "callback_tasks", "survey_questions", "survey_answers")


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 0.5).close()
    except OSError:
        return False
    return True


# --- CPU accounting --------------------------------------------------------------------------


def proc_cpu(pid: int) -> float | None:
    """utime + stime of ``pid`` (all its threads) in seconds, None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def bench_backends(dbname: str) -> list[int]:
    """PostgreSQL backends connected to ``dbname`` (process title ``postgres: … <db> …``)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("ascii", "replace")
        except OSError:
            continue
        if cmd.startswith("postgres: ") and f" {dbname} " in cmd:
            out.append(int(entry.name))
    return out


class CpuMeter:
    """Samples utime+stime per pid of each group every ``interval`` s in a thread."""

    def __init__(self, groups: dict[str, Any], interval: float = 0.5) -> None:
        self.groups = groups  # name -> callable returning the group's pids
        self.interval = interval
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, initial: bool = False) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                cpu = proc_cpu(pid)
                if cpu is None:
                    continue
                key = (name, pid)
                if key not in self.first:
                    self.first[key] = cpu if initial else 0.0  # born during the window
                self.last[key] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._sample(initial=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        totals: dict[str, float] = {name: 0.0 for name in self.groups}
        for key, last in self.last.items():
            totals[key[0]] += last - self.first[key]
        return totals


# --- AMI observer: Newexten timestamps around AGI(caller_lookup) ----------------------------


class DialplanObserver:
    """A bench AMI login that reads ``Newexten`` and keeps, per Uniqueid, the time the
    ``AGI(…caller_lookup…)`` priority started and the time the next priority started."""

    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.sock = socket.create_connection((host, port), 10)
        self.sock.settimeout(1.0)
        self.agi_start: dict[str, float] = {}
        self.agi_end: dict[str, float] = {}
        self.events = 0
        self._stop = threading.Event()
        banner = self.sock.recv(1024)
        if b"Asterisk Call Manager" not in banner:
            raise RuntimeError(f"not an AMI banner: {banner!r}")
        login = f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: on\r\n\r\n"
        self.sock.sendall(login.encode())
        self._buf = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in self._buf and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self._buf += self.sock.recv(65536)
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        if b"Success" not in head:
            raise RuntimeError(f"AMI login failed: {head!r}")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self._buf += data
            *frames, self._buf = self._buf.split(b"\r\n\r\n")
            for frame in frames:
                self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        fields: dict[str, str] = {}
        for line in frame.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(": ")
            if sep:
                fields.setdefault(name, value)
        if fields.get("Event") != "Newexten":
            return
        self.events += 1
        uid = fields.get("Uniqueid", "")
        stamp = float(fields.get("Timestamp", "nan"))
        if fields.get("Application") == "AGI" and "caller_lookup" in fields.get("AppData", ""):
            self.agi_start[uid] = stamp
        elif uid in self.agi_start and uid not in self.agi_end:
            self.agi_end[uid] = stamp

    def reset(self) -> None:
        self.agi_start.clear()
        self.agi_end.clear()

    def durations_ms(self) -> list[float]:
        ends = self.agi_end
        return [(ends[u] - s) * 1000 for u, s in self.agi_start.items() if u in ends]

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.sendall(b"Action: Logoff\r\n\r\n")
        self._thread.join(3)
        self.sock.close()


# --- services ---------------------------------------------------------------------------------


# --- database ---------------------------------------------------------------------------------


def ensure_tables(url: str) -> list[str]:
    """Create the listener's tables when the bench database predates them; return those made."""
    from models import Base

    engine = create_engine(url)
    try:
        have = set(inspect(engine).get_table_names())
        missing = [t for t in Base.metadata.sorted_tables if t.name not in have]
        Base.metadata.create_all(engine, tables=missing)
        return [t.name for t in missing]
    finally:
        engine.dispose()


def drop_tables(url: str, names: list[str]) -> None:
    from models import Base

    tables = [t for t in Base.metadata.sorted_tables if t.name in names]
    engine = create_engine(url)
    try:
        Base.metadata.drop_all(engine, tables=tables)
    finally:
        engine.dispose()


def pick_callers(url: str, n: int) -> list[tuple[str, int]]:
    """``n`` national-form mobile numbers (``05xx…``) each held by exactly one citizen."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT e164, min(citizen_id) FROM citizen_phones "
                    "WHERE e164 LIKE '+905%' AND length(e164) = 13 "
                    "GROUP BY e164 HAVING count(*) = 1 ORDER BY md5(e164) LIMIT :n"
                ),
                {"n": n},
            ).all()
    finally:
        engine.dispose()
    if len(rows) < n:
        raise SystemExit(f"only {len(rows)} usable caller numbers in the bench database")
    return [("0" + e164[3:], int(cid)) for e164, cid in rows]


def records_for(url: str, callers: list[str], since: datetime) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT call_id, caller_raw, caller_e164, dialled_number, language, queue, "
                    "citizen_id, started_at, ended_at, outcome FROM call_records "
                    "WHERE caller_raw = ANY(:c) AND started_at >= :since"
                ),
                {"c": callers, "since": since},
            ).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    mode: str  # "with" (AGI + listener) or "without"
    rate: float
    seconds: int
    limit: int
    command: list[str] = field(default_factory=list)
    created: int = 0
    successful: int = 0
    failed: int = 0
    max_concurrent: int = 0
    sipp_rc: int = 0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    sipp_cpu: float = 0.0
    lookup_ms: list[float] = field(default_factory=list)
    agi_seen: int = 0
    server_ms: list[float] = field(default_factory=list)
    complete: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    agi_status: Counter[str] = field(default_factory=Counter)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    settle: float = 0.0


def sipp_stats(path: Path) -> dict[str, str]:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def channels(layout: Any) -> int:
    from telephony import asterisk as pbx_ctl

    out = pbx_ctl.cli(layout, "core show channels count", check=False)
    m = re.search(r"(\d+) active channel", out)
    return int(m.group(1)) if m else -1


def run_load(
    run: Run,
    *,
    workdir: Path,
    layout: Any,
    callers: list[tuple[str, int]],
    observer: DialplanObserver,
    agi: Service,
    listener: Service,
    url: str,
    dbname: str,
    pcap: Path,
    digit_after_ms: int,
    hangup_ms: int,
) -> None:
    total = int(run.rate * run.seconds)
    inf = workdir / f"callers-{run.label}.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c, _ in callers[:total]), "utf-8")
    scenario = workdir / f"bench_caller-{run.label}.xml"
    scenario.write_text(
        Template(SCENARIO.read_text("utf-8")).substitute(
            pcap=str(pcap), digit_after_ms=str(digit_after_ms), hangup_after_ms=str(hangup_ms)
        ),
        "utf-8",
    )
    stats = workdir / f"stats-{run.label}.csv"
    stats.unlink(missing_ok=True)
    timeout_s = run.seconds + 120
    run.command = [
        "sipp", "127.0.0.1:5060", "-sf", scenario.name, "-inf", inf.name, "-s", CALL_CENTRE,
        "-i", "127.0.0.1", "-p", str(TRUNK_PORT), "-mi", "127.0.0.1", "-mp", str(MEDIA_PORT),
        "-r", f"{run.rate:g}", "-rp", "1000", "-m", str(total), "-l", str(run.limit),
        "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin", "-aa",
        "-trace_stat", "-stf", stats.name, "-fd", "5", "-trace_err",
    ]  # fmt: skip
    asterisk_pid = int((layout.run_dir / "asterisk.pid").read_text().split()[0])
    groups = {
        "asterisk": lambda: [asterisk_pid],
        "agi": agi.pids,
        "listener": listener.pids,
        "postgres": lambda: bench_backends(dbname),
    }
    observer.reset()
    agi_offset = agi.log_path.stat().st_size if agi.log_path.exists() else 0
    msgs = layout.log_dir / "messages.log"
    msgs_offset = msgs.stat().st_size if msgs.exists() else 0
    run.load_before = os.getloadavg()
    since = datetime.now(UTC)
    meter = CpuMeter(groups)
    meter.start()
    log(f"{run.label}: {total} calls at {run.rate:g}/s (-l {run.limit})")
    started = time.monotonic()
    with (workdir / f"sipp-{run.label}.out").open("wb") as out:
        sipp = subprocess.Popen(
            run.command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        peak = 0
        while sipp.poll() is None:
            if time.monotonic() - started > timeout_s + 30:
                sipp.kill()
            time.sleep(2)
            peak = max(peak, channels(layout))
            sipp_cpu = proc_cpu(sipp.pid)
            run.sipp_cpu = sipp_cpu if sipp_cpu is not None else run.sipp_cpu
        run.sipp_rc = sipp.wait()
    run.max_concurrent = peak
    run.wall = time.monotonic() - started
    # every call has ended on the sipp side; let Asterisk and (with) the listener settle
    callers_n = [c for c, _ in callers[:total]]
    deadline = time.monotonic() + 90
    while channels(layout) > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    st = sipp_stats(stats) if stats.exists() else {}
    run.created = int(st.get("TotalCallCreated", 0) or 0)
    run.successful = int(st.get("SuccessfulCall(C)", 0) or 0)
    run.failed = int(st.get("FailedCall(C)", 0) or 0)
    if run.mode == "with":
        placed = callers_n[: run.created]
        while time.monotonic() < deadline:
            recs = records_for(url, placed, since)
            if sum(1 for r in recs if r["ended_at"] is not None) >= len(placed):
                break
            time.sleep(1)
    run.settle = time.monotonic() - started - run.wall
    run.cpu = meter.stop()
    run.load_after = os.getloadavg()
    run.lookup_ms = observer.durations_ms()
    run.agi_seen = len(observer.agi_start)
    with agi.log_path.open("rb") as handle:
        handle.seek(agi_offset)
        agi_log = handle.read().decode("utf-8", "replace")
    run.server_ms = [
        float(m) for m in re.findall(r"route /?caller_lookup call \S+ done in ([\d.]+) ms", agi_log)
    ]
    if msgs.exists():
        with msgs.open("rb") as handle:
            handle.seek(msgs_offset)
            text_ = handle.read().decode("utf-8", "replace")
        found = set(re.findall(r"caller_lookup (\w+) for (\S+): continuing", text_))
        run.agi_status = Counter(status for status, _call in found)
    if run.mode == "with":
        check_records(run, url, callers[: run.created], since)
    log(
        f"{run.label}: created {run.created}, ok {run.successful}, failed {run.failed}, "
        f"complete {run.complete}, lookup p50/p99 {percentile(run.lookup_ms, 50):.1f}/"
        f"{percentile(run.lookup_ms, 99):.1f} ms (n={len(run.lookup_ms)}), cpu {run.cpu}, "
        f"peak channels {run.max_concurrent}, sipp rc {run.sipp_rc}"
    )


def check_records(run: Run, url: str, placed: list[tuple[str, int]], since: datetime) -> None:
    recs = records_for(url, [c for c, _ in placed], since)
    by_caller: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_caller.setdefault(r["caller_raw"], []).append(r)
        run.outcomes[str(r["outcome"])] += 1
    for raw, citizen_id in placed:
        rows = by_caller.get(raw, [])
        if len(rows) != 1:
            run.problems["no record" if not rows else "several records"] += 1
            continue
        r = rows[0]
        bad = []
        if r["caller_e164"] != "+90" + raw[1:]:
            bad.append("caller_e164")
        if r["dialled_number"] != CALL_CENTRE:
            bad.append("dialled_number")
        if str(r["language"]).lower() not in ("tr", "language.tr"):
            bad.append("language")
        if r["started_at"] is None or r["ended_at"] is None or r["ended_at"] < r["started_at"]:
            bad.append("started/ended")
        if r["citizen_id"] != citizen_id:
            bad.append("citizen_id")
        if r["queue"] is not None:
            bad.append("queue")
        if str(r["outcome"]).lower() not in ("in_progress", "calloutcome.in_progress"):
            bad.append(f"outcome {r['outcome']}")
        if bad:
            for b in bad:
                run.problems[b] += 1
        else:
            run.complete += 1


# --- report -----------------------------------------------------------------------------------


def f1(x: float) -> str:
    return "–" if x != x else f"{x:,.1f}"


def render_docs(args: argparse.Namespace, runs: list[Run], ctx: dict[str, Any]) -> str:
    by = {(r.mode, r.rate): r for r in runs}
    lines = [
        SECTION_TITLE,
        "",
        f"Latest run: {ctx['started']} — {ctx['machine']}, {ctx['asterisk']}, sipp 3.6.1, "
        f"PostgreSQL bench database `{ctx['dbname']}` ({ctx['citizens']:,} citizens, "
        f"{ctx['phones']:,} phone numbers; same machine). Everything on loopback; the machine "
        "is shared with other work (load averages below).",
        "",
        "The call: sipp calls 444 80 07 from the trunk (127.0.0.1:5090), one caller number per "
        "call taken from `citizen_phones` (mobile numbers held by exactly one citizen, so every "
        f"lookup finds its citizen), presses 1 (Türkçe) {ctx['digit_after_ms']} ms after the "
        f"answer (KVKK notice {ctx['kvkk_ms']} ms, then the language menu), and hangs up "
        f"{args.hangup_ms} ms later, while the welcome prompt plays: answer → notice → language "
        "→ `AGI(caller_lookup)` → hang-up, about 21 s per call. The notice cannot be shortened "
        "by a render knob (no `ACIKKAPI_*` option for prompts), so a 2-minute run at 20 setups/s "
        "holds ~430 calls at once; `-l` caps concurrent calls below the 500 that the RTP port "
        "range (10000–10999) allows. Queue, agents and recordings are not part of this load.",
        "",
        "| Run | calls placed | sipp ok / failed | peak channels | complete records "
        "| lookup p50 ms | p95 ms | p99 ms | max ms | load avg 1 min (before → after) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if r.mode != "with":
            continue
        share = r.complete / r.created if r.created else float("nan")
        lines.append(
            f"| {r.rate:g} setups/s × {r.seconds} s, AGI + listener | {r.created:,} "
            f"| {r.successful:,} / {r.failed:,} | {r.max_concurrent} "
            f"| {r.complete:,} (**{share:.1%}**) | {f1(percentile(r.lookup_ms, 50))} "
            f"| {f1(percentile(r.lookup_ms, 95))} | **{f1(percentile(r.lookup_ms, 99))}** "
            f"| {f1(max(r.lookup_ms, default=float('nan')))} "
            f"| {r.load_before[0]:.2f} → {r.load_after[0]:.2f} |"
        )
    lines += [
        "",
        "Caller lookup as seen from the dialplan = AMI `Newexten` timestamp of the priority "
        "after `AGI(agi://127.0.0.1:4573/caller_lookup,…)` minus that of the AGI priority "
        "(connect, AGI headers, the route's `GET VARIABLE`, the database lookup in a worker "
        "thread, five or six `SET VARIABLE`s, close). No AMI user of the project reads the "
        "`dialplan` (or `agi`) class, so the bench appends a read-only user `bench` "
        "(`read = dialplan`, `eventfilter = Event: Newexten`) to the rendered `manager.conf` for "
        "the run only. AMI stamps an event when the manager formats it, so queueing inside "
        "Asterisk adds noise to both ends. For comparison, the FastAGI server's own "
        "`route caller_lookup … done in X ms` (debug log; from parsed headers to the last reply):",
        "",
        "| Run | lookups in server log | server p50 ms | p99 ms | max ms "
        "| AGI priorities seen / paired |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if r.mode != "with":
            continue
        lines.append(
            f"| {r.rate:g} setups/s | {len(r.server_ms):,} | {f1(percentile(r.server_ms, 50))} "
            f"| {f1(percentile(r.server_ms, 99))} "
            f"| {f1(max(r.server_ms, default=float('nan')))} "
            f"| {r.agi_seen:,} / {len(r.lookup_ms):,} |"
        )
    lines += [
        "",
        "CPU seconds (utime+stime from `/proc/<pid>/stat`, from the start of sipp until every "
        "call has ended and, with the listener, every record is written; PostgreSQL = backends "
        "connected to the bench database; sipp, the load generator, not counted):",
        "",
        "| Load | mode | window s | Asterisk | FastAGI server | listener | PostgreSQL "
        "| total | CPU s per call | with ÷ without | sipp |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        total = sum(r.cpu.values())
        other = by.get(("without" if r.mode == "with" else "with", r.rate))
        ratio = "–"
        if r.mode == "with" and other is not None and sum(other.cpu.values()) > 0:
            ratio = f"**{total / sum(other.cpu.values()):.2f}×**"
        mode = "AGI + listener running" if r.mode == "with" else "AGI + listener stopped"
        lines.append(
            f"| {r.rate:g}/s × {r.seconds} s | {mode} | {r.wall + r.settle:.0f} "
            f"| {r.cpu.get('asterisk', 0):.1f} | {r.cpu.get('agi', 0):.1f} "
            f"| {r.cpu.get('listener', 0):.1f} | {r.cpu.get('postgres', 0):.1f} | {total:.1f} "
            f"| {total / r.created if r.created else float('nan'):.3f} | {ratio} "
            f"| {r.sipp_cpu:.1f} |"
        )
    lines += ["", "Against the targets of issue 3 (item 7 b):", ""]
    for r in runs:
        if r.mode != "with":
            continue
        share = r.complete / r.created if r.created else 0.0
        p99 = percentile(r.lookup_ms, 99)
        lines.append(
            f"- {r.rate:g} setups/s: complete records {share:.1%} vs 100% — "
            f"{'met' if r.created and r.complete == r.created else 'NOT met'}; caller lookup "
            f"p99 {f1(p99)} ms vs ≤ {LOOKUP_P99_TARGET_MS:g} ms — "
            f"{'met' if p99 <= LOOKUP_P99_TARGET_MS else 'NOT met'}"
        )
    lines += [
        "",
        "Complete record: for every call sipp placed, exactly one `call_records` row with "
        "`caller_raw` = the number sipp sent, `caller_e164` its +90 form, `dialled_number` "
        "4448007, `language` tr, `started_at` ≤ `ended_at` (both set), `citizen_id` = the "
        "citizen holding that number (from caller_lookup's `AK_CITIZEN_ID`), no queue, and "
        "outcome `in_progress`: the caller leaves in the IVR before the queue, and the listener "
        "keeps `in_progress` with `ended_at` set for such calls (there is no outcome for a "
        "hang-up in the IVR).",
        "",
        "Notes:",
        "",
    ]
    for r in runs:
        if r.mode == "with":
            problems = ", ".join(f"{k} {v}" for k, v in r.problems.most_common()) or "none"
            outcomes = ", ".join(f"{k} {v}" for k, v in r.outcomes.most_common()) or "none"
            lines.append(
                f"- {r.rate:g}/s with AGI + listener: record problems: {problems}; outcomes of "
                f"the records: {outcomes}; sipp exit code {r.sipp_rc}; writer caught up "
                f"{r.settle:.0f} s after sipp ended."
            )
        else:
            status = ", ".join(f"{k} {v}" for k, v in r.agi_status.most_common()) or "none logged"
            lines.append(
                f"- {r.rate:g}/s with AGI + listener stopped: {r.created:,} calls, sipp ok "
                f"{r.successful:,} / failed {r.failed:,}, peak channels {r.max_concurrent}; "
                f"dialplan time of the failing `AGI()` p50 "
                f"{f1(percentile(r.lookup_ms, 50))} ms (n={len(r.lookup_ms):,}); "
                f"`caller_lookup <AGISTATUS> … continuing` warnings in messages.log "
                f"during the run: {status}."
            )
    for note in ctx.get("notes", []):
        lines.append(f"- {note}")
    lines += [
        "",
        "Commands (as root; Asterisk root from `acikkapi asterisk install`, data from "
        "`bench/generate_data.py`):",
        "",
        "```sh",
        f".venv/bin/python bench/call_load.py --rates {args.rates} --seconds {args.seconds} "
        f"--limit {args.limit} --hangup-ms {args.hangup_ms} --write-docs",
        "# sipp command of each run (in the bench's temporary folder):",
    ]
    seen = set()
    for r in runs:
        cmd = " ".join(r.command)
        if r.rate not in seen:
            seen.add(r.rate)
            lines.append(cmd)
    lines += ["```", ""]
    return "\n".join(lines)


def write_docs(content: str) -> None:
    path = replace_docs_section(SECTION_TITLE, content)
    log(f"wrote {path.relative_to(ROOT)}")


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5,20", help="call setups per second, in order")
    parser.add_argument("--seconds", type=int, default=120, help="seconds of call setups per run")
    parser.add_argument("--limit", type=int, default=480, help="sipp -l (concurrent calls)")
    parser.add_argument("--hangup-ms", type=int, default=2500, help="caller hangs up after 1")
    parser.add_argument("--modes", default="with,without", help="with and/or without AGI")
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--keep-tables", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (Asterisk in its chroot runs as user asterisk)")
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed")
    rates = [float(x) for x in args.rates.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]

    from sqlalchemy.engine import make_url

    from acikkapi.settings import load_settings
    from telephony import asterisk as pbx_ctl
    from telephony.provision import render
    from telephony.secrets import load_secrets
    from tests.telephony.sipp_tools import dtmf_pcap

    dbname = make_url(args.url).database or ""
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    created_tables = ensure_tables(args.url)
    if created_tables:
        log(f"created missing tables in {dbname}: {', '.join(created_tables)}")
    engine = create_engine(args.url)
    with engine.connect() as conn:
        citizens = conn.scalar(text("SELECT count(*) FROM citizens")) or 0
        phones = conn.scalar(text("SELECT count(*) FROM citizen_phones")) or 0
    engine.dispose()
    needed = int(max(rates) * args.seconds) * len(rates)
    pool = pick_callers(args.url, needed)
    per_rate: dict[float, list[tuple[str, int]]] = {}
    offset = 0
    for rate in rates:
        n = int(rate * args.seconds)
        per_rate[rate] = pool[offset : offset + n]
        offset += n

    tmp = Path(tempfile.mkdtemp(prefix="acikkapi-call-load-"))
    instance = tmp / "instance"
    instance.mkdir()
    workdir = tmp / "sipp"
    workdir.mkdir()
    environ = pbx_environ(instance, TRUNK_PORT)
    settings = load_settings(environ)
    layout = pbx_ctl.detect_layout(settings)
    if layout.mode == "chroot" and not pbx_ctl.root_is_complete(layout.root):
        raise SystemExit(f"no Asterisk root at {layout.root}: run `acikkapi asterisk install`")
    if port_open(settings.agi_host, settings.agi_port):
        raise SystemExit(f"something already listens on the FastAGI port {settings.agi_port}")
    was_running = pbx_ctl.stop(layout)
    backup = tmp / "etc-backup"
    if layout.etc_dir.exists():
        subprocess.run(["cp", "-a", str(layout.etc_dir), str(backup)], check=True)
    agi = listener = None
    observer: DialplanObserver | None = None
    runs: list[Run] = []
    notes: list[str] = []
    try:
        render(settings, environ=environ)
        bench_secret = secrets.token_urlsafe(24)
        with (layout.etc_dir / "manager.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n; bench/call_load.py only (removed after the run): Newexten timestamps\n"
                f"[bench]\nsecret = {bench_secret}\ndeny = 0.0.0.0/0.0.0.0\n"
                "permit = 127.0.0.1/255.255.255.255\nread = dialplan\nwrite =\n"
                "eventfilter = Event: Newexten\n"
            )
        pbx_ctl.start(layout)
        pbx_ctl.cli(layout, "database deltree registrar", check=False)
        version = pbx_ctl.cli(layout, "core show version").split(" built")[0].strip()
        sec = load_secrets(settings, environ)
        del sec  # the services read the same secrets from the instance folder
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ACIKKAPI_", "DATABASE_"))}
        env.update(environ)
        env.update(
            {
                "DATABASE_URL": args.url,
                "REDIS_URL": REDIS_URL,
                "ACIKKAPI_ASTERISK_ROOT": str(layout.root),
                "PYTHONUNBUFFERED": "1",
            }
        )
        qlog = layout.log_dir / "queue_log"
        if qlog.exists():  # the listener starts at the end of the shared queue_log
            state = instance / "ami_listener" / "queue_log.offset.json"
            state.parent.mkdir(parents=True, exist_ok=True)
            st = qlog.stat()
            state.write_text(json.dumps({"inode": st.st_ino, "offset": st.st_size}), "utf-8")
        agi = Service("agi", ["agi", "serve", "--log-level", "DEBUG"], env, tmp)
        listener = Service("ami-listener", ["ami-listener", "run"], env, tmp)
        observer = DialplanObserver(settings.ami_host, settings.ami_port, "bench", bench_secret)
        import wave

        from telephony.prompts import resolve_in_root

        sounds = resolve_in_root(layout.root, layout.sounds_dir / "tr")
        with wave.open(str(sounds / "acikkapi" / "kvkk-notice.wav")) as wav:
            kvkk_ms = int(wav.getnframes() * 1000 / wav.getframerate())
        digit_after_ms = kvkk_ms + 1300
        pcap = dtmf_pcap("1", workdir / "dtmf-1.pcap")
        common = dict(
            workdir=workdir, layout=layout, observer=observer, agi=agi, listener=listener,
            url=args.url, dbname=dbname, pcap=pcap, digit_after_ms=digit_after_ms,
            hangup_ms=args.hangup_ms,
        )  # fmt: skip
        for mode in modes:
            if mode == "with":
                agi.start()
                deadline = time.monotonic() + 30
                while not port_open(settings.agi_host, settings.agi_port):
                    if time.monotonic() > deadline or not agi.pids():
                        raise RuntimeError(f"FastAGI server did not start:\n{agi.text()}")
                    time.sleep(0.2)
                listener.start()
                listener.wait_log("reconciled after login", 60)
            for rate in rates:
                run = Run(f"{mode}-{rate:g}", mode, rate, args.seconds, args.limit)
                run_load(run, callers=per_rate[rate], **common)  # type: ignore[arg-type]
                runs.append(run)
                time.sleep(5)
            listener.stop()
            agi.stop()
        errors = [ln for ln in agi.text().splitlines() if " ERROR " in ln]
        if errors:
            notes.append(f"FastAGI server logged {len(errors)} errors; first: `{errors[0][:200]}`")
    finally:
        if observer is not None:
            observer.close()
        for svc in (listener, agi):
            if svc is not None:
                svc.stop()
        with contextlib.suppress(Exception):
            pbx_ctl.stop(layout)
        if backup.exists():
            shutil.rmtree(layout.etc_dir)
            subprocess.run(["cp", "-a", str(backup), str(layout.etc_dir)], check=True)
        if was_running:
            pbx_ctl.start(layout)
        if created_tables and not args.keep_tables:
            drop_tables(args.url, created_tables)
            log(f"dropped the tables created for the run: {', '.join(created_tables)}")
        log(f"work files in {tmp}")

    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    ctx = {
        "started": started_at,
        "machine": f"{os.cpu_count()} CPU cores ({cpu_model}), Python {platform.python_version()}",
        "asterisk": version,
        "dbname": dbname,
        "citizens": citizens,
        "phones": phones,
        "kvkk_ms": kvkk_ms,
        "digit_after_ms": digit_after_ms,
        "notes": notes,
    }
    content = render_docs(args, runs, ctx)
    print(content)
    if args.write_docs:
        write_docs(content)


if __name__ == "__main__":
    main()
