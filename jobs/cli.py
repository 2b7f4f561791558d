"""``acikkapi worker …`` and ``acikkapi outbox …``: RQ workers, the scheduler, the outbox.

``worker run`` serves the RQ queues (notifications, sweeps, outbound); ``worker schedule``
enqueues the periodic jobs; both survive a Redis restart (they report it and reconnect
with back-off). ``outbox status|dead|requeue|dispatch`` inspect and drive the outbox
without Redis (``dispatch`` sends due rows in this process: handy for demos and repairs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click
import redis

from acikkapi.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _backoff(attempt: int) -> float:
    return float(min(2 ** min(attempt, 5), 30))


def _reconnecting(settings: Settings, serve: Callable[[int], None], retrying: str) -> None:
    """Call ``serve(attempt)`` until it returns; while Redis is gone, say so (``retrying``
    with ``{delay}``) and call it again after a capped back-off."""
    attempt = 0
    while True:
        try:
            serve(attempt)
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            attempt += 1
            delay = _backoff(attempt)
            click.echo(
                f"Redis ({settings.redis_url}) yanıt vermiyor / is not answering: {exc}; "
                + retrying.format(delay=f"{delay:.0f} s"),
                err=True,
            )
            time.sleep(delay)


@click.group("worker")
def worker() -> None:
    """RQ workers and the periodic-job scheduler (issue 5)."""


@worker.command("run")
@click.option("--queues", "-q", default=None, help="Comma-separated queue names.")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: host:pid).")
@click.option(
    "--fork/--no-fork",
    default=False,
    show_default=True,
    help="Run each job in a forked work horse (RQ's Worker) instead of in this process.",
)
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    queues: str | None,
    burst: bool,
    name: str | None,
    fork: bool,
    verbose: bool,
) -> None:
    """Serve the RQ queues until SIGTERM; reconnect when Redis goes away.

    By default jobs run in this process (RQ's SimpleWorker): the database engine and the
    gateway connections are reused across jobs. Every job is idempotent and short, and job
    time-outs still apply.
    """
    from rq import Queue, SimpleWorker, Worker

    from jobs.runtime import redis_connection

    _logging(verbose)
    settings = _settings(ctx)
    names = [q.strip() for q in queues.split(",")] if queues else list(settings.worker_queues)

    def serve(attempt: int) -> None:
        connection = redis_connection(settings)
        # After an outage Redis may still list the previous incarnation under its name
        # until that key expires, so every restart registers under a fresh name.
        incarnation = f"{name}.{attempt}" if name and attempt else name
        worker_class = Worker if fork else SimpleWorker
        rq_worker = worker_class(
            [Queue(n, connection=connection) for n in names],
            connection=connection,
            name=incarnation,
        )
        rq_worker.work(burst=burst, with_scheduler=False)

    _reconnecting(
        settings, serve, "retrying in {delay} (nothing is lost: the outbox is in the database)"
    )


@worker.command("schedule")
@click.option("--list", "list_only", is_flag=True, help="Print the periodic jobs and exit.")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def schedule_cmd(ctx: click.Context, list_only: bool, verbose: bool) -> None:
    """Enqueue the periodic jobs (outbox dispatch, SLA sweep, mailbox poll) on time."""
    from rq.cron import CronScheduler

    from jobs.runtime import redis_connection
    from jobs.schedule import periodic_jobs

    _logging(verbose)
    settings = _settings(ctx)
    jobs = periodic_jobs(settings)
    if list_only:
        for job in jobs:
            click.echo(f"{job.name:<24} every {job.interval_s:>4} s  queue {job.queue}")
        return

    def serve(attempt: int) -> None:
        scheduler = CronScheduler(
            connection=redis_connection(settings), name=f"acikkapi-{time.time_ns()}"
        )
        for job in jobs:
            scheduler.register(
                job.func,
                job.queue,
                interval=job.interval_s,
                job_timeout=job.timeout_s,
                result_ttl=600,
                name=job.name,
            )
        scheduler.start()  # type: ignore[no-untyped-call]

    _reconnecting(settings, serve, "scheduler retrying in {delay}")


@click.group("outbox")
def outbox() -> None:
    """Inspect and drive the notification outbox (works without Redis)."""


@outbox.command("status")
@click.pass_context
def status_cmd(ctx: click.Context) -> None:
    """Rows per status and how many are due now."""
    from acikkapi.cli import _transaction
    from services.outbox_dispatch import backlog

    with _transaction(ctx) as session:
        counts = backlog(session, datetime.now(UTC))
    for key in sorted(counts):
        click.echo(f"{key:<10} {counts[key]:>8}")


@outbox.command("dead")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def dead_cmd(ctx: click.Context, limit: int) -> None:
    """The dead-letter list: notifications that will not be retried on their own."""
    from acikkapi.cli import _transaction
    from services.outbox_dispatch import dead_letters

    with _transaction(ctx) as session:
        rows = dead_letters(session, limit=limit)
        if not rows:
            click.echo("Ölü mektup yok / no dead letters.")
        for n in rows:
            click.echo(
                f"{n.id:>8}  {n.channel.value:<7} {n.recipient:<28} {n.template:<28} "
                f"attempts={n.attempts}  {n.last_error or ''}"
            )


@outbox.command("requeue")
@click.argument("notification_id", type=int)
@click.pass_context
def requeue_cmd(ctx: click.Context, notification_id: int) -> None:
    """Give a dead notification a fresh set of attempts."""
    from acikkapi.cli import _transaction
    from services.outbox_dispatch import requeue_dead

    with _transaction(ctx) as session:
        ok = requeue_dead(session, datetime.now(UTC), notification_id)
    if not ok:
        raise click.ClickException(f"notification {notification_id} is not in the dead-letter list")
    click.echo(f"notification {notification_id} requeued")


@outbox.command("dispatch")
@click.option("--limit", default=500, show_default=True)
@click.pass_context
def dispatch_cmd(ctx: click.Context, limit: int) -> None:
    """Send due notifications now, in this process, without Redis."""
    from jobs.notifications import claim, send_batch
    from jobs.runtime import runtime

    report = claim(runtime(), limit)
    counts = send_batch(report.claimed) if report.claimed else {}
    click.echo(f"claimed {len(report.claimed)}, dead {len(report.dead)}, {counts}")
