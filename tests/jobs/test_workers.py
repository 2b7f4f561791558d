"""Notification dispatch through real RQ workers and a real Redis (issue 5 items 1, 3, 7).

The outbox is the record; Redis is only the queue. Proven here: intake → outbox → worker →
file gateway with the reference code; permanent errors reach the dead-letter list; a worker
SIGKILLed between the gateway's acceptance and the outbox update sends nothing twice; a
Redis killed and restarted mid-run loses no notification.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from rq import Queue
from sqlalchemy import ColumnElement, func, select, text

from acikkapi.settings import load_settings
from jobs.notifications import QUEUE, send_batch
from jobs.runtime import redis_connection
from messaging.sms_file import read_messages
from models import Channel, Language, Notification, NotificationChannel, OutboxStatus
from services import outbox, outbox_dispatch
from services.actors import system_actor
from services.intake import open_ticket
from tests.factories import mobile, request, valid_tc
from tests.helpers.smtp import SmtpServer
from tests.jobs.conftest import ACIKKAPI, WorkerStack, wait_for


def _statuses(stack: WorkerStack, which: ColumnElement[bool]) -> Counter[str]:
    """Statuses of the outbox rows ``which`` selects: the rows the test itself caused.

    The scheduler runs every periodic job, and some add rows of their own (the weekly
    mayor-list job publishes this week's list by e-mail whenever it is due at the
    scheduler's start, any time after Monday 09:00; decision 0022), so counting the whole
    outbox would make a test depend on the weekday."""
    with stack.session() as s:
        return Counter(
            str(status) for (status,) in s.execute(select(Notification.status).where(which))
        )


def _queue_sms(
    stack: WorkerStack, n: int, *, template: str = "ticket_opened", prefix: str = "bulk"
) -> list[int]:
    now = datetime.now(UTC)
    with stack.session() as s:
        rows = [
            outbox.enqueue(
                s,
                now,
                key=f"{prefix}:{i}",
                channel=NotificationChannel.SMS,
                recipient=f"+90532{i:07d}",
                template=template,
                language=Language.TR,
                payload={"reference_code": f"TEST-{i:05d}"},
            )
            for i in range(n)
        ]
        s.commit()
        return [r.id for r in rows]


def _clear_demo_outbox(stack: WorkerStack) -> None:
    with stack.session() as s:
        s.execute(text("DELETE FROM notifications"))
        s.commit()


def test_intake_acknowledgement_reaches_the_gateway_with_the_reference_code(
    stack: WorkerStack,
) -> None:
    _clear_demo_outbox(stack)
    with stack.session() as s:
        now = datetime.now(UTC)
        actor = system_actor(s, "system.test", now)
        result = open_ticket(
            s,
            actor,
            now,
            request(Channel.SMS, tc_number=valid_tc(424242), phone=mobile(4242424)),
        )
        s.commit()
        code = result.ticket.reference_code
        assert result.acknowledgement is not None
        ack_id = result.acknowledgement.id
    stack.scheduler()
    stack.worker()
    wait_for(
        lambda: _statuses(stack, Notification.id.in_([ack_id])).get("sent") == 1,
        timeout=60,
        what=lambda: f"the acknowledgement to be sent\n{stack.logs()}",
    )
    (message,) = read_messages(stack.sms_dir)
    assert message["recipient"] == "+905324242424"
    assert code in message["text"]
    with stack.session() as s:
        row = s.get(Notification, ack_id)
        assert row is not None and row.status is OutboxStatus.SENT
        assert row.attempts == 1 and row.sent_at is not None and row.provider_message_id


def test_a_permanent_error_goes_to_the_dead_letter_list(stack: WorkerStack) -> None:
    _clear_demo_outbox(stack)
    (bad,) = _queue_sms(stack, 1, template="no_such_template", prefix="bad")
    (good,) = _queue_sms(stack, 1, prefix="good")
    stack.scheduler()
    stack.worker()
    wait_for(
        lambda: (
            _statuses(stack, Notification.id.in_([bad, good])) == Counter({"dead": 1, "sent": 1})
        ),
        timeout=60,
        what=lambda: f"one dead and one sent row\n{stack.logs()}",
    )
    with stack.session() as s:
        row = s.get(Notification, bad)
        assert row is not None and row.status is OutboxStatus.DEAD
        assert row.attempts == 1 and "no_such_template" in (row.last_error or "")
    assert len(read_messages(stack.sms_dir)) == 1
    listing = subprocess.run(
        [ACIKKAPI, "outbox", "dead"], env=stack.env, capture_output=True, text=True, check=True
    ).stdout
    assert str(bad) in listing and "no_such_template" in listing
    assert good != bad


def test_worker_killed_after_the_gateway_accepted_sends_nothing_twice(
    pg_stack: WorkerStack,
) -> None:
    """SIGKILL while the outbox update waits on a row lock: the gateway already has the SMS.
    After the lease runs out another worker takes the row, the gateway recognises the key,
    and the citizen receives exactly one message."""
    stack = pg_stack
    _clear_demo_outbox(stack)
    (row_id,) = _queue_sms(stack, 1, prefix="kill")
    with stack.session() as s:
        claimed = outbox_dispatch.claim_due(
            s, datetime.now(UTC), limit=5, lease=outbox_dispatch.LEASE
        )
        s.commit()
    assert claimed.claimed == [row_id]
    victim = stack.worker("victim")
    blocker = stack.engine.connect()
    tx = blocker.begin()
    blocker.execute(text("SELECT id FROM notifications WHERE id = :i FOR UPDATE"), {"i": row_id})
    try:
        settings = load_settings(stack.env)
        Queue(QUEUE, connection=redis_connection(settings)).enqueue(send_batch, [row_id])
        wait_for(
            lambda: len(read_messages(stack.sms_dir)) == 1,
            timeout=60,
            what="the gateway to accept the SMS",
        )

        def settle_is_waiting() -> bool:
            with stack.engine.connect() as c:
                return bool(
                    c.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE 'UPDATE notifications%'"
                        )
                    )
                )

        wait_for(
            settle_is_waiting, timeout=30, what="the worker's outbox update to wait on the lock"
        )
        victim.kill_tree()
        killed_at = datetime.now(UTC)
    finally:
        tx.rollback()
        blocker.close()
    with stack.session() as s:
        row = s.get(Notification, row_id)
        assert row is not None and row.status is OutboxStatus.SENDING  # the kill left it leased
    # Make the lease run out now instead of in two minutes, then let the normal path retry.
    with stack.session() as s:
        s.execute(
            text("UPDATE notifications SET available_at = :t WHERE id = :i"),
            {"t": datetime.now(UTC), "i": row_id},
        )
        s.commit()
    stack.scheduler()
    stack.worker("successor")
    wait_for(
        lambda: _statuses(stack, Notification.id.in_([row_id])).get("sent") == 1,
        timeout=60,
        what=lambda: f"the retry to settle the row\n{stack.logs()}",
    )
    messages = read_messages(stack.sms_dir)
    assert len(messages) == 1, messages
    with stack.session() as s:
        row = s.get(Notification, row_id)
        # Settled by a later attempt (the victim never committed): RQ re-ran the abandoned job
        # or the lease was handed out again; either way the gateway saw the key twice and
        # kept one message.
        assert row is not None and row.status is OutboxStatus.SENT
        assert row.sent_at is not None and row.sent_at > killed_at


def test_redis_killed_and_restarted_mid_run_loses_no_notification(stack: WorkerStack) -> None:
    _clear_demo_outbox(stack)
    ids = _queue_sms(stack, 300)
    own_rows = Notification.id.in_(ids)
    stack.scheduler()
    stack.worker("w1")
    stack.worker("w2")
    wait_for(
        lambda: _statuses(stack, own_rows).get("sent", 0) >= 30,
        timeout=90,
        what=lambda: f"the first sends\n{stack.logs()}",
    )
    stack.redis.kill()
    sent_while_down = _statuses(stack, own_rows).get("sent", 0)
    time.sleep(3)  # workers and scheduler see the dead Redis and retry
    stack.redis.start()
    wait_for(
        lambda: _statuses(stack, own_rows) == Counter({"sent": 300}),
        timeout=240,
        what=lambda: f"all 300 to be sent (statuses {_statuses(stack, own_rows)})\n{stack.logs()}",
    )
    assert sent_while_down < 300  # the kill really happened mid-run
    messages = read_messages(stack.sms_dir)
    assert len(messages) == 300
    assert sorted(m["recipient"] for m in messages) == sorted(f"+90532{i:07d}" for i in range(300))
    assert all(p.alive() for p in stack.processes), stack.logs()


def test_email_acknowledgement_goes_out_over_smtp_with_the_code_in_the_subject(
    stack: WorkerStack,
) -> None:
    _clear_demo_outbox(stack)
    citizen_email = "gülşen.öztürk@example.org"
    smtp = SmtpServer(enable_SMTPUTF8=True)
    smtp.start()
    try:
        with stack.session() as s:
            now = datetime.now(UTC)
            actor = system_actor(s, "system.test", now)
            result = open_ticket(
                s,
                actor,
                now,
                request(
                    Channel.WEB,
                    tc_number=valid_tc(515151),
                    email=citizen_email,
                    phone=None,
                ),
            )
            s.commit()
            code = result.ticket.reference_code
            assert result.acknowledgement is not None
            assert result.acknowledgement.channel is NotificationChannel.EMAIL
            ack_id = result.acknowledgement.id
        stack.env.update({"ACIKKAPI_SMTP_HOST": "127.0.0.1", "ACIKKAPI_SMTP_PORT": str(smtp.port)})
        stack.scheduler()
        stack.worker()
        wait_for(
            lambda: _statuses(stack, Notification.id.in_([ack_id])).get("sent") == 1,
            timeout=60,
            what=lambda: f"the e-mail acknowledgement to be sent\n{stack.logs()}",
        )
        # Exactly one message to the citizen (the mayor-list job may mail staff meanwhile).
        (mail,) = [m for m in smtp.recorder.received if citizen_email in m.rcpt_tos]
        message = mail.message
        assert mail.rcpt_tos == [citizen_email]
        assert code is not None and code in str(message["Subject"])
        body = message.get_body(("plain",))
        assert body is not None and code in body.get_content()
    finally:
        smtp.stop()


def test_scheduled_escalation_sweep_escalates_an_overdue_ticket_and_its_notices_go_out(
    stack: WorkerStack,
) -> None:
    """The scheduler's sweep job runs in a real worker; its outbox rows are dispatched too."""
    from models import TicketEvent, TimelineAction

    _clear_demo_outbox(stack)
    with stack.session() as s:
        s.execute(text("UPDATE tickets SET next_escalation_at = NULL"))
        long_ago = datetime.now(UTC) - timedelta(days=40)
        actor = system_actor(s, "system.test", long_ago)
        result = open_ticket(
            s,
            actor,
            long_ago,
            request(Channel.PHONE, tc_number=valid_tc(626262), phone=mobile(6262626)),
        )
        s.commit()
        ticket_id = result.ticket.id
    # Every outbox row the sweep writes for this ticket (services.escalation keys them so).
    own_rows = Notification.idempotency_key.like(f"esc:{ticket_id}:%")

    def escalations() -> int:
        with stack.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(TicketEvent)
                    .where(
                        TicketEvent.ticket_id == ticket_id,
                        TicketEvent.action == TimelineAction.ESCALATED,
                    )
                )
                or 0
            )

    smtp = SmtpServer(enable_SMTPUTF8=True)
    smtp.start()
    stack.env.update({"ACIKKAPI_SMTP_HOST": "127.0.0.1", "ACIKKAPI_SMTP_PORT": str(smtp.port)})
    try:
        stack.scheduler()
        stack.worker()
        wait_for(
            lambda: escalations() >= 1,
            timeout=90,
            what=lambda: f"an escalation step\n{stack.logs()}",
        )
        wait_for(
            lambda: set(_statuses(stack, own_rows)) == {"sent"},
            timeout=90,
            what=lambda: (
                f"every escalation notice to be sent ({_statuses(stack, own_rows)})\n{stack.logs()}"
            ),
        )
        with stack.session() as s:
            sent = list(s.scalars(select(Notification).where(own_rows)))
        channels = {n.channel for n in sent}
        templates = {n.template for n in sent}
        # staff told in the console, by e-mail and by SMS; the citizen got a delay notice
        assert channels == {
            NotificationChannel.CONSOLE,
            NotificationChannel.EMAIL,
            NotificationChannel.SMS,
        }
        assert "sla_delay_notice" in templates
        emails = [n for n in sent if n.channel is NotificationChannel.EMAIL]
        # Each escalation e-mail reached the server exactly once (matched by its Message-ID,
        # which the outbox row's provider id holds), and no e-mail arrived twice (the
        # mayor-list job may mail staff meanwhile).
        received = Counter(str(m.message["Message-ID"]) for m in smtp.recorder.received)
        assert [received[str(n.provider_message_id)] for n in emails] == [1] * len(emails)
        assert max(received.values()) == 1, received
        assert len({n.idempotency_key for n in sent}) == len(sent)
    finally:
        smtp.stop()
