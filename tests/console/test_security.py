"""Sign-in security: CSRF, lock-out, idle and absolute time-outs (time travel, never sleep),
cookie flags, security headers, and no state change on GET."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import models
from agent_console.permissions import MATRIX, PUBLIC, allowed
from agent_console.security import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT
from models import AuditAction, AuditEvent, Role
from services.staff_auth import LOCK_FOR, MAX_FAILURES
from tests.console.conftest import PASSWORD, ConsoleEnv, console_settings, csrf, csrf_from
from tests.console.samples import answered_call, ayse, sample_ticket

# --- CSRF ------------------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.AGENT)
    for path in ("/logout", "/language", "/agent/ready", "/keepalive"):
        response = client.post(path, data={"lang": "en"})
        assert response.status_code == 400, path
    refused = client.post("/keepalive", headers={"Accept": "application/json"})
    assert refused.get_json()["code"] == "csrf_failed"
    wrong = client.post("/keepalive", headers={"X-CSRFToken": "not-the-token"})
    assert wrong.status_code == 400
    # The same requests with the session's token go through.
    token = csrf(client)
    assert client.post("/keepalive", headers={"X-CSRFToken": token}).status_code == 204
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def test_sign_in_form_needs_the_token_too(console_env: ConsoleEnv) -> None:
    user = console_env.user(Role.AGENT)
    client = console_env.client()
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/agent").status_code == 302  # not signed in


def test_a_token_from_another_session_is_refused(console_env: ConsoleEnv) -> None:
    first = console_env.login(Role.AGENT)
    second = console_env.login(Role.AGENT)
    foreign = csrf(first)
    assert second.post("/keepalive", headers={"X-CSRFToken": foreign}).status_code == 400


# --- sign-in and lock-out ----------------------------------------------------------------------


def _attempt(env: ConsoleEnv, username: str, password: str) -> Any:
    client = env.client()
    token = csrf_from(client.get("/login").text)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def test_wrong_password_and_unknown_user_get_the_same_answer(console_env: ConsoleEnv) -> None:
    user = console_env.user(Role.AGENT)
    wrong = _attempt(console_env, user.username, "yanlis-parola")
    unknown = _attempt(console_env, "kimse.yok", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Kullanıcı adı veya parola hatalı." in wrong.text
    assert "Kullanıcı adı veya parola hatalı." in unknown.text


def test_lock_out_after_repeated_failures_then_unlock_after_the_period(
    console_env: ConsoleEnv,
) -> None:
    user = console_env.user(Role.AGENT)
    for attempt in range(1, MAX_FAILURES):
        assert _attempt(console_env, user.username, f"yanlis-{attempt}").status_code == 401
        console_env.clock.advance(seconds=10)
    locked = _attempt(console_env, user.username, "yanlis-son")
    assert "kilitlendi" in locked.text
    # While locked even the right password is refused.
    console_env.clock.advance(minutes=5)
    still = _attempt(console_env, user.username, PASSWORD)
    assert still.status_code == 401 and "kilitlendi" in still.text
    events = console_env.db.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_id == user.id).order_by(AuditEvent.id)
    ).all()
    assert events.count(AuditAction.ACCOUNT_LOCKED) == 1
    assert events.count(AuditAction.SIGN_IN_FAILED) == MAX_FAILURES  # 4 wrong + 1 while locked
    # After the lock period the right password works, and the counter starts again.
    console_env.clock.advance(seconds=LOCK_FOR.total_seconds())
    assert _attempt(console_env, user.username, PASSWORD).status_code == 302
    console_env.db.refresh(user)
    assert user.failed_logins == 0 and user.locked_until is None
    assert user.last_login_at == console_env.clock()


def test_inactive_and_system_accounts_cannot_sign_in(console_env: ConsoleEnv) -> None:
    user = console_env.user(Role.SUPERVISOR)
    user.is_active = False
    console_env.db.flush()
    assert _attempt(console_env, user.username, PASSWORD).status_code == 401
    from services.actors import system_actor

    robot = system_actor(console_env.db, "ami", console_env.clock())
    robot.password_hash = user.password_hash
    console_env.db.flush()
    assert _attempt(console_env, robot.username, PASSWORD).status_code == 401


def test_a_password_change_ends_existing_sessions(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.AGENT)
    assert client.get("/agent").status_code == 200
    from services.staff_auth import set_password

    set_password(console_env.user(Role.AGENT), "yepyeni-parola-42")
    console_env.db.flush()
    response = client.get("/agent")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_sign_in_redirects_only_to_local_pages(console_env: ConsoleEnv) -> None:
    user = console_env.user(Role.AGENT)
    for target, expected in (("/search", "/search"), ("//evil.example/x", "/"), ("https://x", "/")):
        client = console_env.client()
        token = csrf_from(client.get("/login").text)
        response = client.post(
            f"/login?next={target}",
            data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        )
        assert response.location == expected, target


# --- time-outs ------------------------------------------------------------------------------


def test_idle_timeout(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    console_env.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() - 60)
    assert client.get("/search").status_code == 200  # activity: the idle clock restarts
    console_env.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() - 60)
    assert client.get("/search").status_code == 200
    console_env.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() + 1)
    expired = client.get("/search")
    assert expired.status_code == 302 and expired.location.startswith("/login")
    assert "süresi doldu" in client.get("/login").text
    assert client.get("/search").status_code == 302  # signed out for good


def test_passive_requests_do_not_keep_a_session_alive(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.AGENT)
    json = {"Accept": "application/json"}
    for _ in range(7):  # the screen polls its state while nobody works: 14 minutes
        console_env.clock.advance(minutes=2)
        assert client.get("/agent/state", headers=json).status_code == 200
    console_env.clock.advance(minutes=2)  # 16 minutes after the last real activity
    response = client.get("/agent/state", headers=json)
    assert response.status_code == 401 and response.get_json()["code"] == "session_expired"


def test_absolute_timeout_even_when_active(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    token = csrf(client)
    step = IDLE_TIMEOUT.total_seconds() - 60
    elapsed = 0.0
    while elapsed + step < ABSOLUTE_TIMEOUT.total_seconds():
        console_env.clock.advance(seconds=step)
        elapsed += step
        assert client.post("/keepalive", headers={"X-CSRFToken": token}).status_code == 204
    console_env.clock.advance(seconds=ABSOLUTE_TIMEOUT.total_seconds() - elapsed + 1)
    response = client.post(
        "/keepalive", headers={"X-CSRFToken": token, "Accept": "application/json"}
    )
    assert response.status_code == 401 and response.get_json()["code"] == "session_expired"


# --- cookies and headers -----------------------------------------------------------------------


def _session_cookie(response: Any) -> str:
    cookies = [
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("acikkapi_session=")
    ]
    assert cookies, response.headers
    return str(cookies[-1])


def test_cookie_flags_and_security_headers(console_env: ConsoleEnv) -> None:
    client = console_env.client()
    page = client.get("/login")
    cookie = _session_cookie(page).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie.split(";")[1:].__str__()  # loopback demo: plain HTTP allowed
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    # No inline script or style anywhere in the page (the CSP would block it).
    assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text


def test_cookies_are_secure_when_the_console_is_not_on_loopback(
    console_env: ConsoleEnv, tmp_path: Any
) -> None:
    from agent_console import create_app

    settings = console_settings(
        tmp_path / "other", "sqlite:///" + str(tmp_path / "x.db"), ACIKKAPI_CONSOLE_HOST="0.0.0.0"
    )
    assert settings.console_secure_cookies is True
    app = create_app(
        settings, testing=True, session_factory=console_env.app.extensions["acikkapi"].sessions
    )
    cookie = _session_cookie(app.test_client().get("/login")).lower()
    assert "; secure" in cookie


# --- no state change on GET ------------------------------------------------------------------


def _snapshot(db: Session) -> dict[str, str]:
    """A digest of every table's rows, except the append-only access audit."""
    digests = {}
    for table in models.Base.metadata.sorted_tables:
        if table.name == "audit_events":
            continue
        key = [c for c in table.primary_key.columns] or list(table.columns)
        rows = db.execute(select(table).order_by(*key)).all()
        blob = json.dumps([list(r) for r in rows], default=str, sort_keys=True)
        digests[table.name] = hashlib.sha256(blob.encode()).hexdigest()
    return digests


def test_no_get_route_changes_anything_but_the_access_audit(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    ticket = sample_ticket(db, now)
    call = answered_call(db, now, agent, recordings=console_env.recordings)
    citizen = ayse(db)
    values = {
        "call_id": call.call_id,
        "citizen_id": citizen.id,
        "ticket_id": ticket.id,
        "filename": "console.css",
        "campaign_id": 1,
        "follow_up_id": 1,
    }
    clients = {role: console_env.login(role) for role in (Role.AGENT, Role.SUPERVISOR)}
    # A released recording link, so that the GET of the file itself is exercised.
    grant = clients[Role.AGENT].post(
        f"/calls/{call.call_id}/recording",
        data={"reason": "kalite kontrolü", "csrf_token": csrf(clients[Role.AGENT])},
        headers={"Accept": "application/json"},
    )
    recording_url = grant.get_json()["url"]
    db.expire_all()
    before = _snapshot(db)
    audit_before = db.scalar(select(func.max(AuditEvent.id))) or 0
    called = set()
    for rule in console_env.app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or MATRIX.get(rule.endpoint) is None:
            continue
        url = rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]  # type: ignore[index]
        if rule.endpoint == "citizen.recording":
            url = recording_url
        for role, client in clients.items():
            if MATRIX[rule.endpoint] is not PUBLIC and not allowed(rule.endpoint, role):
                continue
            response = client.get(
                url, query_string={"q": "0505 361 88 77"} if "search" in url else None
            )
            assert response.status_code < 500, (rule.endpoint, response.status_code)
            response.close()
            called.add(rule.endpoint)
    get_endpoints = {
        r.endpoint for r in console_env.app.url_map.iter_rules() if "GET" in (r.methods or set())
    }
    assert called == get_endpoints
    db.expire_all()
    assert _snapshot(db) == before
    added = db.scalars(select(AuditEvent.action).where(AuditEvent.id > audit_before)).all()
    assert added and set(added) == {AuditAction.CITIZEN_OPENED}
    # Sanity: the snapshot does see changes (a POST changes the profile language).
    clients[Role.SUPERVISOR].post(
        "/language", data={"lang": "en", "csrf_token": csrf(clients[Role.SUPERVISOR])}
    )
    db.expire_all()
    assert _snapshot(db) != before
    assert db.execute(text("SELECT 1")).scalar() == 1
