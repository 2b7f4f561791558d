"""What the coordination desk reads (R3.1, R2.4): every incoming ticket, the tickets that
may be duplicates of one another, and the preview of a merge before it is done.

Reads only; the desk's actions are the services of :mod:`services.ticket_workflow`
(forward, reclassify, refer, merge), :mod:`services.ticket_split` and
:mod:`services.deadline_extension`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from models import (
    OPEN_STATUSES,
    Channel,
    StaffUser,
    Ticket,
    TicketContact,
    TicketStatus,
)
from services.citizen_history import TicketLine, ticket_lines
from services.errors import InvalidField, InvalidTransition
from services.permissions import require_coordination, visible_tickets
from services.ticket_screens import ticket_contacts
from services.ticket_states import can_move

MAX_LIST = 200
MAX_CANDIDATES = 20
WAITING_STATUSES = frozenset({TicketStatus.NEW, TicketStatus.REOPENED})


class DeskView(enum.StrEnum):
    """Which tickets the desk lists."""

    WAITING = "waiting"  # new or reopened: not yet sent on by the desk (oldest first)
    OPEN = "open"  # every open ticket (most urgent deadline first)
    ALL = "all"  # everything, newest first


def _loaded(query: Select[Ticket]) -> Select[Ticket]:
    return query.options(selectinload(Ticket.ticket_type), selectinload(Ticket.department))


def incoming(
    session: Session,
    actor: StaffUser,
    now: datetime,
    *,
    view: DeskView = DeskView.WAITING,
    department_id: int | None = None,
    channel: Channel | None = None,
    limit: int = MAX_LIST,
) -> list[Ticket]:
    """The tickets of the desk's list ``view`` (filtered by department and channel), at
    most ``limit``. Only the coordination desk reads it (:class:`NotPermitted`)."""
    require_coordination(actor)
    query = select(Ticket).where(visible_tickets(actor))
    if view is DeskView.WAITING:
        query = query.where(Ticket.status.in_(WAITING_STATUSES)).order_by(
            Ticket.received_at, Ticket.id
        )
    elif view is DeskView.OPEN:
        query = query.where(Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.due_at, Ticket.id)
    else:
        query = query.order_by(Ticket.received_at.desc(), Ticket.id.desc())
    if department_id is not None:
        query = query.where(Ticket.department_id == department_id)
    if channel is not None:
        query = query.where(Ticket.channel == channel)
    return list(session.scalars(_loaded(query.limit(limit))))


def _candidate_condition(ticket: Ticket) -> list[ColumnElement[bool]]:
    same: list[ColumnElement[bool]] = []
    if ticket.citizen_id is not None:
        same.append(Ticket.citizen_id == ticket.citizen_id)
    if ticket.group_id is not None:
        same.append(Ticket.group_id == ticket.group_id)
    if ticket.place_key:
        same.append(
            and_(
                Ticket.ticket_type_id == ticket.ticket_type_id, Ticket.place_key == ticket.place_key
            )
        )
    return same


def duplicate_candidates(session: Session, ticket: Ticket) -> list[Ticket]:
    """Other open tickets that may report the same thing: the same person's, the same
    group's (same type at the same place: services.grouping), or the same type at the same
    normalised address; oldest first. Reads only."""
    same = _candidate_condition(ticket)
    if not same:
        return []
    query = (
        select(Ticket)
        .where(Ticket.id != ticket.id, Ticket.status.in_(OPEN_STATUSES), or_(*same))
        .order_by(Ticket.received_at, Ticket.id)
        .limit(MAX_CANDIDATES)
    )
    return list(session.scalars(_loaded(query)))


def duplicate_counts(session: Session, tickets: Sequence[Ticket]) -> dict[int, int]:
    """For each open ticket with a citizen: how many other open tickets that citizen has
    (a hint for the list; the ticket page shows every kind of candidate). Reads only."""
    citizens = {t.citizen_id for t in tickets if t.citizen_id is not None}
    if not citizens:
        return {}
    per_citizen: dict[int | None, int] = {
        citizen_id: count
        for citizen_id, count in session.execute(
            select(Ticket.citizen_id, func.count(Ticket.id))
            .where(Ticket.citizen_id.in_(citizens), Ticket.status.in_(OPEN_STATUSES))
            .group_by(Ticket.citizen_id)
        )
    }
    return {
        t.id: per_citizen.get(t.citizen_id, 1) - 1
        for t in tickets
        if t.citizen_id is not None and t.status in OPEN_STATUSES
    }


@dataclass(frozen=True)
class MergePreview:
    """Both tickets side by side, before :func:`services.ticket_workflow.merge_tickets`."""

    duplicate: Ticket
    target: Ticket
    lines: tuple[TicketLine, TicketLine]  # (duplicate, target)
    contacts: tuple[list[TicketContact], list[TicketContact]]
    warnings: tuple[str, ...]  # codes: other_citizen, other_type, other_department


def check_merge(duplicate: Ticket, target: Ticket) -> None:
    """Raise the error :func:`~services.ticket_workflow.merge_tickets` would raise for this
    pair (same ticket, merged target, duplicate that cannot be merged), before any write."""
    if duplicate.id == target.id:
        raise InvalidField(
            "Bir başvuru kendisiyle birleştirilemez.", "Cannot merge a ticket into itself."
        )
    if target.status is TicketStatus.MERGED:
        raise InvalidTransition(
            "Hedef başvuru zaten birleştirilmiş.", "The target ticket is itself merged."
        )
    if not can_move(duplicate.status, TicketStatus.MERGED):
        raise InvalidTransition(
            "Bu başvuru artık birleştirilemez (çözülmüş, kapatılmış ya da birleştirilmiş).",
            "This ticket can no longer be merged (resolved, closed or merged).",
            status=duplicate.status.value,
        )


def merge_preview(
    session: Session, actor: StaffUser, now: datetime, duplicate: Ticket, target: Ticket
) -> MergePreview:
    """Show what merging ``duplicate`` into ``target`` would do: both tickets with their
    contacts (which all end up on the target) and what differs between them.

    Guarantees: only the coordination desk (:class:`NotPermitted`); the same errors as the
    merge itself for an impossible pair (:func:`check_merge`); reads only.
    """
    require_coordination(actor)
    check_merge(duplicate, target)
    warnings = []
    if duplicate.citizen_id != target.citizen_id:
        warnings.append("other_citizen")
    if duplicate.ticket_type_id != target.ticket_type_id:
        warnings.append("other_type")
    if duplicate.department_id != target.department_id:
        warnings.append("other_department")
    first, second = ticket_lines(session, now, [duplicate, target])
    return MergePreview(
        duplicate,
        target,
        (first, second),
        (ticket_contacts(session, duplicate), ticket_contacts(session, target)),
        tuple(warnings),
    )
