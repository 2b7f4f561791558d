"""The supervisor's page of notifications that could not be sent, and its requeue action."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import (
    Notification,
    NotificationChannel,
    OutboxStatus,
    Role,
    TicketEvent,
    TimelineAction,
)
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import sample_ticket
from tests.domain.test_dead_letters import dead_notification


def test_the_list_shows_dead_letters_masked(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now)
    row = dead_notification(db, now, "t:page:1", ticket=ticket)
    mail = dead_notification(
        db,
        now,
        "t:page:2",
        channel=NotificationChannel.EMAIL,
        recipient="ayse.yilmaz@example.org",
        error="550 5.1.1 <ayse.yilmaz@example.org>: user unknown",
    )
    client = console_env.login(Role.SUPERVISOR)
    page = client.get("/outbox/dead")
    assert page.status_code == 200
    html = page.text
    assert "Gönderilemeyen bildirimler" in html
    assert f'id="dead-{row.id}"' in html and f'id="dead-{mail.id}"' in html
    assert "0532 *** ** 67" in html and "a***@example.org" in html
    assert "1234567" not in html and "ayse.yilmaz" not in html  # no contact details
    assert ticket.reference_code is not None and ticket.reference_code in html
    assert f'action="/outbox/{row.id}/requeue"' in html and 'name="csrf_token"' in html
    assert 'href="/outbox/dead"' in html  # in the supervisor's menu
    assert "<script>" not in html and " style=" not in html


def test_requeue_from_the_page(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    ticket = sample_ticket(db, now)
    row = dead_notification(db, now, "t:page:rq", ticket=ticket)
    supervisor = console_env.user(Role.SUPERVISOR)
    client = console_env.login(Role.SUPERVISOR)
    console_env.clock.advance(minutes=10)
    # Without the CSRF token nothing happens.
    assert client.post(f"/outbox/{row.id}/requeue").status_code == 400
    db.expire_all()
    assert db.get(Notification, row.id).status is OutboxStatus.DEAD  # type: ignore[union-attr]
    response = client.post(f"/outbox/{row.id}/requeue", data={"csrf_token": csrf(client)})
    assert response.status_code == 302 and response.location == "/outbox/dead"
    page = client.get(response.location).text
    assert f"Bildirim #{row.id} yeniden gönderim kuyruğuna alındı." in page
    assert f'id="dead-{row.id}"' not in page  # off the list
    db.expire_all()
    fresh = db.get(Notification, row.id)
    assert fresh is not None and fresh.status is OutboxStatus.PENDING
    assert fresh.attempts == 0 and fresh.available_at == now + timedelta(minutes=10)
    entry = db.scalars(
        select(TicketEvent)
        .where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.action == TimelineAction.NOTIFICATION_QUEUED,
        )
        .order_by(TicketEvent.id.desc())
    ).first()
    assert entry is not None and entry.actor_id == supervisor.id and entry.data["requeued"]
    # The same click again (a second tab): a typed error, the row is not touched twice.
    again = client.post(
        f"/outbox/{row.id}/requeue",
        data={"csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert again.status_code == 400 and again.get_json()["code"] == "invalid_transition"


def test_requeue_in_english_and_for_scripts(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    row = dead_notification(db, now, "t:page:en")
    client = console_env.login(Role.ADMINISTRATOR)
    client.post("/language", data={"lang": "en", "csrf_token": csrf(client)})
    assert "Undelivered notifications" in client.get("/outbox/dead").text
    answer = client.post(
        f"/outbox/{row.id}/requeue",
        headers={"X-CSRFToken": csrf(client), "X-Requested-With": "fetch"},
    )
    assert answer.status_code == 200
    assert answer.get_json() == {
        "ok": True,
        "message": f"Notification #{row.id} is queued for sending again.",
    }


def test_only_keepers_see_the_list(console_env: ConsoleEnv) -> None:
    for role in (Role.AGENT, Role.ADVISOR, Role.UNIT_CHIEF, Role.DEPARTMENT_LIAISON):
        client = console_env.login(role)
        refused = client.get("/outbox/dead", headers={"Accept": "application/json"})
        assert refused.status_code == 403, role
        assert 'href="/outbox/dead"' not in client.get("/", follow_redirects=True).text
