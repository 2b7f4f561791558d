"""services.deadline_extension on both databases: the department's allowance per SLA cycle,
no self-service after the breach, the coordination desk beyond it, the legal deadline as a
hard stop, the day in the type's own clock, and the sweep's index re-armed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Department,
    Notification,
    Role,
    StaffUser,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services import sla_clock
from services.deadline_extension import SELF_SERVICE_DAYS, extend_deadline
from services.errors import InvalidField, InvalidTransition, MissingField, NotPermitted
from services.sla_policy import ladder_for
from services.ticket_workflow import reopen_ticket, resolve_ticket
from tests.conftest import staff_with_role
from tests.console.samples import sample_ticket


def _liaison_of(session: Session, ticket: Ticket) -> StaffUser:
    department = session.get(Department, ticket.department_id)
    assert department is not None and department.primary_liaison is not None
    assert department.primary_liaison.role is Role.DEPARTMENT_LIAISON
    return department.primary_liaison


def _extensions(session: Session, ticket: Ticket) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent)
            .where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == TimelineAction.DEADLINE_EXTENDED,
            )
            .order_by(TicketEvent.id)
        )
    )


def test_the_department_allowance_per_cycle(session: Session, now: datetime) -> None:
    ticket = sample_ticket(session, now, channel=Channel.PHONE)
    liaison = _liaison_of(session, ticket)
    extend_deadline(session, liaison, now, ticket, days=2, reason="Malzeme bekleniyor")
    extend_deadline(session, liaison, now, ticket, days=SELF_SERVICE_DAYS - 2, reason="Yağmur")
    with pytest.raises(NotPermitted) as refused:
        extend_deadline(session, liaison, now, ticket, days=1, reason="Bir gün daha")
    assert refused.value.details["left"] == 0
    assert len(_extensions(session, ticket)) == 2
    # A reopened ticket starts a new SLA cycle, and with it a new allowance.
    resolve_ticket(session, liaison, now, ticket, "Onarıldı.")
    later = now + timedelta(days=1)
    reopen_ticket(session, liaison, later, ticket, "Çukur yeniden açıldı")
    extension = extend_deadline(session, liaison, later, ticket, days=1, reason="Ekip yok")
    assert extension.self_service and ticket.sla_cycle == 1


def test_no_self_service_after_the_breach_but_the_desk_can(session: Session, now: datetime) -> None:
    ticket = sample_ticket(session, now, channel=Channel.PHONE)
    liaison = _liaison_of(session, ticket)
    late = ticket.due_at + timedelta(minutes=1)
    with pytest.raises(NotPermitted):
        extend_deadline(session, liaison, late, ticket, days=1, reason="Geç kaldık")
    supervisor = staff_with_role(session, Role.SUPERVISOR)
    extension = extend_deadline(
        session, supervisor, late, ticket, days=SELF_SERVICE_DAYS + 5, reason="Onaylandı"
    )
    assert not extension.self_service and extension.due_at > late
    [event] = _extensions(session, ticket)
    assert event.actor_id == supervisor.id and event.data["self_service"] is False


def test_the_legal_deadline_is_a_hard_stop(session: Session, now: datetime) -> None:
    ticket = sample_ticket(session, now, type_code="dilekce")  # petition: 30-day legal clock
    assert ticket.legal_due_at is not None and ticket.due_at < ticket.legal_due_at
    supervisor = staff_with_role(session, Role.SUPERVISOR)
    extension = extend_deadline(session, supervisor, now, ticket, days=30, reason="İnceleme")
    assert extension.capped_by_law and ticket.due_at == ticket.legal_due_at
    with pytest.raises(InvalidField):
        extend_deadline(session, supervisor, now, ticket, days=1, reason="Bir gün daha")


def test_a_day_is_counted_in_the_types_own_clock(session: Session, now: datetime) -> None:
    working = sample_ticket(session, now, channel=Channel.PHONE)
    before = working.due_at
    extend_deadline(session, _liaison_of(session, working), now, working, days=1, reason="a")
    clock = sla_clock.clock_for(session, working)
    assert clock.between(before, working.due_at) == timedelta(hours=8)  # one working day
    funeral = sample_ticket(session, now, channel=Channel.PHONE, type_code="cenaze_hizmetleri")
    before = funeral.due_at
    extend_deadline(session, _liaison_of(session, funeral), now, funeral, days=1, reason="b")
    assert funeral.due_at - before == timedelta(hours=24)  # calendar hours: one day


def test_the_sweep_index_follows_the_new_deadline_and_the_citizen_is_told(
    session: Session, now: datetime
) -> None:
    ticket = sample_ticket(session, now, channel=Channel.PHONE)
    liaison = _liaison_of(session, ticket)
    ticket.escalation_level = 1  # the reminder went out already
    sla_clock.rearm(session, ticket)
    armed_before = ticket.next_escalation_at
    assert armed_before == ticket.due_at  # the next step: the superior unit at the breach
    extend_deadline(session, liaison, now, ticket, days=3, reason="Ek keşif gerekli")
    assert ticket.escalation_level == 1  # steps already taken stay taken
    department = session.get(Department, ticket.department_id)
    assert department is not None
    expected = sla_clock.next_escalation_at(
        ticket, ladder_for(session, department), sla_clock.clock_for(session, ticket)
    )
    assert ticket.next_escalation_at == expected == ticket.due_at
    assert armed_before is not None and ticket.next_escalation_at > armed_before
    notices = session.scalars(
        select(Notification).where(
            Notification.ticket_id == ticket.id,
            Notification.template == "ticket_deadline_extended",
        )
    ).all()
    assert len(notices) == 1 and notices[0].recipient == "+905053618877"


def test_what_is_refused_writes_nothing(session: Session, now: datetime) -> None:
    ticket = sample_ticket(session, now, channel=Channel.PHONE)
    liaison = _liaison_of(session, ticket)
    due = ticket.due_at
    with pytest.raises(MissingField):
        extend_deadline(session, liaison, now, ticket, days=1, reason="  ")
    with pytest.raises(InvalidField):
        extend_deadline(session, liaison, now, ticket, days=0, reason="sıfır")
    other_unit = sample_ticket(session, now, channel=Channel.PHONE, type_code="gurultu")
    with pytest.raises(NotPermitted):
        extend_deadline(session, liaison, now, other_unit, days=1, reason="başkasının")
    resolve_ticket(session, liaison, now, ticket, "Tamamlandı.")
    with pytest.raises(InvalidTransition):
        extend_deadline(session, liaison, now, ticket, days=1, reason="kapalı")
    assert ticket.due_at == due and ticket.status is TicketStatus.RESOLVED
    assert _extensions(session, ticket) == [] and _extensions(session, other_unit) == []
