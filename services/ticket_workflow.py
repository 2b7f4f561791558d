"""Working on a ticket after intake: status, forwarding, notes, resolution, merge (R3).

Every function takes the session, the acting staff user and ``now``; checks permission
and the state machine before writing; appends to the timeline; queues citizen messages in
the outbox; and never commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Department,
    ExternalInstitution,
    Notification,
    NotificationChannel,
    StaffUser,
    Ticket,
    TicketContact,
    TicketEvent,
    TicketStatus,
    TicketType,
    TimelineAction,
)
from services import outbox, sla_clock, timeline
from services.calendar_store import get_calendar
from services.errors import InvalidField, InvalidTransition, MissingField, UnknownEntity
from services.permissions import require_can_change, require_coordination
from services.reference_code import normalise
from services.routing import route_for
from services.sla import deadlines_for
from services.ticket_notifications import notify_citizen
from services.ticket_states import check_move


def _move(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    target: TicketStatus,
    action: TimelineAction,
    note: str | None = None,
    **data: Any,
) -> None:
    check_move(ticket.status, target)
    previous = ticket.status
    ticket.status = target
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        action,
        from_status=previous,
        to_status=target,
        note=note,
        **data,
    )
    sla_clock.on_status_change(session, actor, now, ticket, previous, target)


def change_status(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    target: TicketStatus,
    note: str | None = None,
) -> None:
    """Move ``ticket`` to ``target`` through the state machine (in progress, waiting on the
    citizen, closed...). Resolution, reopening, forwarding and merging have their own
    services because they carry more than a status."""
    require_can_change(actor, ticket)
    if target in (
        TicketStatus.RESOLVED,
        TicketStatus.REOPENED,
        TicketStatus.MERGED,
        TicketStatus.FORWARDED,
        TicketStatus.REFERRED_EXTERNALLY,
    ):
        raise InvalidTransition(
            "Bu durum değişikliği için ilgili işlemi kullanın (çöz, yeniden aç, ilet...).",
            f"Use the dedicated service to move a ticket to '{target.value}'.",
        )
    _move(session, actor, now, ticket, target, TimelineAction.STATUS_CHANGED, note)


def forward_ticket(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    department: Department,
    note: str | None = None,
) -> list[Notification]:
    """Forward ``ticket`` to ``department`` (also re-routing) and notify its primary and
    backup liaison officers in the console and by e-mail (R3.1). Returns the queued
    notifications (idempotent per ticket, department and liaison)."""
    require_coordination(actor)
    if not department.is_active:
        raise InvalidField("Bu birim etkin değil.", "This unit is not active.", field="department")
    previous_department = ticket.department_id
    ticket.department_id = department.id
    ticket.external_institution_id = None
    _move(
        session,
        actor,
        now,
        ticket,
        TicketStatus.FORWARDED,
        TimelineAction.FORWARDED,
        note,
        department=department.code,
        previous_department_id=previous_department,
    )
    ticket_type = session.get(TicketType, ticket.ticket_type_id)
    payload = {
        "reference_code": ticket.reference_code,
        "ticket_type": ticket_type.name_tr if ticket_type else "",
        "ticket_type_en": ticket_type.name_en if ticket_type else "",
        "due_at": ticket.due_at.isoformat(),
    }
    queued: list[Notification] = []
    session.flush()
    forwards = len(_events(session, ticket, TimelineAction.FORWARDED))
    for liaison in (department.primary_liaison, department.backup_liaison):
        if liaison is None or not liaison.is_active:
            continue
        key_base = f"forward:{ticket.id}:{forwards}:{liaison.id}"
        queued.append(
            outbox.enqueue(
                session,
                now,
                key=f"{key_base}:console",
                channel=NotificationChannel.CONSOLE,
                recipient=str(liaison.id),
                template="ticket_forwarded_to_liaison",
                language=ticket.language,
                payload=payload,
                ticket=ticket,
            )
        )
        if liaison.email:
            queued.append(
                outbox.enqueue(
                    session,
                    now,
                    key=f"{key_base}:email",
                    channel=NotificationChannel.EMAIL,
                    recipient=liaison.email,
                    template="ticket_forwarded_to_liaison",
                    language=ticket.language,
                    payload=payload,
                    ticket=ticket,
                )
            )
    return queued


def assign_ticket(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, assignee: StaffUser
) -> None:
    """Make ``assignee`` the person working on ``ticket`` (a member of its department, or
    Açık Kapı staff for tickets still on the desk)."""
    require_can_change(actor, ticket)
    if ticket.department_id and assignee.department_id not in (None, ticket.department_id):
        raise InvalidField(
            "Atanan kişi başvurunun müdürlüğünde çalışmıyor.",
            "The assignee does not belong to the ticket's department.",
            field="assignee",
        )
    ticket.assigned_to_id = assignee.id
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.ASSIGNED,
        assignee_id=assignee.id,
        assignee=assignee.staff_code,
    )


def add_note(session: Session, actor: StaffUser, now: datetime, ticket: Ticket, text: str) -> None:
    """Append a staff note to the timeline."""
    require_can_change(actor, ticket)
    if not text.strip():
        raise MissingField("Not boş olamaz.", "A note cannot be empty.", field="note")
    ticket.updated_at = now
    timeline.record(session, ticket, actor, now, TimelineAction.NOTE, note=text.strip())


def resolve_ticket(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, message: str
) -> Notification | None:
    """Resolve ``ticket`` with ``message`` to the citizen, who is told by SMS or e-mail
    (R3.4). Returns the queued message (None when the citizen cannot be reached)."""
    require_can_change(actor, ticket)
    if not message.strip():
        raise MissingField(
            "Vatandaşa iletilecek çözüm açıklaması gerekli.",
            "A resolution message to the citizen is required.",
            field="resolution",
        )
    _move(session, actor, now, ticket, TicketStatus.RESOLVED, TimelineAction.RESOLVED, message)
    ticket.resolution = message.strip()
    ticket.resolved_at = now
    session.flush()
    resolutions = len(_events(session, ticket, TimelineAction.RESOLVED))
    return notify_citizen(
        session,
        ticket,
        actor,
        now,
        template="ticket_resolved",
        key=f"resolved:{ticket.id}:{resolutions}",
        extra={"resolution": ticket.resolution},
    )


def reopen_ticket(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, reason: str
) -> None:
    """Reopen a resolved or closed ticket; the SLA clock starts a new cycle from ``now``
    (fresh ``due_at``, escalation level 0: services.sla_clock)."""
    require_can_change(actor, ticket)
    if not reason.strip():
        raise MissingField(
            "Yeniden açma nedeni gerekli.", "A reason for reopening is required.", field="reason"
        )
    _move(session, actor, now, ticket, TicketStatus.REOPENED, TimelineAction.REOPENED, reason)
    ticket.resolved_at = None
    session.flush()
    reopenings = len(_events(session, ticket, TimelineAction.REOPENED))
    notify_citizen(
        session,
        ticket,
        actor,
        now,
        template="ticket_reopened",
        key=f"reopened:{ticket.id}:{reopenings}",
    )


def refer_externally(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    institution: ExternalInstitution,
    note: str | None = None,
) -> Notification | None:
    """Refer ``ticket`` to an institution outside the municipality and tell the citizen who
    is responsible and how to reach them (R2.6)."""
    require_coordination(actor)
    ticket.external_institution_id = institution.id
    ticket.department_id = None
    _move(
        session,
        actor,
        now,
        ticket,
        TicketStatus.REFERRED_EXTERNALLY,
        TimelineAction.REFERRED,
        note,
        external_institution=institution.code,
    )
    return notify_citizen(
        session,
        ticket,
        actor,
        now,
        template="ticket_referred",
        key=f"referred:{ticket.id}:{institution.id}",
        extra={
            "institution": institution.name_tr,
            "institution_en": institution.name_en,
            "institution_phone": institution.phone or "-",
        },
    )


def reclassify_ticket(
    session: Session, actor: StaffUser, now: datetime, ticket: Ticket, ticket_type: TicketType
) -> None:
    """Give ``ticket`` another type (e.g. a phone call opened as 'genel'): re-routes it and
    recomputes the SLA from the time the ticket was received."""
    require_coordination(actor)
    if not ticket_type.is_active:
        raise UnknownEntity("Başvuru türü etkin değil.", "The ticket type is not active.")
    previous = ticket.ticket_type_id
    route = route_for(ticket_type)
    deadlines = deadlines_for(get_calendar(session), ticket_type, ticket.received_at)
    ticket.ticket_type_id = ticket_type.id
    ticket.kind = ticket_type.default_kind
    ticket.department_id = route.department_id
    ticket.external_institution_id = route.external_institution_id
    ticket.legal_due_at = deadlines.legal_due_at
    sla_clock.recompute_due(session, ticket, ticket_type)  # due_at: cycle start, pauses, re-arm
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.ROUTED,
        previous_type_id=previous,
        ticket_type=ticket_type.code,
        due_at=ticket.due_at.isoformat(),
    )


def merge_tickets(
    session: Session, actor: StaffUser, now: datetime, duplicate: Ticket, target: Ticket
) -> None:
    """Merge ``duplicate`` into ``target`` (R2.4): the duplicate becomes 'merged' and every
    contact that reported it moves to the target, so the target keeps each channel and
    person. Both timelines record the merge."""
    require_coordination(actor)
    if duplicate.id == target.id:
        raise InvalidField(
            "Bir başvuru kendisiyle birleştirilemez.", "Cannot merge a ticket into itself."
        )
    if target.status is TicketStatus.MERGED:
        raise InvalidTransition(
            "Hedef başvuru zaten birleştirilmiş.", "The target ticket is itself merged."
        )
    _move(
        session,
        actor,
        now,
        duplicate,
        TicketStatus.MERGED,
        TimelineAction.MERGED,
        f"{target.reference_code} ile birleştirildi.",
        into=target.reference_code,
    )
    duplicate.merged_into_id = target.id
    moved = 0
    for contact in session.scalars(
        select(TicketContact).where(TicketContact.ticket_id == duplicate.id)
    ):
        contact.ticket_id = target.id
        moved += 1
    target.updated_at = now
    timeline.record(
        session,
        target,
        actor,
        now,
        TimelineAction.MERGED,
        note=f"{duplicate.reference_code} bu başvuruya birleştirildi.",
        merged_from=duplicate.reference_code,
        contacts_moved=moved,
    )


def find_by_reference(session: Session, code: str) -> Ticket:
    """The ticket with reference ``code`` (typed in any case, with or without dash)."""
    canonical = normalise(code)
    ticket = session.scalar(select(Ticket).where(Ticket.reference_code == canonical))
    if ticket is None:
        raise UnknownEntity(
            f"{canonical} kodlu başvuru bulunamadı.", f"No ticket with reference {canonical}."
        )
    return ticket


def _events(session: Session, ticket: Ticket, action: TimelineAction) -> list[int]:
    return list(
        session.scalars(
            select(TicketEvent.id).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.action == action
            )
        )
    )
