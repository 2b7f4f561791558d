"""Periodic jobs with stable names, enqueued by RQ's cron scheduler (issue 5).

``acikkapi worker schedule`` runs one :class:`rq.cron.CronScheduler` with these entries.
The jobs only look at what the database holds (due outbox rows, due escalations, the
mailbox), so running a job late, twice or concurrently is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acikkapi.settings import Settings


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # stable id, shown by `acikkapi worker schedule --list`
    func: Any
    queue: str
    interval_s: int
    timeout_s: int


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    """The schedule for this installation (the mailbox poll only when IMAP is configured)."""
    from jobs.notifications import QUEUE as NOTIFICATIONS
    from jobs.notifications import dispatch_due
    from jobs.sweeps import escalation_sweep

    jobs = [
        PeriodicJob("outbox-dispatch", dispatch_due, NOTIFICATIONS, 2, 60),
        PeriodicJob("sla-escalation-sweep", escalation_sweep, "sweeps", 60, 600),
    ]
    if settings.imap_host:
        from jobs.mail import poll_inbox

        jobs.append(PeriodicJob("email-inbox-poll", poll_inbox, "sweeps", 60, 300))
    return jobs
