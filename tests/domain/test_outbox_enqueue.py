"""Writing to the outbox (R2.2): the row is inserted at once and handed back persistent."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from models import Language, Notification, NotificationChannel, OutboxStatus
from services import outbox

ROOT = Path(__file__).resolve().parents[2]


def _enqueue(session: Session, now: datetime, key: str) -> Notification:
    return outbox.enqueue(
        session,
        now,
        key=key,
        channel=NotificationChannel.SMS,
        recipient="+905320000001",
        template="ticket_opened",
        language=Language.TR,
        payload={"reference_code": "TEST-CODE"},
    )


def test_the_row_is_written_at_once_and_once_per_key(session: Session, now: datetime) -> None:
    note = _enqueue(session, now, "test:enqueue:1")
    state = inspect(note)
    assert state.persistent and not session.new  # nothing left for a flush to write
    table = Notification.__table__
    row = session.execute(select(table).where(table.c.id == note.id)).one()._mapping
    assert {key: getattr(note, key) for key in row} == dict(row)
    assert note.status is OutboxStatus.PENDING and note.attempts == 0 and note.sent_at is None
    again = _enqueue(session, now, "test:enqueue:1")
    assert again is note
    count = select(func.count()).select_from(Notification)
    assert session.scalar(count.where(Notification.idempotency_key == "test:enqueue:1")) == 1


def test_a_process_whose_first_work_is_the_outbox_can_write_to_it(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """No ORM query has configured the mappers yet when the row is made persistent."""
    source = sqlite_engine.url.database
    assert source is not None
    copy = tmp_path / "fresh.db"
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    script = f"""
from datetime import UTC, datetime
from acikkapi.db import make_engine, make_session_factory
from models import Language, NotificationChannel
from services import outbox
with make_session_factory(make_engine("sqlite:///{copy}"))() as session:
    note = outbox.enqueue(
        session, datetime.now(UTC), key="fresh-process", channel=NotificationChannel.SMS,
        recipient="+905320000002", template="ticket_opened", language=Language.TR, payload={{}},
        key_is_new=True,
    )
    session.commit()
    print(note.id, note.idempotency_key)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    note_id, key = done.stdout.split()
    with sqlite3.connect(copy) as db:
        assert db.execute(
            "SELECT idempotency_key FROM notifications WHERE id = ?", (int(note_id),)
        ).fetchone() == (key,)
