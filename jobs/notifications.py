"""RQ jobs that dispatch the notification outbox (issue 5; R2.2, R3.4).

``dispatch_due`` runs every few seconds (see :mod:`jobs.schedule`): it leases due outbox
rows in the database and enqueues ``send_batch`` jobs carrying only their ids. ``send_batch``
sends each row through the configured gateway with the row's idempotency key and settles it.
Redis never holds the only copy of anything: if a job is lost (Redis restarted, worker
killed) the lease runs out and the next ``dispatch_due`` hands the row out again; the
gateway recognises the repeated key (file gateway: same file; HTTP: client reference).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue

from acikkapi.db import unit_of_work
from jobs.runtime import Runtime, runtime
from messaging.delivery import DeliveryError, OutgoingEmail, OutgoingSms, SendResult
from models import NotificationChannel, OutboxStatus
from services import outbox_dispatch
from services.email_channel import ticket_email_subject
from services.notification_text import TemplateProblem, compose, template_context

log = logging.getLogger(__name__)

QUEUE = "notifications"
BATCH_SIZE = 25
SETTLE_EVERY = 10  # accepted messages settled per transaction
CLAIM_LIMIT = 500
MAX_QUEUED_BATCHES = 8  # back-pressure: claim no more while this many batches wait


@dataclass(frozen=True)
class _Row:
    id: int
    key: str
    channel: NotificationChannel
    recipient: str
    template: str
    language: str
    payload: dict[str, Any]


def noop() -> None:
    """A job that does nothing: the baseline of ``bench/notification_dispatch.py``."""


def _now() -> datetime:
    return datetime.now(UTC)


def dispatch_due(limit: int = CLAIM_LIMIT, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Lease due outbox rows and enqueue them in batches. Safe to run concurrently."""
    rt = runtime()
    queue = Queue(QUEUE, connection=rt.redis())
    waiting = queue.count
    room = max(MAX_QUEUED_BATCHES - waiting, 0) * batch_size
    if room == 0:
        return {"claimed": 0, "dead": 0, "batches": 0, "waiting": waiting}
    report = claim(rt, min(limit, room))
    batches = [
        report.claimed[i : i + batch_size] for i in range(0, len(report.claimed), batch_size)
    ]
    for batch in batches:
        queue.enqueue(send_batch, batch, job_timeout=rt.settings.outbox_lease_seconds)
    return {
        "claimed": len(report.claimed),
        "dead": len(report.dead),
        "batches": len(batches),
        "waiting": waiting,
    }


def claim(rt: Runtime, limit: int) -> outbox_dispatch.ClaimReport:
    """Lease up to ``limit`` due rows for ``outbox_lease_seconds`` (one transaction)."""
    with unit_of_work(rt.sessions) as session:
        report = outbox_dispatch.claim_due(
            session,
            _now(),
            limit=limit,
            lease=timedelta(seconds=rt.settings.outbox_lease_seconds),
        )
    for dead_id in report.dead:
        log.warning(
            "notification %s moved to the dead-letter list: lease expired too often", dead_id
        )
    return report


def send_batch(ids: list[int]) -> dict[str, int]:
    """Send the leased rows among ``ids``; rows settled meanwhile are skipped."""
    rt = runtime()
    with unit_of_work(rt.sessions) as session:
        rows = [
            _Row(
                id=n.id,
                key=n.idempotency_key,
                channel=n.channel,
                recipient=n.recipient,
                template=n.template,
                language=str(n.language),
                payload=dict(n.payload or {}),
            )
            for n in outbox_dispatch.leased(session, ids)
        ]
    counts = {"sent": 0, "failed": 0, "dead": 0, "released": 0, "skipped": len(ids) - len(rows)}
    started = time.monotonic()
    budget = rt.settings.outbox_lease_seconds / 2  # never work on a row past its lease
    accepted: list[tuple[int, str | None]] = []
    for index, row in enumerate(rows):
        if time.monotonic() - started > budget:
            rest = [r.id for r in rows[index:]]
            with unit_of_work(rt.sessions) as session:
                counts["released"] = outbox_dispatch.release(session, _now(), rest)
            log.warning("slow gateway: %d leased rows handed back unattempted", len(rest))
            break
        outcome = send_one(rt, row, accepted)
        counts[outcome] += 1
        if len(accepted) >= SETTLE_EVERY:
            _settle(rt, accepted)
    _settle(rt, accepted)
    if rows:
        # Keep the pipeline full under load instead of waiting for the next scheduled run.
        try:
            dispatch_due()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("could not refill the queue (%s); the scheduler will", exc)
    return counts


def send_one(rt: Runtime, row: _Row, accepted: list[tuple[int, str | None]]) -> str:
    """One attempt for one row; returns "sent", "failed" or "dead".

    A failure is settled at once; an accepted message is appended to ``accepted`` and
    settled with the next :func:`_settle` (one transaction for several rows). A crash in
    between leaves those rows leased: they are sent again with the same keys, which the
    gateway recognises (see docs/decisions/0014).
    """
    try:
        result = _deliver(rt, row)
    except (DeliveryError, TemplateProblem) as exc:
        retryable = isinstance(exc, DeliveryError) and exc.retryable
        with unit_of_work(rt.sessions) as session:
            status = outbox_dispatch.mark_failed(
                session, _now(), row.id, error=f"{type(exc).__name__}: {exc}", retryable=retryable
            )
        log.warning("notification %s (%s) attempt failed: %s → %s", row.id, row.key, exc, status)
        return "dead" if status is OutboxStatus.DEAD else "failed"
    if result.duplicate:
        log.info("notification %s (%s): the gateway already had this key", row.id, row.key)
    accepted.append((row.id, result.provider_message_id))
    return "sent"


def _settle(rt: Runtime, accepted: list[tuple[int, str | None]]) -> None:
    if accepted:
        with unit_of_work(rt.sessions) as session:
            outbox_dispatch.mark_sent_many(session, _now(), accepted)
        accepted.clear()


def _deliver(rt: Runtime, row: _Row) -> SendResult:
    settings = rt.settings
    message = compose(
        template=row.template,
        language=row.language,
        payload=row.payload,
        context=template_context(settings),
        email_subject=partial(ticket_email_subject, municipality=settings.municipality_name)
        if row.channel is NotificationChannel.EMAIL
        else None,
    )
    if row.channel is NotificationChannel.CONSOLE:
        # Staff notices are read from the outbox by the console itself; nothing to send.
        return SendResult(provider_message_id=f"console:{row.recipient}")
    if row.channel is NotificationChannel.SMS:
        return rt.sms_gateway().send(
            OutgoingSms(
                recipient=row.recipient,
                text=message.text,
                idempotency_key=row.key,
                sender=settings.sms_sender,
            )
        )
    return rt.email_sender().send(
        OutgoingEmail(
            recipient=row.recipient,
            subject=message.subject,
            body_text=message.text,
            idempotency_key=row.key,
            sender=settings.mail_from,
        )
    )
