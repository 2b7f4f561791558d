"""The supervisors' survey follow-up list as a screen shows it (R5.2, issue 6 item 3).

:func:`services.survey_outcomes.open_follow_ups` gives the open low-score follow-ups;
this module adds what a page needs around them: who may see which (a department liaison
only their own department's), the recently closed ones, and the ticket, department,
neighbourhood, citizen and closer of each row — with the citizen's TC number masked
(:func:`services.citizen_history.mask_tc`). Reads only; nothing here writes or commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Citizen, Department, Neighbourhood, Role, StaffUser, Ticket
from models.survey_follow_up import SurveyFollowUp
from services.citizen_history import mask_tc
from services.errors import NotPermitted
from services.survey_outcomes import open_follow_ups

__all__ = [
    "FOLLOW_UP_CLOSERS",
    "FOLLOW_UP_READERS",
    "FollowUpLine",
    "follow_up_department",
    "follow_up_lines",
]

FOLLOW_UP_READERS = frozenset(
    {Role.SUPERVISOR, Role.ADVISOR, Role.ADMINISTRATOR, Role.DEPARTMENT_LIAISON}
)
"""Who sees survey follow-ups (a department liaison: only their own department's)."""
FOLLOW_UP_CLOSERS = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
"""Who closes them on the console (the service also lets advisors close)."""
OWN_DEPARTMENT_ONLY = frozenset({Role.DEPARTMENT_LIAISON})
LOW_SCORE = "low_score"
DONE = "done"

M = TypeVar("M", Citizen, Department, Neighbourhood, StaffUser, Ticket)


@dataclass(frozen=True)
class FollowUpLine:
    """One follow-up as the list shows it (no unmasked personal data)."""

    id: int
    status: str  # "open" | "done"
    score: int | None
    channel: str  # ivr, sms, agent
    created_at: datetime
    ticket_id: int | None
    reference_code: str | None
    department_id: int | None
    department_tr: str | None
    department_en: str | None
    neighbourhood: str | None
    citizen_id: int | None
    citizen_name: str | None
    citizen_tc: str | None  # masked: 12*******01
    closed_at: datetime | None = None
    closed_by: str | None = None
    note: str | None = None


def follow_up_department(actor: StaffUser, department_id: int | None) -> int | None:
    """The department whose follow-ups ``actor`` may list when asking for ``department_id``
    (None: all). Guarantees: a department liaison always gets their own department (a
    liaison without one is refused); other readers get what they asked for; anyone else
    is refused with :class:`NotPermitted`."""
    if actor.role not in FOLLOW_UP_READERS or not actor.is_active:
        raise NotPermitted(
            "Anket takiplerini görme yetkiniz yok.", "You may not see survey follow-ups."
        )
    if actor.role in OWN_DEPARTMENT_ONLY:
        if actor.department_id is None:
            raise NotPermitted("Bir birime bağlı değilsiniz.", "You do not belong to a department.")
        return actor.department_id
    return department_id


def _by_id(session: Session, model: type[M], ids: Iterable[int | None]) -> dict[int, M]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.scalars(select(model).where(model.id.in_(wanted)))
    return {row.id: row for row in rows}


def _closed(
    session: Session, department_id: int | None, since: datetime, limit: int
) -> list[SurveyFollowUp]:
    query = select(SurveyFollowUp).where(
        SurveyFollowUp.kind == LOW_SCORE,
        SurveyFollowUp.status == DONE,
        SurveyFollowUp.closed_at >= since,
    )
    if department_id is not None:
        query = query.where(SurveyFollowUp.department_id == department_id)
    order = (SurveyFollowUp.closed_at.desc(), SurveyFollowUp.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


def follow_up_lines(
    session: Session,
    *,
    actor: StaffUser,
    department_id: int | None = None,
    closed_since: datetime | None = None,
    limit: int = 100,
) -> tuple[list[FollowUpLine], list[FollowUpLine]]:
    """(open, recently closed) low-score follow-ups ``actor`` may see (R5.2).

    Guarantees: the department is settled by :func:`follow_up_department` (a liaison sees
    only their own department's; others all or the one asked for); open rows come from
    :func:`services.survey_outcomes.open_follow_ups` (oldest first); closed rows only when
    ``closed_since`` is given — those closed at or after it, latest first; at most
    ``limit`` of each; the citizen's TC number is masked. Reads only.
    """
    department_id = follow_up_department(actor, department_id)
    open_rows = open_follow_ups(session, department_id=department_id, limit=limit)
    closed_rows = (
        _closed(session, department_id, closed_since, limit) if closed_since is not None else []
    )
    rows = open_rows + closed_rows
    tickets = _by_id(session, Ticket, (r.ticket_id for r in rows))
    departments = _by_id(session, Department, (r.department_id for r in rows))
    hoods = _by_id(session, Neighbourhood, (r.neighbourhood_id for r in rows))
    citizens = _by_id(session, Citizen, (r.citizen_id for r in rows))
    closers = _by_id(session, StaffUser, (r.closed_by_id for r in rows))

    def line(row: SurveyFollowUp) -> FollowUpLine:
        ticket = tickets.get(row.ticket_id) if row.ticket_id is not None else None
        department = departments.get(row.department_id) if row.department_id else None
        hood = hoods.get(row.neighbourhood_id) if row.neighbourhood_id else None
        citizen = citizens.get(row.citizen_id) if row.citizen_id else None
        closer = closers.get(row.closed_by_id) if row.closed_by_id else None
        return FollowUpLine(
            id=row.id,
            status=row.status,
            score=row.score,
            channel=row.channel,
            created_at=row.created_at,
            ticket_id=row.ticket_id,
            reference_code=ticket.reference_code if ticket is not None else None,
            department_id=row.department_id,
            department_tr=department.name_tr if department is not None else None,
            department_en=department.name_en if department is not None else None,
            neighbourhood=hood.name if hood is not None else None,
            citizen_id=row.citizen_id,
            citizen_name=(citizen.display_name or None) if citizen is not None else None,
            citizen_tc=mask_tc(citizen.tc_number) if citizen is not None else None,
            closed_at=row.closed_at,
            closed_by=closer.full_name if closer is not None else None,
            note=row.note,
        )

    return [line(r) for r in open_rows], [line(r) for r in closed_rows]
