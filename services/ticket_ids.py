"""Rows written with Core statements instead of the unit of work: ids known before the row
is written, objects for the rows written, and many rows in one statement.

PostgreSQL: ticket ids come from the table's own sequence, fetched a block at a time per
process (a rolled-back transaction leaves a gap, which a sequence does anyway), so the
reference code goes into the INSERT. SQLite: ``None``; the caller reads the id back, as
every writer there is serialised anyway.

:func:`adopt_written` turns the values just INSERTed into a persistent object of the
session, exactly as if the session had inserted it itself, without reading the row back;
:func:`adopt_loaded` does the same for a row read with a Core ``SELECT``.
:func:`insert_rows` writes a batch of rows (the escalation sweep's thousands of outbox and
timeline rows) in one statement.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, insert, inspect, text
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

BLOCK = 32
_pools: dict[str, deque[int]] = {}
_lock = threading.Lock()

T = TypeVar("T")
_NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('tickets', 'id')) FROM generate_series(1, :n)"
)


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
    ids = session.scalars(_NEXT_IDS, {"n": BLOCK}).all()
    with _lock:
        pool.extend(int(i) for i in ids[1:])
    return int(ids[0])


def _instance(session: Session, cls: type[T], values: Mapping[Any, Any]) -> tuple[T, bool]:
    """The session's object for the row ``values`` describes, or a new one; True if new."""
    mapper = inspect(cls)
    if not mapper.configured:  # a process whose first statements were all Core
        configure_mappers()
    key = mapper.identity_key_from_primary_key(tuple(values[c.key] for c in mapper.primary_key))
    existing = session.identity_map.get(key)
    if existing is not None:
        return existing, False
    obj: T = mapper.class_manager.new_instance()
    instance_dict(obj).update(values)  # committed values, as a load sets them
    make_transient_to_detached(obj)  # identity key; columns not given expire (load on use)
    attach = getattr(session, "_update_impl", None)
    if attach is not None:
        # What Session.add does with a detached object, without walking the relationship
        # cascades (half the cost here): a new object has no related objects to cascade to.
        attach(inspect(obj))
    else:  # pragma: no cover - other SQLAlchemy versions
        session.add(obj)
    return obj, True


def adopt_written(session: Session, cls: type[T], values: Mapping[Any, Any]) -> T:
    """The persistent object of ``cls`` for a row just inserted with ``values`` (primary
    key included) in this session's transaction, without reading the row back.

    Guarantees: no SQL is emitted; the values given count as loaded and the columns not
    given (defaults, columns added later) are read from the row when first used; a rollback
    of the transaction or savepoint that wrote the row expunges the object, as for an
    object the session flushed itself.
    """
    obj, new = _instance(session, cls, values)
    if not new:  # an object left over for the same key: it describes this row now
        for attr, value in values.items():
            set_committed_value(obj, attr, value)
    transaction = session._transaction  # the innermost one: a savepoint when nested
    if transaction is not None:
        # What the unit of work records for the rows it inserts (Session._register_persistent).
        transaction._new[inspect(obj)] = True
    return obj


def adopt_loaded(session: Session, cls: type[T], values: Mapping[Any, Any]) -> T:
    """The persistent object of ``cls`` for an existing row read with Core: the session's
    own object when it has one (identity map first, as an ORM query), else one built from
    ``values`` without another read."""
    obj, _ = _instance(session, cls, values)
    return obj


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {value!r} in a batch row")


def rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` as the JSON array that ``jsonb_to_recordset`` reads (aware datetimes as ISO
    text; strings, enum values, numbers, JSON-able dicts and lists as they are)."""
    return json.dumps(rows, default=_json_value)


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) into ``table`` in the caller's transaction,
    in the given order.

    On PostgreSQL one ``INSERT … SELECT FROM jsonb_to_recordset(:rows)`` statement carries
    the whole batch (a few times faster than an executemany of thousands of rows); elsewhere
    an executemany. Values as :func:`rows_json` takes them. Unique constraints guard as for
    any insert; nothing is added to the session.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    columns = ", ".join(names)
    record = ", ".join(f"{n} {table.c[n].type.compile(dialect=connection.dialect)}" for n in names)
    connection.execute(
        text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} "
            f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record})"
        ),
        {"rows": rows_json(rows)},
    )
