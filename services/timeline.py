"""Writing the append-only ticket timeline (R3.2).

A timeline row is built in one place, :func:`entry`; :func:`record` adds it to the session
(written with the next flush), :func:`write` inserts a list of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, insert, select, union_all
from sqlalchemy.orm import Session

from models import StaffUser, Ticket, TicketEvent, TicketStatus, TimelineAction
from services.ticket_ids import insert_rows

_FIELDS = (
    "ticket_id",
    "at",
    "actor_id",
    "action",
    "from_status",
    "to_status",
    "note",
    "data",
    "step_key",
)
_TABLE = cast(Table, TicketEvent.__table__)
# Up to this many rows, :func:`write` runs a statement built once per count (the intake
# path's few rows); a larger batch goes as one JSON parameter (services.ticket_ids).
_PREPARED_UP_TO = 16


def record(
    session: Session,
    ticket: Ticket,
    actor: StaffUser,
    now: datetime,
    action: TimelineAction,
    *,
    note: str | None = None,
    from_status: TicketStatus | None = None,
    to_status: TicketStatus | None = None,
    step_key: str | None = None,
    **data: Any,
) -> TicketEvent:
    """Append one entry to ``ticket``'s timeline (never updates an existing one).

    The entry is added to the session and written with its next flush.
    """
    return add(
        session,
        entry(
            ticket.id,
            actor.id,
            now,
            action,
            note=note,
            from_status=from_status,
            to_status=to_status,
            step_key=step_key,
            **data,
        ),
    )


def add(session: Session, values: dict[str, Any]) -> TicketEvent:
    """Add the entry ``values`` (from :func:`entry`) to the session, as :func:`record` does."""
    event = TicketEvent(**values)
    session.add(event)
    return event


def entry(
    ticket_id: int,
    actor_id: int,
    now: datetime,
    action: TimelineAction,
    *,
    note: str | None = None,
    from_status: TicketStatus | None = None,
    to_status: TicketStatus | None = None,
    step_key: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """The values of one timeline row, for :func:`write` or :func:`add`."""
    return {
        "ticket_id": ticket_id,
        "at": now,
        "actor_id": actor_id,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data,
        "step_key": step_key,
    }


def write(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Insert ``entries`` (from :func:`entry`) now, in one statement, in the given order.

    Guarantees: the rows are appended in order (their ids increase in list order), in the
    caller's transaction; the tickets they name must already be written. Nothing is added
    to the session: the rows are read back through ``ticket_events`` like any other.
    """
    if not entries:
        return
    if len(entries) > _PREPARED_UP_TO:
        insert_rows(session, _TABLE, entries)
        return
    params = {f"{name}_{i}": entry[name] for i, entry in enumerate(entries) for name in _FIELDS}
    session.connection().execute(_insert_rows(len(entries)), params)


@cache
def _insert_rows(count: int) -> Insert:
    """``INSERT … SELECT`` of ``count`` rows of parameters joined by ``UNION ALL``: one
    statement whatever the count, built once per count (a multi-row ``VALUES`` insert would
    be compiled again at every execution, and the driver's many-rows path costs more)."""
    rows = [
        select(*(bindparam(f"{name}_{i}", type_=_TABLE.c[name].type) for name in _FIELDS))
        for i in range(count)
    ]
    return insert(TicketEvent).from_select(_FIELDS, union_all(*rows) if count > 1 else rows[0])
