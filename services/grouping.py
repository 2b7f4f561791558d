"""Grouping reports of the same problem at the same place by different citizens (R2.4).

Grouped tickets stay separate (each citizen keeps a reference code and gets an answer) but
share a :class:`~models.TicketGroup`, so the department sees one problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    RowMapping,
    Select,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import OPEN_STATUSES, Ticket, TicketGroup

SAME_PLACE_METRES = 50.0
# Written into the SQL (fixed ASCII values), not an expanding parameter that every execution
# would have to render again.
IS_OPEN = Ticket.status.in_([literal_column(f"'{s.value}'") for s in sorted(OPEN_STATUSES)])
_DEG_LAT_METRES = 111_320.0


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def find_same_place(session: Session, ticket: Ticket) -> Ticket | None:
    """An open ticket of the same type at the same place from a different citizen, if any.

    Same place: the same neighbourhood (or none) and the same normalised address, or both
    have coordinates within 50 m. Each criterion is one indexed query.
    """
    session.flush()
    found = same_place(
        session.connection(),
        ticket_type_id=ticket.ticket_type_id,
        citizen_id=ticket.citizen_id,
        neighbourhood_id=ticket.neighbourhood_id,
        place_key=ticket.place_key,
        latitude=ticket.latitude,
        longitude=ticket.longitude,
        exclude_id=ticket.id,
    )
    return session.get(Ticket, found["id"]) if found is not None else None


# What grouping needs of the other ticket.
COLUMNS: tuple[Any, ...] = (
    Ticket.id,
    Ticket.reference_code,
    Ticket.group_id,
    Ticket.ticket_type_id,
    Ticket.neighbourhood_id,
    Ticket.place_key,
    Ticket.latitude,
    Ticket.longitude,
)


def _base(
    has_citizen: bool, has_exclude: bool, columns: tuple[Any, ...] = COLUMNS
) -> Select[*tuple[Any, ...]]:
    base: Select[*tuple[Any, ...]] = select(*columns).where(
        Ticket.ticket_type_id == bindparam("ticket_type_id"), IS_OPEN
    )
    if has_exclude:
        base = base.where(Ticket.id != bindparam("exclude_id"))
    if has_citizen:
        citizen_id: BindParameter[int] = bindparam("citizen_id")
        base = base.where(or_(Ticket.citizen_id.is_(None), Ticket.citizen_id != citizen_id))
    return base


@cache
def same_address_query(
    has_citizen: bool,
    has_exclude: bool,
    has_neighbourhood: bool,
    columns: tuple[Any, ...] = COLUMNS,
) -> Select[*tuple[Any, ...]]:
    """The first criterion of :func:`find_same_place` as one statement returning at most one
    row of ``columns``; parameters ``ticket_type_id``, ``citizen_id`` (with
    ``has_citizen``), ``exclude_id``, ``place_key`` and ``neighbourhood_id``. Built once per
    shape: executing it costs no statement building or cache-key work."""
    return (
        _base(has_citizen, has_exclude, columns)
        .where(
            Ticket.place_key == bindparam("place_key"),
            Ticket.neighbourhood_id == bindparam("neighbourhood_id")
            if has_neighbourhood
            else Ticket.neighbourhood_id.is_(None),
        )
        .order_by(Ticket.id)
        .limit(1)
    )


@cache
def _nearby(has_citizen: bool, has_exclude: bool) -> Select[*tuple[Any, ...]]:
    return (
        _base(has_citizen, has_exclude)
        .where(
            Ticket.latitude.between(bindparam("lat_min"), bindparam("lat_max")),
            Ticket.longitude.between(bindparam("lon_min"), bindparam("lon_max")),
        )
        .order_by(Ticket.id)
        .limit(50)
    )


def same_place(
    conn: Connection,
    *,
    ticket_type_id: int,
    citizen_id: int | None,
    neighbourhood_id: int | None,
    place_key: str | None,
    latitude: float | None,
    longitude: float | None,
    exclude_id: int | None = None,
    by_address: bool = True,
) -> RowMapping | None:
    """:func:`find_same_place` for a ticket given by its values (one not written yet): the
    other ticket's :data:`COLUMNS`, or ``None``. ``by_address=False`` skips the first
    criterion (for a caller that has run :func:`same_address_query` itself)."""
    if not place_key and (latitude is None or longitude is None):
        return None  # nothing to compare: no query at all
    params: dict[str, Any] = {"ticket_type_id": ticket_type_id}
    if citizen_id is not None:
        params["citizen_id"] = citizen_id
    if exclude_id is not None:
        params["exclude_id"] = exclude_id
    shape = (citizen_id is not None, exclude_id is not None)
    if place_key and by_address:
        query = same_address_query(*shape, neighbourhood_id is not None)
        found = conn.execute(
            query, {**params, "place_key": place_key, "neighbourhood_id": neighbourhood_id}
        ).first()
        if found is not None:
            return found._mapping
    if latitude is None or longitude is None:
        return None
    lat, lon = latitude, longitude
    dlat = SAME_PLACE_METRES / _DEG_LAT_METRES
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    box = {
        "lat_min": lat - dlat,
        "lat_max": lat + dlat,
        "lon_min": lon - dlon,
        "lon_max": lon + dlon,
    }
    for other in conn.execute(_nearby(*shape), {**params, **box}):
        if (
            other.latitude is not None
            and other.longitude is not None
            and _distance_m(lat, lon, other.latitude, other.longitude) <= SAME_PLACE_METRES
        ):
            return other._mapping
    return None


_INSERT_GROUP = insert(TicketGroup).returning(TicketGroup.id)
_GROUP_FIELDS = ("id", "group_id", "ticket_type_id", "neighbourhood_id", "place_key")
_SET_GROUP = (
    update(Ticket).where(Ticket.id == bindparam("b_id")).values(group_id=bindparam("b_group"))
)


def group_of(session: Session, now: datetime, other: Mapping[Any, Any]) -> int:
    """The id of the group of the ticket ``other`` (its ``id``, ``group_id``,
    ``ticket_type_id``, ``neighbourhood_id`` and ``place_key``), creating the group and
    putting that ticket in it when it has none. Written at once; the session's object of
    that ticket follows its row."""
    existing: int | None = other["group_id"]
    if existing is not None:
        return existing
    conn = session.connection()
    group_id: int = conn.execute(
        _INSERT_GROUP,
        {
            "ticket_type_id": other["ticket_type_id"],
            "neighbourhood_id": other["neighbourhood_id"],
            "place_key": other["place_key"],
            "created_at": now,
        },
    ).scalar_one()
    conn.execute(_SET_GROUP, {"b_id": other["id"], "b_group": group_id})
    loaded = session.identity_map.get(session.identity_key(Ticket, other["id"]))
    if loaded is not None:
        set_committed_value(loaded, "group_id", group_id)
    return group_id


def group_with(session: Session, now: datetime, ticket: Ticket, other: Ticket) -> TicketGroup:
    """Put ``ticket`` in ``other``'s group, creating the group when ``other`` has none."""
    session.flush()
    group_id = group_of(session, now, {name: getattr(other, name) for name in _GROUP_FIELDS})
    ticket.group_id = group_id
    group = session.get(TicketGroup, group_id)
    assert group is not None
    return group
