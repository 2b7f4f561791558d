"""Rows written in batches (the escalation sweep's outbox and timeline rows, intake's
timeline): every value arrives as given, in the given order, and a key written before
fails the whole batch. Both statement forms of ``timeline.write`` are covered."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    Language,
    Notification,
    NotificationChannel,
    OutboxStatus,
    StaffUser,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services import outbox, timeline
from services.intake import open_ticket
from tests.factories import mobile, request, valid_tc


def _ticket_id(session: Session, agent: StaffUser, now: datetime, seed: int) -> int:
    ticket = open_ticket(session, agent, now, request(tc_number=valid_tc(seed), phone=mobile(seed)))
    return ticket.ticket.id


@pytest.mark.parametrize("count", [3, 40])  # a statement per count; one JSON parameter
def test_timeline_rows_are_written_as_given_in_order(
    session: Session, agent: StaffUser, now: datetime, count: int
) -> None:
    ticket_id = _ticket_id(session, agent, now, 7300 + count)
    entries = [
        timeline.entry(
            ticket_id,
            agent.id,
            now + timedelta(minutes=i),
            TimelineAction.NOTE if i % 2 else TimelineAction.ESCALATED,
            note=f"not {i}" if i % 3 else None,
            from_status=TicketStatus.NEW if i % 2 else None,
            to_status=TicketStatus.FORWARDED if i % 2 else None,
            step_key=f"bulk:{ticket_id}:{i}" if i % 2 == 0 else None,
            position=i,
            names=["Ayşe", "Çağrı"],
        )
        for i in range(count)
    ]
    opened = select(func.max(TicketEvent.id)).where(TicketEvent.ticket_id == ticket_id)
    before = session.scalar(opened)
    timeline.write(session, entries)
    rows = session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.id > before)
        .order_by(TicketEvent.id)
    ).all()
    assert [
        {
            "ticket_id": r.ticket_id,
            "at": r.at,
            "actor_id": r.actor_id,
            "action": r.action,
            "from_status": r.from_status,
            "to_status": r.to_status,
            "note": r.note,
            "data": r.data,
            "step_key": r.step_key,
        }
        for r in rows
    ] == entries


def test_outbox_rows_are_written_in_one_batch_and_a_repeated_key_fails_it(
    session: Session, agent: StaffUser, now: datetime
) -> None:
    ticket_id = _ticket_id(session, agent, now, 7350)
    rows = [
        outbox.pending_row(
            now,
            key=f"bulk:outbox:{ticket_id}:{i}",
            channel=NotificationChannel.EMAIL if i % 2 else NotificationChannel.CONSOLE,
            recipient=f"kisi{i}@example.org",
            template="sla_reminder",
            language=Language.EN if i % 3 == 0 else Language.TR,
            payload={"reference_code": "X", "level": i, "unit": "Fen İşleri"},
            ticket_id=ticket_id if i % 4 else None,
        )
        for i in range(30)
    ]
    outbox.enqueue_many(session, rows)
    written = session.scalars(
        select(Notification)
        .where(Notification.idempotency_key.like(f"bulk:outbox:{ticket_id}:%"))
        .order_by(Notification.id)
    ).all()
    assert [{key: getattr(n, key) for key in rows[0]} for n in written] == rows
    assert all(n.status is OutboxStatus.PENDING and n.attempts == 0 for n in written)
    assert outbox.queued(session, rows[7]["idempotency_key"]) is written[7]

    again = outbox.pending_row(
        now,
        key="bulk:outbox:new",
        channel=NotificationChannel.SMS,
        recipient="+905320000003",
        template="sla_delay_notice",
        language=Language.TR,
        payload={},
        ticket_id=None,
    )
    savepoint = session.begin_nested()
    with pytest.raises(IntegrityError):
        outbox.enqueue_many(session, [again, rows[0]])
    savepoint.rollback()
    assert outbox.queued(session, "bulk:outbox:new") is None
