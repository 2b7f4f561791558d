"""Serialising concurrent intake of the same identity (dedup must see the other transaction).

PostgreSQL: transaction-scoped advisory locks, taken in a fixed order so two transactions can
never deadlock on them. SQLite: every write transaction already starts with
``BEGIN IMMEDIATE`` (see :mod:`acikkapi.db`), which serialises writers, so nothing is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def _lock_id(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def uses_locks(session: Session) -> bool:
    """True when the session's database needs these locks (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def _ids(session: Session, keys: Iterable[str]) -> list[int]:
    if not uses_locks(session):
        return []
    return sorted({_lock_id(k) for k in keys})


# One round trip; the ordered subquery makes every transaction lock in the same order.
_LOCK = text(
    "SELECT pg_advisory_xact_lock(id) FROM "
    "(SELECT unnest(CAST(:ids AS bigint[])) AS id ORDER BY 1) AS ordered"
)


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """Hold a lock on each key until the caller's transaction ends (PostgreSQL only)."""
    ids = _ids(session, keys)
    if ids:
        session.connection().execute(_LOCK, {"ids": ids})


_ORDERED = (
    select(func.unnest(bindparam("lock_ids", type_=ARRAY(BigInteger))).label("id"))
    .order_by(literal_column("1"))
    .subquery("ordered")
)
LOCK_COLUMN: ColumnElement[int] = (
    select(func.count(func.pg_advisory_xact_lock(_ORDERED.c.id))).scalar_subquery().label("locked")
)
""":func:`lock_keys` as a column (``locked``: the number of keys) for a caller to add to a
statement that returns exactly one row (PostgreSQL only; parameters from :func:`lock_params`),
so that locking costs no round trip of its own.

Guarantees: the same locks, in the same order, held until the transaction ends, taken
while that statement runs. Only what the *next* statements read is sure to include the
work of a transaction that held a key before: the statement itself must read nothing that
depends on the locks."""


# Per-citizen locks live in PostgreSQL's other advisory key space (two int4 keys), which
# never overlaps the one-bigint space of the keys above.
CITIZEN_LOCK_SPACE = 0x414B4331  # "AKC1"


def citizen_lock(citizen_id: ColumnElement[int]) -> ColumnElement[Any]:
    """A column that locks the citizen ``citizen_id`` (PostgreSQL) until the transaction
    ends, as :func:`lock_keys` does for keys.

    For a statement that reads citizens: select it over a subquery ordered by id (a subquery
    with ORDER BY is never flattened), so every transaction locks citizens in id order, and
    always after its keys. What the *next* statements read includes the work of any
    transaction that held the lock before.
    """
    lock = func.pg_advisory_xact_lock(literal_column(str(CITIZEN_LOCK_SPACE), Integer), citizen_id)
    return lock.is_(None)  # a boolean, not PostgreSQL's "void": usable in a UNION


def lock_params(session: Session, keys: Iterable[str]) -> dict[str, list[int]] | None:
    """The parameters of :data:`LOCK_COLUMN` for ``keys`` (``None``: nothing to lock, or not
    PostgreSQL: leave the column out)."""
    ids = _ids(session, keys)
    return {"lock_ids": ids} if ids else None
