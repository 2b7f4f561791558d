"""A department's inbox (R3.2): its own tickets, and taking one on.

A department liaison sees only the tickets of their own department (whatever unit they
ask for); Açık Kapı management and unit chiefs, who may see every ticket, choose the unit.
Reads, except :func:`accept_ticket`, which goes through :mod:`services.ticket_workflow`.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models import (
    OPEN_STATUSES,
    Department,
    StaffUser,
    Ticket,
    TicketStatus,
)
from services.errors import InvalidTransition, NotPermitted, UnknownEntity
from services.permissions import OWN_DEPARTMENT, visible_tickets
from services.ticket_states import can_move
from services.ticket_workflow import assign_ticket, change_status

MAX_LIST = 300
ACCEPTABLE = frozenset({TicketStatus.NEW, TicketStatus.FORWARDED, TicketStatus.REOPENED})
# Status changes a department makes from its inbox (resolving has its own service).
DEPARTMENT_STATUSES = (
    TicketStatus.IN_PROGRESS,
    TicketStatus.WAITING_ON_CITIZEN,
    TicketStatus.CLOSED,
)


class InboxView(enum.StrEnum):
    OPEN = "open"  # open tickets, most urgent deadline first
    DONE = "done"  # resolved and closed, latest first
    ALL = "all"


def inbox_department(session: Session, actor: StaffUser, code: str | None) -> Department | None:
    """The unit whose inbox ``actor`` sees: a liaison always their own (asking for another
    is :class:`NotPermitted`); others the unit ``code``, else their own unit (``None``
    when they have none). Reads only."""
    if actor.role in OWN_DEPARTMENT:
        own = session.get(Department, actor.department_id) if actor.department_id else None
        if own is None or (code and code != own.code):
            raise NotPermitted(
                "Yalnızca kendi biriminizin başvurularını görebilirsiniz.",
                "You can only see your own unit's tickets.",
                role=actor.role.value,
            )
        return own
    if code:
        found = session.scalar(select(Department).where(Department.code == code))
        if found is None:
            raise UnknownEntity("Birim bulunamadı.", "No such unit.", code=code)
        return found
    return session.get(Department, actor.department_id) if actor.department_id else None


def inbox(
    session: Session,
    actor: StaffUser,
    department: Department,
    *,
    view: InboxView = InboxView.OPEN,
    limit: int = MAX_LIST,
) -> list[Ticket]:
    """The tickets of ``department`` that ``actor`` may see (a liaison: only their own
    unit's, whatever ``department`` says), at most ``limit``. Reads only."""
    query = select(Ticket).where(Ticket.department_id == department.id, visible_tickets(actor))
    if view is InboxView.OPEN:
        query = query.where(Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.due_at, Ticket.id)
    elif view is InboxView.DONE:
        query = query.where(
            Ticket.status.in_((TicketStatus.RESOLVED, TicketStatus.CLOSED))
        ).order_by(Ticket.updated_at.desc(), Ticket.id.desc())
    else:
        query = query.order_by(Ticket.received_at.desc(), Ticket.id.desc())
    query = query.options(selectinload(Ticket.ticket_type), selectinload(Ticket.department))
    return list(session.scalars(query.limit(limit)))


def status_choices(ticket: Ticket) -> list[TicketStatus]:
    """The department's status changes the state machine allows for ``ticket`` now."""
    return [s for s in DEPARTMENT_STATUSES if s is not ticket.status and can_move(ticket.status, s)]


def accept_ticket(session: Session, actor: StaffUser, now: datetime, ticket: Ticket) -> None:
    """``actor`` takes ``ticket`` on: it goes to 'in progress', assigned to ``actor`` when
    they belong to the ticket's unit.

    Guarantees: the permission and state-machine checks of
    :mod:`services.ticket_workflow` (a liaison only for their own unit's tickets); only a
    new, forwarded or reopened ticket can be accepted (:class:`InvalidTransition`); both
    steps are on the timeline. Never commits.
    """
    if ticket.status not in ACCEPTABLE:
        raise InvalidTransition(
            "Bu başvuru zaten üzerinde çalışılıyor ya da kapanmış.",
            "This ticket is already being worked on or is closed.",
            status=ticket.status.value,
        )
    if actor.department_id in (None, ticket.department_id):  # a member of the unit
        assign_ticket(session, actor, now, ticket, actor)
    change_status(
        session, actor, now, ticket, TicketStatus.IN_PROGRESS, "Birim başvuruyu kabul etti."
    )
