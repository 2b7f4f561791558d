"""Benchmark (c) of issue 3: AgentConnect -> screen-pop publish latency (p50/p95/p99/max).

Answered calls (copies of ``answered_queue_call`` and ``english_queue_call`` with fresh ids,
numbers and times, see ``listener_ingest.py``) are fed one call at a time at a steady rate
through the daemon's own pipeline: ``BoundedAMIProtocol.data_received`` -> ``Listener.on_event``
-> ``CallTracker`` -> ``FactWriter`` (batching, worker thread, one transaction per batch: the
answer is committed without its ticket) -> ``TicketStage`` (``open_ticket`` for the answer in
its own transaction, in a worker thread or a worker process) -> ``ScreenPopPublisher`` (the
pop carries ticket, reference code and citizen card) -> the real Redis on 127.0.0.1:6379. A
subscriber in a separate process ``PSUBSCRIBE``s to the agent channels.

Each call is compressed in time: its frames before ``AgentConnect`` are handed over at its start,
the ``AgentConnect`` frame ``--connect-delay`` s later (latency clock starts just before
``data_received``), the rest (``AgentComplete``, ``Hangup`` ...) ``--end-delay`` s after the
start. Both clocks are ``CLOCK_MONOTONIC`` (shared by the two processes).

Screen pops go to bench-only names (``acikkapi-bench:screenpop:<agent_id>``) so that consoles
and tests using the same Redis never see them. ``--write-docs`` replaces the section in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import listener_ingest as li
from _common import ROOT, percentile

SECTION_TITLE = "## Telephony: screen-pop latency (issue 3)"
TEMPLATES = ("answered_queue_call.txt", "english_queue_call.txt")
PREFIX = "acikkapi-bench"
DONE_CHANNEL = f"{PREFIX}:screenpop-bench-done"


def log(message: str) -> None:
    li.log(message)


# --------------------------------------------------------------------------------------------
# Redis


def redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(url: str) -> None:
    if redis_ping(url):
        return
    log("Redis does not answer: starting it with scripts/lib.sh ak_redis_up")
    subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && ak_redis_up'], check=False, timeout=120
    )
    if not redis_ping(url):
        raise SystemExit("Redis on 127.0.0.1:6379 is not available")


def subscriber(url: str, ready: Any, conn: Connection) -> None:
    """Separate process: record (call_id, monotonic receive time) of every screen pop."""
    import redis

    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    pubsub.psubscribe(f"{PREFIX}:screenpop:*")
    pubsub.subscribe(DONE_CHANNEL)
    subscribed = 0
    while subscribed < 2:
        message = pubsub.get_message(timeout=1.0)
        if message and message["type"] in ("psubscribe", "subscribe"):
            subscribed += 1
    ready.set()
    received: list[tuple[str, float, str]] = []
    for message in pubsub.listen():
        now = time.monotonic()
        if message["type"] == "message":
            break
        if message["type"] == "pmessage":
            data = json.loads(message["data"])
            received.append((data["call_id"], now, message["channel"].decode()))
    pubsub.close()
    conn.send(received)
    conn.close()


# --------------------------------------------------------------------------------------------
# calls


def make_calls(generator: li.Generator, n: int, start: float) -> list[dict[str, Any]]:
    templates = [generator.templates[name] for name in TEMPLATES]
    calls = []
    for k in range(n):
        template = templates[0] if k % 5 else templates[1]  # 80 % Turkish, 20 % English queue
        frames, expected = generator.copy(template, start + k * 30.0)
        (call_id,) = expected
        texts = [text for _at, text in frames]
        idx = next(i for i, t in enumerate(texts) if t.startswith("Event: AgentConnect\r\n"))

        def blob(parts: list[str]) -> bytes:
            return b"".join(p.encode("utf-8") + b"\r\n\r\n" for p in parts)

        calls.append(
            {
                "call_id": call_id,
                "pre": blob(texts[:idx]),
                "connect": blob([texts[idx]]),
                "post": blob(texts[idx + 1 :]),
                "events": len(texts),
            }
        )
    return calls


async def run_scenario(
    args: argparse.Namespace,
    url: str,
    calls: list[dict[str, Any]],
    rate: float,
    batch: int | None,
    workers: int,
) -> dict[str, Any]:
    from ami_listener.client import BoundedAMIProtocol
    from ami_listener.daemon import Listener, ListenerOptions

    options = ListenerOptions(ticket_workers=workers)
    listener = Listener(li.bench_settings(url, args.redis_url), "not-used", options)
    writer, tickets = listener.writer, listener.tickets
    default_batch = writer.batch_max
    if batch is not None:
        writer.batch_max = batch
    marks: dict[str, dict[str, float]] = defaultdict(dict)
    batch_sizes: list[int] = []
    ticket_batches: list[int] = []
    applied = [0.0, 0.0]  # writer, ticket stage: seconds inside batches
    original_apply = writer._apply
    original_open = tickets._open
    original_publish = listener.publisher.publish

    def timed_apply(items: list[Any]) -> Any:
        t0 = time.monotonic()
        result = original_apply(items)
        t1 = time.monotonic()
        batch_sizes.append(len(items))
        applied[0] += t1 - t0
        for due in result.dues:
            marks[due.call_id]["apply_start"] = t0
            marks[due.call_id]["committed"] = t1
        return result

    async def timed_open(dues: list[Any]) -> Any:
        t0 = time.monotonic()
        result = await original_open(dues)
        t1 = time.monotonic()
        ticket_batches.append(len(dues))
        applied[1] += t1 - t0
        for due in dues:
            marks[due.call_id]["ticket_start"] = t0
            marks[due.call_id]["ticket_done"] = t1
        return result

    async def timed_publish(pop: Any) -> bool:
        marks[pop.call_id]["publish"] = time.monotonic()
        return await original_publish(pop)

    writer._apply = timed_apply  # type: ignore[method-assign]
    tickets._open = timed_open  # type: ignore[method-assign]
    listener.publisher.publish = timed_publish  # type: ignore[method-assign]

    protocol = BoundedAMIProtocol(listener.on_event, None, listener.options.max_frame)
    protocol.connection_made(li._NullTransport())
    protocol.data_received(li.BANNER)
    stop, tickets_stop = asyncio.Event(), asyncio.Event()
    await asyncio.to_thread(tickets.start_workers)
    tickets_task = asyncio.create_task(tickets.run(tickets_stop))
    writer_task = asyncio.create_task(writer.run(stop))

    # warm-up: connections, statement caches, first ticket (not measured)
    warm = calls[: args.warmup]
    for call in warm:
        protocol.data_received(call["pre"] + call["connect"] + call["post"])
    await writer.drain()
    await tickets.drain()
    measured = calls[args.warmup :]
    batch_sizes.clear()
    ticket_batches.clear()
    applied[:] = [0.0, 0.0]

    sent: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    t_start = loop.time() + 0.2
    lag: list[float] = []

    async def one(k: int, call: dict[str, Any]) -> None:
        start = t_start + k / rate
        await asyncio.sleep(max(0.0, start - loop.time()))
        protocol.data_received(call["pre"])
        await asyncio.sleep(max(0.0, start + args.connect_delay - loop.time()))
        lag.append(loop.time() - (start + args.connect_delay))
        sent[call["call_id"]] = time.monotonic()
        protocol.data_received(call["connect"])
        await asyncio.sleep(max(0.0, start + args.end_delay - loop.time()))
        protocol.data_received(call["post"])

    load_before = os.getloadavg()
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    await asyncio.gather(*(one(k, c) for k, c in enumerate(measured)))
    await writer.drain()
    await tickets.drain()
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    load_after = os.getloadavg()
    stop.set()
    await writer_task
    tickets_stop.set()
    await tickets_task
    await asyncio.sleep(0.5)
    await listener.publisher.close()
    listener.engine.dispose()
    return {
        "rate": rate,
        "batch_max": writer.batch_max,
        "default_batch": default_batch,
        "workers": tickets.workers,
        "sent": sent,
        "marks": dict(marks),
        "batches": batch_sizes,
        "ticket_batches": ticket_batches,
        "wall": wall,
        "apply_seconds": applied[0],
        "ticket_seconds": applied[1],
        "cpu": cpu,
        "lag_p99_ms": percentile(lag, 99) * 1000,
        "load_before": load_before,
        "load_after": load_after,
        "published": listener.publisher.stats.published,
        "publish_failures": listener.publisher.stats.failures,
        "writer_failed": writer.stats.failed_facts,
    }


def measure(
    args: argparse.Namespace, url: str, rate: float, batch: int | None, workers: int
) -> dict[str, Any]:
    li.reset_database(url)
    n = args.warmup + round(rate * args.seconds)
    generator = li.Generator(
        {name: li.load_template(li.TRANSCRIPTS / name) for name in TEMPLATES}, args.seed, 30.0
    )
    calls = make_calls(generator, n, 1_795_700_000.0)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=subscriber, args=(args.redis_url, ready, child), daemon=True)
    proc.start()
    if not ready.wait(30):
        raise SystemExit("subscriber did not start")
    where = f"{workers} ticket process{'es' if workers > 1 else ''}" if workers else "ticket thread"
    label = f"{rate:g} calls/s, {where}" + (f", writer batch_max {batch}" if batch else "")
    log(f"{label}: {n - args.warmup} calls over {args.seconds:g} s ...")
    result = asyncio.run(run_scenario(args, url, calls, rate, batch, workers))
    import redis

    time.sleep(0.5)
    redis.Redis.from_url(args.redis_url).publish(DONE_CHANNEL, "done")
    received = parent.recv() if parent.poll(30) else []
    proc.join(10)
    got = {cid: at for cid, at, _channel in received}
    lat, stages = [], defaultdict(list)
    missing = 0
    for cid, t_sent in result["sent"].items():
        if cid not in got:
            missing += 1
            continue
        lat.append((got[cid] - t_sent) * 1000)
        m = result["marks"].get(cid, {})
        if {"apply_start", "committed", "ticket_start", "ticket_done", "publish"} <= m.keys():
            for key, (a, b) in STAGES.items():
                end = got[cid] if b == "received" else m[b]
                start = t_sent if a == "sent" else m[a]
                stages[key].append((end - start) * 1000)
    result.update(
        label=label,
        n=len(result["sent"]),
        missing=missing,
        latency=lat,
        stages=dict(stages),
    )
    log(
        f"  p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms, "
        f"max {max(lat, default=float('nan')):.1f} ms, missing {missing}, "
        f"mean batch {statistics.mean(result['batches'] or [0]):.1f}, ticket batch "
        f"{statistics.mean(result['ticket_batches'] or [0]):.1f}"
    )
    return result


STAGES = {  # stage name -> (from mark, to mark); consecutive, so they add up to the latency
    "connect → writer batch starts": ("sent", "apply_start"),
    "record transaction (answer, no ticket)": ("apply_start", "committed"),
    "commit → ticket batch starts": ("committed", "ticket_start"),
    "ticket transaction (`open_ticket`, card)": ("ticket_start", "ticket_done"),
    "→ publish call": ("ticket_done", "publish"),
    "publish → received": ("publish", "received"),
}


# --------------------------------------------------------------------------------------------
# report


def render(args: argparse.Namespace, runs: list[dict[str, Any]], db: str, started: str) -> str:
    def f(v: float) -> str:
        return f"{v:.1f}"

    lines = [
        SECTION_TITLE,
        "",
        f"Latest run: {started} — {li.machine()}, {db}, Redis "
        f"{args.redis_version} on 127.0.0.1:6379 (shared with other work).",
        "",
        f"Each scenario: {args.seconds:g} s of answered calls at a steady rate (80 % "
        f"`answered_queue_call`, 20 % `english_queue_call`, fresh ids and caller numbers, so "
        f"every answer opens a new ticket for a new citizen through `open_ticket`), after "
        f"{args.warmup} unmeasured warm-up calls, on a freshly migrated and seeded database. "
        f"Per call: frames before `AgentConnect` at its start, `AgentConnect` "
        f"{args.connect_delay:g} s later, the rest {args.end_delay:g} s after the start. "
        f"Latency = from just before `data_received(AgentConnect frame)` until the subscriber "
        f"process receives the pop on `…:screenpop:<agent_id>`.",
        "",
        "| Scenario | calls | received | p50 ms | p95 ms | p99 ms | max ms | mean batch "
        "(writer / tickets) | writer busy | ticket stage busy | load avg 1 min (before → after) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lat = r["latency"]
        mean_batch = statistics.mean(r["batches"]) if r["batches"] else 0
        mean_tickets = statistics.mean(r["ticket_batches"]) if r["ticket_batches"] else 0
        lines.append(
            f"| {r['label']} | {r['n']} | {r['n'] - r['missing']} | {f(percentile(lat, 50))} "
            f"| {f(percentile(lat, 95))} | **{f(percentile(lat, 99))}** "
            f"| {f(max(lat, default=float('nan')))} | {mean_batch:.1f} / {mean_tickets:.1f} "
            f"| {r['busy']:.0%} | {r['ticket_busy']:.0%} "
            f"| {r['load_before'][0]:.2f} → {r['load_after'][0]:.2f} |"
        )
    lines += [
        "",
        "Where the time goes (p50 / p99 ms per stage; the stages of one call add up to its "
        "latency):",
        "",
        "| Scenario | " + " | ".join(STAGES) + " |",
        "|---|" + "---:|" * len(STAGES),
    ]
    for r in runs:
        cells = []
        for key in STAGES:
            v = r["stages"].get(key, [])
            cells.append(f"{f(percentile(v, 50))} / {f(percentile(v, 99))}")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += [""]
    if args.notes:
        lines += [args.notes, ""]
    rates = ",".join(f"{x:g}" for x in args.rates)
    lines += [
        "Command:",
        "",
        "```sh",
        f".venv/bin/python bench/screenpop_latency.py --rates {rates} --seconds "
        f"{args.seconds:g} --ticket-workers {args.ticket_workers_text} --write-docs",
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5,20", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batches", default="default", help="writer batch_max values")
    parser.add_argument(
        "--ticket-workers", default="0,1", help="ticket stage processes per scenario (0: thread)"
    )
    parser.add_argument("--connect-delay", type=float, default=0.5)
    parser.add_argument("--end-delay", type=float, default=1.5)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help=f"SQLite file {li.SQLITE_PATH}")
    parser.add_argument("--url", default=os.environ.get("BENCH_LISTENER_DATABASE_URL"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--notes", default="", help="extra paragraph for the docs section")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    args.rates = [float(x) for x in args.rates.split(",")]
    batches = [None if b == "default" else int(b) for b in args.batches.split(",")]
    args.ticket_workers_text = args.ticket_workers
    workers_list = [int(w) for w in args.ticket_workers.split(",")]
    url = f"sqlite:///{li.SQLITE_PATH}" if args.sqlite else (args.url or li.DEFAULT_URL)
    ensure_redis(args.redis_url)
    import redis

    args.redis_version = redis.Redis.from_url(args.redis_url).info("server")["redis_version"]
    li.isolate_redis_names(PREFIX)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = []
    for rate in args.rates:
        for batch in batches:
            for workers in workers_list:
                run = measure(args, url, rate, batch, workers)
                run["busy"] = run["apply_seconds"] / max(run["wall"], 1e-9)
                run["ticket_busy"] = run["ticket_seconds"] / max(run["wall"], 1e-9)
                runs.append(run)
    db = li.db_description(url)
    content = render(args, runs, db, started)
    print(content)
    if args.write_docs:
        sys.argv = sys.argv[:1]
        li.write_docs(content, SECTION_TITLE)


if __name__ == "__main__":
    main()
