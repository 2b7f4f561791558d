"""Serialising concurrent intake of the same identity (dedup must see the other transaction).

PostgreSQL: transaction-scoped advisory locks, taken in a fixed order so two transactions can
never deadlock on them. SQLite: every write transaction already starts with
``BEGIN IMMEDIATE`` (see :mod:`acikkapi.db`), which serialises writers, so nothing is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session


def _lock_id(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """Hold a lock on each key until the caller's transaction ends (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({_lock_id(k) for k in keys})
    if not ids:
        return
    # One round trip; the ordered subquery makes every transaction lock in the same order.
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(id) FROM "
            "(SELECT unnest(CAST(:ids AS bigint[])) AS id ORDER BY 1) AS ordered"
        ),
        {"ids": ids},
    )
