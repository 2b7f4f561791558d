"""Ticket ids known before the row is written, so the reference code goes into the INSERT.

PostgreSQL: ids come from the table's own sequence, fetched a block at a time per process
(a rolled-back transaction leaves a gap, which a sequence does anyway). SQLite: ``None``;
the caller flushes to get the id, as every writer there is serialised anyway.
"""

from __future__ import annotations

import threading
from collections import deque

from sqlalchemy import text
from sqlalchemy.orm import Session

BLOCK = 32
_pools: dict[str, deque[int]] = {}
_lock = threading.Lock()


def allocate_ticket_id(session: Session) -> int | None:
    """A fresh ``tickets.id`` from the sequence (PostgreSQL), or ``None`` (SQLite)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    key = bind.engine.url.render_as_string(hide_password=True)
    with _lock:
        pool = _pools.setdefault(key, deque())
        if pool:
            return pool.popleft()
    ids = session.scalars(
        text("SELECT nextval(pg_get_serial_sequence('tickets', 'id')) FROM generate_series(1, :n)"),
        {"n": BLOCK},
    ).all()
    with _lock:
        pool.extend(int(i) for i in ids[1:])
    return int(ids[0])
