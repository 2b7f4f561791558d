"""The callback list ("Geri arama listesi", R5.3) on SQLite and PostgreSQL: masking, filters,
"Şimdi ara" and "Kapat/İptal" through the real services, CSRF and roles."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from models import CallbackStatus, CallbackTask, CampaignTarget, CampaignTargetStatus, Role
from services.callback_campaign import enqueue_due_callbacks
from services.callbacks import request_callback
from tests.console.conftest import ConsoleEnv, csrf
from tests.factories import add_citizen, mobile_e164


def _tasks(env: ConsoleEnv) -> tuple[CallbackTask, CallbackTask]:
    db, now = env.db, env.clock()
    citizen = add_citizen(db, now, mobile_e164(61), first_name="Şükran", last_name="Öztürk")
    named = request_callback(
        db,
        now - timedelta(minutes=20),
        call_id="page-cb-1",
        raw_phone="0532 000 00 61",
        reason="abandoned",
        language="tr",
        citizen_id=citizen.id,
    )
    anonymous = request_callback(
        db,
        now - timedelta(minutes=5),
        call_id="page-cb-2",
        raw_phone="0533 765 43 21",
        reason="out_of_hours",
        language="en",
    )
    db.flush()
    return named, anonymous


def _status(db: Session, task: CallbackTask) -> CallbackStatus:
    db.expire(task)
    return task.status


def test_agent_sees_the_list_masked_and_in_the_menu(console_env: ConsoleEnv) -> None:
    named, anonymous = _tasks(console_env)
    client = console_env.login(Role.AGENT)
    page = client.get("/callbacks")
    assert page.status_code == 200
    html = page.text
    assert "Geri arama listesi" in html and 'href="/callbacks"' in html
    assert f'id="callback-{named.id}"' in html and f'id="callback-{anonymous.id}"' in html
    assert "0532 *** ** 61" in html and "0533 *** ** 21" in html
    assert "000 00 61" not in html and "765 43 21" not in html  # numbers masked
    assert "Şükran Öztürk" in html and "beklerken kapattı" in html and "mesai dışı arama" in html
    assert 'action="/callbacks/call-now"' in html and 'action="/callbacks/close"' in html
    assert 'name="csrf_token"' in html and "<script>" not in html and " style=" not in html
    # in English
    client.post("/language", data={"lang": "en", "csrf_token": csrf(client)})
    english = client.get("/callbacks").text
    assert "Callback list" in english and "Call now" in english


def test_call_now_and_close_from_the_page(console_env: ConsoleEnv) -> None:
    db = console_env.db
    named, anonymous = _tasks(console_env)
    named.due_at = console_env.clock() + timedelta(hours=3)
    db.flush()
    client = console_env.login(Role.AGENT)
    # no CSRF token: refused, nothing changes
    assert client.post("/callbacks/call-now", data={"task_id": named.id}).status_code == 400
    token = csrf(client)
    response = client.post("/callbacks/call-now", data={"task_id": named.id, "csrf_token": token})
    assert response.status_code == 302 and response.location.startswith("/callbacks")
    db.expire(named)
    assert named.due_at == console_env.clock()  # due now: the next enqueue picks it up
    assert enqueue_due_callbacks(db, now=console_env.clock()) == 2
    # closing needs a note
    empty = client.post(
        "/callbacks/close",
        data={"task_id": anonymous.id, "note": " ", "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert empty.status_code == 400 and empty.get_json()["code"] == "invalid_field"
    closed = client.post(
        "/callbacks/close",
        data={
            "task_id": anonymous.id,
            "note": "Vatandaş başka kanaldan ulaştı",
            "csrf_token": token,
        },
    )
    assert closed.status_code == 302
    assert _status(db, anonymous) is CallbackStatus.CANCELLED
    target = db.query(CampaignTarget).filter_by(callback_task_id=anonymous.id).one()
    db.refresh(target)
    assert target.status is CampaignTargetStatus.CANCELLED  # the dialer will not call
    # the closed task is under "Kapatıldı" with its note, no longer under the open ones
    assert f'id="callback-{anonymous.id}"' not in client.get("/callbacks").text
    done_page = client.get("/callbacks?durum=iptal").text
    assert f'id="callback-{anonymous.id}"' in done_page and "başka kanaldan" in done_page
    # a closed callback cannot be called again
    again = client.post(
        "/callbacks/call-now",
        data={"task_id": anonymous.id, "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert again.status_code in (400, 409) and again.get_json()["code"] == "invalid_transition"
    assert (
        client.post("/callbacks/close", data={"task_id": "x", "csrf_token": token}).status_code
        == 400
    )


def test_roles(console_env: ConsoleEnv) -> None:
    _tasks(console_env)
    assert console_env.login(Role.SUPERVISOR).get("/callbacks").status_code == 200
    assert console_env.login(Role.UNIT_CHIEF).get("/callbacks").status_code == 200
    for role in (Role.DEPARTMENT_LIAISON, Role.DESK_STAFF, Role.MAYORS_OFFICE):
        client = console_env.login(role)
        assert client.get("/callbacks", headers={"Accept": "application/json"}).status_code == 403
        assert 'href="/callbacks"' not in client.get("/", follow_redirects=True).text
