"""The dead-letter list and requeue as staff use them (services.dead_letters), on SQLite and
PostgreSQL: who may, masked contact details, requeue once, the ticket's timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Language,
    Notification,
    NotificationChannel,
    OutboxStatus,
    Role,
    StaffUser,
    Ticket,
    TicketEvent,
    TimelineAction,
)
from services import outbox, outbox_dispatch
from services.actors import system_actor
from services.dead_letters import list_dead, mask_email, mask_phone, mask_text, requeue
from services.errors import InvalidTransition, NotPermitted, UnknownEntity
from services.intake import open_ticket
from tests.conftest import staff_with_role
from tests.factories import mobile, request


def dead_notification(
    session: Session,
    now: datetime,
    key: str,
    *,
    channel: NotificationChannel = NotificationChannel.SMS,
    recipient: str = "+905321234567",
    ticket: Ticket | None = None,
    error: str = "invalid destination +905321234567",
) -> Notification:
    """A notification that went dead the way workers make it: queued, leased, refused."""
    row = outbox.enqueue(
        session,
        now,
        key=key,
        channel=channel,
        recipient=recipient,
        template="ticket_opened",
        language=Language.TR,
        payload={"reference_code": "X"},
        ticket=ticket,
    )
    session.flush()
    others = session.scalars(
        select(Notification).where(
            Notification.id != row.id, Notification.status == OutboxStatus.PENDING
        )
    ).all()
    for other in others:  # demo rows stay out of this lease
        other.available_at = now + timedelta(days=365)
    session.flush()
    claimed = outbox_dispatch.claim_due(session, now, limit=10)
    assert row.id in claimed.claimed
    status = outbox_dispatch.mark_failed(session, now, row.id, error=error, retryable=False)
    assert status is OutboxStatus.DEAD
    session.refresh(row)
    return row


def a_ticket(session: Session, now: datetime) -> Ticket:
    result = open_ticket(
        session,
        system_actor(session, "tests", now),
        now,
        request(Channel.PHONE, phone=mobile(4242)),
    )
    session.flush()
    return result.ticket


def test_masks() -> None:
    assert mask_phone("+905321234567") == "0532 *** ** 67"
    assert mask_phone("+4915112345678").endswith("78") and "1234" not in mask_phone(
        "+4915112345678"
    )
    assert mask_email("ayse.yilmaz@example.org") == "a***@example.org"
    assert mask_email("not-an-address") == "***"
    text = mask_text("550 mailbox ayse.yilmaz@example.org full; sms to +90 532 123 45 67 refused")
    assert "ayse.yilmaz" not in text and "a***@example.org" in text
    assert "123 45" not in text and "67 refused" in text


def test_the_list_is_for_keepers_and_shows_no_contact_details(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    ticket = a_ticket(session, now)
    sms = dead_notification(session, now, "t:dl:1", ticket=ticket)
    mail = dead_notification(
        session,
        now + timedelta(minutes=1),
        "t:dl:2",
        channel=NotificationChannel.EMAIL,
        recipient="ayse.yilmaz@example.org",
        error="550 5.1.1 <ayse.yilmaz@example.org>: user unknown",
    )
    liaison = staff_with_role(session, Role.DEPARTMENT_LIAISON)
    staff_notice = dead_notification(
        session,
        now + timedelta(minutes=2),
        "t:dl:3",
        channel=NotificationChannel.CONSOLE,
        recipient=str(liaison.id),
        error="unknown template",
    )
    page = list_dead(session, supervisor, now)
    assert page.total >= 3
    rows = {r.id: r for r in page.rows}
    assert [r.id for r in page.rows][:3] == [staff_notice.id, mail.id, sms.id]  # newest first
    assert rows[sms.id].recipient == "0532 *** ** 67"
    assert rows[sms.id].reference_code == ticket.reference_code
    assert "1234567" not in rows[sms.id].error and rows[sms.id].error.endswith("67")
    assert rows[mail.id].recipient == "a***@example.org"
    assert "ayse.yilmaz" not in rows[mail.id].error
    assert rows[staff_notice.id].recipient == liaison.full_name
    assert rows[sms.id].attempts == 1 and rows[sms.id].channel is NotificationChannel.SMS
    for role in (Role.AGENT, Role.UNIT_CHIEF, Role.DEPARTMENT_LIAISON, Role.ADVISOR):
        with pytest.raises(NotPermitted):
            list_dead(session, staff_with_role(session, role), now)
    admin = staff_with_role(session, Role.ADMINISTRATOR)
    assert list_dead(session, admin, now).total == page.total


def test_requeue_once_with_who_and_when_on_the_timeline(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    ticket = a_ticket(session, now)
    row = dead_notification(session, now, "t:dl:rq", ticket=ticket)
    later = now + timedelta(hours=2)
    requeued = requeue(session, supervisor, later, row.id)
    assert requeued.status is OutboxStatus.PENDING
    assert requeued.attempts == 0 and requeued.available_at == later
    assert requeued.idempotency_key == "t:dl:rq"  # the gateway still recognises a repeat
    entry = session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
    ).first()
    assert entry is not None and entry.action is TimelineAction.NOTIFICATION_QUEUED
    assert entry.actor_id == supervisor.id and entry.at == later
    assert entry.data["requeued"] is True and entry.data["notification_id"] == row.id
    # The next dispatch leases it like any due row.
    claimed = outbox_dispatch.claim_due(session, later, limit=50)
    assert row.id in claimed.claimed
    # A second click: no longer dead, nothing happens twice.
    with pytest.raises(InvalidTransition):
        requeue(session, supervisor, later, row.id)
    with pytest.raises(UnknownEntity):
        requeue(session, supervisor, later, 987654321)
    agent = staff_with_role(session, Role.AGENT)
    other = dead_notification(session, later, "t:dl:rq2")
    with pytest.raises(NotPermitted):
        requeue(session, agent, later, other.id)
    session.refresh(other)
    assert other.status is OutboxStatus.DEAD
