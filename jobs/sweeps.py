"""The periodic SLA escalation sweep as an RQ job (issue 5; R2.6, R3.3)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from acikkapi.db import unit_of_work
from jobs.runtime import runtime

MAX_ROUNDS = 50  # at most 50 × batch_size steps per run; the next run takes the rest


def escalation_sweep(batch_size: int = 500) -> list[dict[str, Any]]:
    """Run the sweep in transactions of ``batch_size`` tickets until nothing is due.

    Idempotent (the service records each step once), so a repeated or overlapping run is
    harmless; the outbox rows it writes are dispatched by :mod:`jobs.notifications`.
    """
    from services.escalation import run_sweep

    rt = runtime()
    reports: list[dict[str, Any]] = []
    for _ in range(MAX_ROUNDS):
        with unit_of_work(rt.sessions) as session:
            report = run_sweep(session, datetime.now(UTC), batch_size=batch_size)
        reports.append(asdict(report))
        if not report.more:
            break
    return reports
