"""Work after intake: forwarding, permissions, resolution, reopening, merge, timeline (R3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    AppendOnlyError,
    Channel,
    Department,
    ExternalInstitution,
    NotificationChannel,
    Role,
    StaffUser,
    TicketEvent,
    TicketStatus,
    TicketType,
    TimelineAction,
)
from services.attachments import add_attachment
from services.errors import InvalidField, InvalidTransition, NotPermitted
from services.intake import open_ticket
from services.ticket_workflow import (
    add_note,
    change_status,
    find_by_reference,
    forward_ticket,
    merge_tickets,
    reclassify_ticket,
    refer_externally,
    reopen_ticket,
    resolve_ticket,
)
from tests.conftest import staff_with_role
from tests.factories import mobile, mobile_e164, request, valid_tc


def _open(session: Session, actor: StaffUser, now: datetime, seed: int, **fields: object):  # type: ignore[no-untyped-def]
    return open_ticket(
        session, actor, now, request(tc_number=valid_tc(seed), phone=mobile(seed), **fields)
    ).ticket


def _department_of(session: Session, code: str) -> Department:
    dep = session.scalar(select(Department).where(Department.code == code))
    assert dep is not None
    return dep


def test_forward_notifies_primary_and_backup_liaison(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _open(session, agent, now, 600)
    department = ticket.department
    assert department is not None and department.primary_liaison and department.backup_liaison
    queued = forward_ticket(session, agent, now, ticket, department, "Acil bakılmalı.")
    assert ticket.status is TicketStatus.FORWARDED
    console = {n.recipient for n in queued if n.channel is NotificationChannel.CONSOLE}
    assert console == {str(department.primary_liaison.id), str(department.backup_liaison.id)}
    assert all(n.payload["reference_code"] == ticket.reference_code for n in queued)
    again = forward_ticket(session, agent, now + timedelta(hours=1), ticket, department)
    assert {n.id for n in again}.isdisjoint({n.id for n in queued})  # a new forward, new notices


def test_liaison_changes_only_own_department_tickets(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _open(session, agent, now, 601)
    own = ticket.department.primary_liaison
    assert own is not None and own.role is Role.DEPARTMENT_LIAISON
    change_status(session, own, now, ticket, TicketStatus.IN_PROGRESS, "Ekip yolda.")
    stranger = session.scalars(
        select(StaffUser).where(
            StaffUser.role == Role.DEPARTMENT_LIAISON,
            StaffUser.department_id != ticket.department_id,
        )
    ).first()
    assert stranger is not None
    with pytest.raises(NotPermitted):
        add_note(session, stranger, now, ticket, "Başka müdürlükten not")
    with pytest.raises(NotPermitted):
        forward_ticket(session, own, now, ticket, ticket.department)  # coordination desk only
    mayors_office = staff_with_role(session, Role.MAYORS_OFFICE)
    with pytest.raises(NotPermitted):
        resolve_ticket(session, mayors_office, now, ticket, "çözüldü")


def test_state_machine_is_enforced(session: Session, agent: StaffUser, now: datetime) -> None:
    ticket = _open(session, agent, now, 602)
    with pytest.raises(InvalidTransition):
        change_status(session, agent, now, ticket, TicketStatus.CLOSED)  # new -> closed
    with pytest.raises(InvalidTransition):
        change_status(session, agent, now, ticket, TicketStatus.RESOLVED)  # needs a message
    with pytest.raises(InvalidTransition):
        reopen_ticket(session, agent, now, ticket, "neden")  # not resolved yet
    assert ticket.status is TicketStatus.NEW


def test_resolve_tells_the_citizen_and_reopen_restarts_the_clock(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _open(session, agent, now, 603)
    later = now + timedelta(days=2)
    sms = resolve_ticket(session, agent, later, ticket, "Çukur asfaltlandı.")
    assert sms is not None and sms.template == "ticket_resolved"
    assert sms.recipient == mobile_e164(603)
    assert sms.payload == {
        "reference_code": ticket.reference_code,
        "resolution": "Çukur asfaltlandı.",
    }
    assert ticket.status is TicketStatus.RESOLVED and ticket.resolved_at == later
    first_due = ticket.due_at
    reopen_ticket(
        session, agent, later + timedelta(hours=1), ticket, "Vatandaş sorunun sürdüğünü söyledi."
    )
    assert ticket.status is TicketStatus.REOPENED and ticket.resolved_at is None
    assert ticket.due_at > first_due
    second = resolve_ticket(session, agent, later + timedelta(days=1), ticket, "Tekrar onarıldı.")
    assert second is not None and second.id != sms.id  # a second resolution is a new message


def test_merge_keeps_every_contact_on_the_target(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    target = _open(session, agent, now, 604)
    duplicate = open_ticket(
        session,
        agent,
        now,
        request(Channel.SOCIAL_MEDIA, social_handle="@komsu", tc_number=None, first_name=None),
    ).ticket
    merge_tickets(session, agent, now, duplicate, target)
    assert duplicate.status is TicketStatus.MERGED and duplicate.merged_into_id == target.id
    session.refresh(target)
    assert [c.channel for c in target.contacts] == [Channel.DESK, Channel.SOCIAL_MEDIA]
    assert {c.original_ticket_id for c in target.contacts} == {target.id, duplicate.id}
    with pytest.raises(InvalidTransition):
        change_status(session, agent, now, duplicate, TicketStatus.IN_PROGRESS)
    with pytest.raises(InvalidField):
        merge_tickets(session, agent, now, target, target)


def test_reclassify_reroutes_and_refer_tells_citizen(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = open_ticket(
        session, agent, now, request(Channel.PHONE, phone=mobile(605), ticket_type_code=None)
    ).ticket
    assert ticket.ticket_type.code == "genel"
    noise = session.scalar(select(TicketType).where(TicketType.code == "gurultu"))
    assert noise is not None
    reclassify_ticket(session, agent, now, ticket, noise)
    assert ticket.department_id == noise.department_id and ticket.ticket_type_id == noise.id
    gas = session.scalar(select(ExternalInstitution).where(ExternalInstitution.code == "DOGALGAZ"))
    assert gas is not None
    sms = refer_externally(session, agent, now, ticket, gas, "Gaz kokusu")
    assert ticket.status is TicketStatus.REFERRED_EXTERNALLY and ticket.department_id is None
    assert sms is not None and sms.payload["institution_phone"] == gas.phone


def test_timeline_is_append_only_and_complete(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _open(session, agent, now, 606)
    add_note(session, agent, now, ticket, "Vatandaş fotoğraf gönderecek.")
    session.flush()
    events = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()
    assert [e.action for e in events][:2] == [TimelineAction.OPENED, TimelineAction.ROUTED]
    assert events[-1].action is TimelineAction.NOTE and events[-1].actor_id == agent.id
    events[0].note = "değiştirildi"
    with pytest.raises(AppendOnlyError):
        session.flush()
    session.rollback()


def test_attachment_is_stored_with_checksum(
    session: Session, agent: StaffUser, now: datetime, tmp_path: Path
) -> None:
    ticket = _open(session, agent, now, 607)
    data = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    att = add_attachment(
        session,
        agent,
        now,
        ticket,
        store_dir=tmp_path,
        data=data,
        original_name="çukur.png",
        media_type="image/png",
        taken_at=now,
        latitude=41.0,
        longitude=29.0,
    )
    assert (tmp_path / att.path).read_bytes() == data
    assert att.size_bytes == len(data) and len(att.sha256) == 64
    with pytest.raises(InvalidField):
        add_attachment(
            session,
            agent,
            now,
            ticket,
            store_dir=tmp_path,
            data=b"MZ",
            original_name="x.exe",
            media_type="application/x-msdownload",
        )


def test_find_by_reference_accepts_typed_forms(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket = _open(session, agent, now, 608)
    code = ticket.reference_code
    assert code is not None
    assert find_by_reference(session, code.lower().replace("-", " ")).id == ticket.id
