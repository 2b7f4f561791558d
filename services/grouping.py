"""Grouping reports of the same problem at the same place by different citizens (R2.4).

Grouped tickets stay separate (each citizen keeps a reference code and gets an answer) but
share a :class:`~models.TicketGroup`, so the department sees one problem.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Ticket, TicketGroup

SAME_PLACE_METRES = 50.0
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
    base = select(Ticket).where(
        Ticket.ticket_type_id == ticket.ticket_type_id,
        Ticket.status.in_(OPEN_STATUSES),
        Ticket.id != ticket.id,
    )
    if ticket.citizen_id is not None:
        base = base.where(or_(Ticket.citizen_id.is_(None), Ticket.citizen_id != ticket.citizen_id))
    if ticket.place_key:
        same_address = base.where(
            Ticket.place_key == ticket.place_key,
            Ticket.neighbourhood_id.is_(None)
            if ticket.neighbourhood_id is None
            else Ticket.neighbourhood_id == ticket.neighbourhood_id,
        )
        found = session.scalars(same_address.order_by(Ticket.id).limit(1)).first()
        if found is not None:
            return found
    if ticket.latitude is None or ticket.longitude is None:
        return None
    lat, lon = ticket.latitude, ticket.longitude
    dlat = SAME_PLACE_METRES / _DEG_LAT_METRES
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    nearby = base.where(
        Ticket.latitude.between(lat - dlat, lat + dlat),
        Ticket.longitude.between(lon - dlon, lon + dlon),
    )
    for other in session.scalars(nearby.order_by(Ticket.id).limit(50)):
        if (
            other.latitude is not None
            and other.longitude is not None
            and _distance_m(lat, lon, other.latitude, other.longitude) <= SAME_PLACE_METRES
        ):
            return other
    return None


def group_with(session: Session, now: datetime, ticket: Ticket, other: Ticket) -> TicketGroup:
    """Put ``ticket`` in ``other``'s group, creating the group when ``other`` has none."""
    group = session.get(TicketGroup, other.group_id) if other.group_id else None
    if group is None:
        group = TicketGroup(
            ticket_type_id=other.ticket_type_id,
            neighbourhood_id=other.neighbourhood_id,
            place_key=other.place_key,
            created_at=now,
        )
        session.add(group)
        session.flush()
        other.group_id = group.id
    ticket.group_id = group.id
    return group
