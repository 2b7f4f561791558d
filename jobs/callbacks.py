"""Callbacks (R5.3) as a periodic RQ job: due callback tasks → the standing "Geri aramalar"
campaign, and every open task brought in step with what the dialer did (the safety net of
the listener's sync, ami_listener/callback_events.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from acikkapi.db import unit_of_work
from jobs.runtime import runtime


def callback_sweep() -> dict[str, int]:
    """Enqueue due callbacks and sync open tasks (services.callback_campaign), one short
    transaction each. The calling window follows ``ACIKKAPI_SERVICE_HOURS``.

    Idempotent: a task gets at most one open target, and syncing twice changes nothing, so
    a late, repeated or overlapping run is harmless. Returns how many targets were added and
    how many tasks changed status.
    """
    from services.callback_campaign import enqueue_due_callbacks, sync_callback_tasks
    from services.service_hours import parse_service_hours

    rt = runtime()
    hours = parse_service_hours(rt.settings.service_hours)
    with unit_of_work(rt.sessions) as session:
        added = enqueue_due_callbacks(session, now=datetime.now(UTC), hours=hours)
    with unit_of_work(rt.sessions) as session:
        synced = sync_callback_tasks(session, now=datetime.now(UTC))
    return {"enqueued": added, "synced": synced}
