"""The mayor's weekly call list as a periodic RQ job (issue 6, R5.4).

``acikkapi worker schedule`` runs :func:`weekly_mayor_list` every few minutes (entry
``mayor-weekly-list`` in :mod:`jobs.schedule`). It draws only once the week's configured
moment has passed (``ACIKKAPI_MAYOR_LIST_WEEKDAY``/``_HOUR``, Monday 09:00 Europe/Istanbul
by default) and no list exists for the week, then publishes it (e-mails through the
outbox). Drawing and publishing are idempotent, so a late, repeated or concurrent run is
harmless; a scheduler that was down at 09:00 draws at its next run in the same week.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from acikkapi.db import unit_of_work
from acikkapi.settings import Settings
from jobs.runtime import runtime

QUEUE = "sweeps"
INTERVAL_S = 600  # checks every 10 minutes: the list is out at most 10 minutes after 09:00


def draw_moment(now: datetime, settings: Settings) -> datetime:
    """When this week's list is due: the configured weekday and hour of the local week
    holding ``now`` (aware)."""
    from services.mayor_calls import week_start_of

    tz = ZoneInfo(settings.timezone)
    monday = week_start_of(now, tz)
    day = monday + timedelta(days=settings.mayor_list_weekday - 1)
    return datetime.combine(day, time(settings.mayor_list_hour), tzinfo=tz)


def run_weekly(
    sessions: sessionmaker[Session], settings: Settings, now: datetime
) -> dict[str, Any]:
    """One run of the job at ``now``, in its own transaction (committed here)."""
    from services.mayor_calls import draw_weekly_list, list_for_week, publish_list, week_start_of

    if now < draw_moment(now, settings):
        return {"due": False}
    tz = ZoneInfo(settings.timezone)
    with unit_of_work(sessions) as session:
        existing = list_for_week(session, week_start_of(now, tz))
        if existing is not None and existing.published_at is not None:
            return {"due": True, "list_id": existing.id, "drawn": False, "emails": 0}
        call_list = existing or draw_weekly_list(
            session,
            now=now,
            actor=None,
            size=settings.mayor_list_size,
            exclude_weeks=settings.mayor_list_exclude_weeks,
            tz=tz,
        )
        emails = publish_list(session, now=now, call_list=call_list)
        return {
            "due": True,
            "list_id": call_list.id,
            "drawn": existing is None,
            "entries": len(call_list.entries),
            "emails": emails,
        }


def weekly_mayor_list() -> dict[str, Any]:
    """The periodic job: draw and publish this week's list when it is due (idempotent)."""
    rt = runtime()
    return run_weekly(rt.sessions, rt.settings, datetime.now(UTC))
