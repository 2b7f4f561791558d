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
    from jobs.callbacks import callback_sweep
    from jobs.mayor import weekly_mayor_list
    from jobs.notifications import QUEUE as NOTIFICATIONS
    from jobs.notifications import dispatch_due
    from jobs.surveys import send_survey_sms_fallbacks
    from jobs.sweeps import escalation_sweep
    from outbound.jobs import QUEUE as OUTBOUND
    from outbound.jobs import dial_tick, recover_attempts

    jobs = [
        PeriodicJob("outbox-dispatch", dispatch_due, NOTIFICATIONS, 2, 60),
        PeriodicJob("sla-escalation-sweep", escalation_sweep, "sweeps", 60, 600),
        # Outbound dialer (issue 6, decision 0021): claim → commit → Originate; lease recovery.
        PeriodicJob("outbound-dial-tick", dial_tick, OUTBOUND, 1, 60),
        PeriodicJob("outbound-recover", recover_attempts, OUTBOUND, 60, 120),
        # Due callbacks become targets of the standing callback campaign (R5.3).
        PeriodicJob("callback-sweep", callback_sweep, "sweeps", 30, 120),
        # Survey SMS fallback safety net (R5.2): exhausted survey targets asked by SMS.
        PeriodicJob("survey-sms-fallbacks", send_survey_sms_fallbacks, "sweeps", 600, 300),
        # The mayor's weekly list, drawn and published when due (R5.4, decision 0022).
        PeriodicJob("mayor-weekly-list", weekly_mayor_list, "sweeps", 600, 300),
    ]
    if settings.imap_host:
        from jobs.mail import poll_inbox

        jobs.append(PeriodicJob("email-inbox-poll", poll_inbox, "sweeps", 60, 300))
    return jobs
