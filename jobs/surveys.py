"""The survey SMS fallback's periodic safety net as an RQ job (issue 6; R5.2)."""

from __future__ import annotations

from datetime import UTC, datetime

from acikkapi.db import unit_of_work
from jobs.runtime import runtime

MAX_ROUNDS = 50  # at most 50 × batch_size targets per run; the next run takes the rest


def send_survey_sms_fallbacks(batch_size: int = 200) -> int:
    """Ask by SMS every recently exhausted survey target whose ticket was never asked
    (services.survey_sms.send_missing_fallbacks), one transaction per batch.

    Idempotent: each ticket is asked at most once per SLA cycle (unique request key), so a
    late, repeated or overlapping run is harmless. The SMS go out through the outbox
    (jobs.notifications). Returns the number of requests written.
    """
    from services.survey_sms import send_missing_fallbacks

    rt = runtime()
    written = 0
    after_id = 0
    for _ in range(MAX_ROUNDS):
        with unit_of_work(rt.sessions) as session:
            batch = send_missing_fallbacks(
                session, now=datetime.now(UTC), limit=batch_size, after_id=after_id
            )
        written += batch.written
        if batch.examined < batch_size or batch.last_target_id is None:
            break
        after_id = batch.last_target_id
    return written
