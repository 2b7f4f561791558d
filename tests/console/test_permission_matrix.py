"""Every route × every role against THE permission matrix (agent_console/permissions.py).

The routes come from the application's url_map, the expectations from the matrix: a route
added without a matrix entry fails here (and is refused to everybody at run time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from agent_console.permissions import MATRIX, PUBLIC, allowed
from models import Channel, Role
from tests.console.conftest import HUMAN_ROLES, ConsoleEnv, csrf
from tests.console.samples import answered_call, ayse, sample_ticket

SKIP_METHODS = {"HEAD", "OPTIONS"}


def routes(env: ConsoleEnv) -> list[Rule]:
    """Every rule of the app; signing out comes last (it ends the session)."""
    return sorted(
        env.app.url_map.iter_rules(),
        key=lambda r: (r.endpoint == "auth.logout", r.endpoint, r.rule),
    )


def test_every_route_is_in_the_matrix_and_every_entry_is_a_route(console_env: ConsoleEnv) -> None:
    endpoints = {rule.endpoint for rule in routes(console_env)}
    assert sorted(endpoints - set(MATRIX)) == [], "routes missing from the permission matrix"
    assert sorted(set(MATRIX) - endpoints) == [], "matrix entries without a route"


def test_a_route_missing_from_the_matrix_is_refused(console_env: ConsoleEnv) -> None:
    app = console_env.app
    app.add_url_rule("/unlisted", "unlisted", lambda: "secret")
    client = console_env.login(Role.SUPERVISOR)
    response = client.get("/unlisted", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.get_json()["code"] == "role_not_permitted"


def _url(rule: Rule, values: dict[str, Any]) -> str:
    args = {name: values[name] for name in rule.arguments}
    return rule.build(args, append_unknown=False)[1]  # type: ignore[index]


@pytest.fixture
def sample_values(console_env: ConsoleEnv) -> dict[str, Any]:
    db, now = console_env.db, console_env.clock()
    agent = console_env.user(Role.AGENT)
    citizen = ayse(db)
    ticket = sample_ticket(db, now)
    call = answered_call(db, now, agent, recordings=console_env.recordings)
    return {
        "call_id": call.call_id,
        "citizen_id": citizen.id,
        "ticket_id": ticket.id,
        "filename": "console.css",
        "notification_id": 1,  # outbox.requeue_one (an unknown or live row: 404/400)
        "campaign_id": 1,  # campaigns.* (an unknown campaign: 404)
        "follow_up_id": 1,  # follow_ups.close (an unknown follow-up: 404, no note: 400)
    }


def _calls(
    env: ConsoleEnv, client: FlaskClient, values: dict[str, Any]
) -> Iterator[tuple[str, str, int, dict[str, Any] | None]]:
    token = csrf(client)
    for rule in routes(env):
        url = _url(rule, values)
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            response = client.open(
                url,
                method=method,
                data={"csrf_token": token} if method != "GET" else None,
                headers={"Accept": "application/json"},
            )
            body = response.get_json(silent=True) if response.is_json else None
            status = response.status_code
            response.close()  # the screen-pop stream would run for minutes otherwise
            yield rule.endpoint, method, status, body


@pytest.mark.parametrize("role", HUMAN_ROLES, ids=[r.value for r in HUMAN_ROLES])
def test_every_route_for_every_role(
    console_env: ConsoleEnv, sample_values: dict[str, Any], role: Role
) -> None:
    seen: set[tuple[str, str]] = set()
    client = console_env.login(role)
    for endpoint, method, status, body in _calls(console_env, client, sample_values):
        seen.add((endpoint, method))
        denied = status == 403 and body is not None and body.get("code") == "role_not_permitted"
        where = f"{role.value} {method} {endpoint}: {status} {body}"
        if allowed(endpoint, role):
            assert not denied, where
            assert status != 401, where
        else:
            assert denied, where
    expected = {
        (rule.endpoint, m)
        for rule in routes(console_env)
        for m in (rule.methods or set()) - SKIP_METHODS
    }
    assert seen == expected


def test_signed_out_visitors_reach_only_public_routes(
    console_env: ConsoleEnv, sample_values: dict[str, Any]
) -> None:
    client = console_env.client()
    token = csrf(client)  # the sign-in page has one
    for rule in routes(console_env):
        url = _url(rule, sample_values)
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            stream = rule.endpoint == "agent.events"  # what EventSource sends
            response = client.open(
                url,
                method=method,
                data={"csrf_token": token} if method != "GET" else None,
                headers={"Accept": "text/event-stream"} if stream else None,
            )
            where = f"{method} {rule.endpoint}: {response.status_code}"
            if MATRIX[rule.endpoint] is PUBLIC:  # (a failed sign-in answers 401 itself)
                assert response.status_code != 403, where
                assert b"sign_in_required" not in response.data, where
            elif method == "GET" and not stream:
                assert response.status_code == 302, where
                assert response.location.startswith("/login"), where
            else:
                assert response.status_code == 401, where
            response.close()


def test_departments_see_only_their_own_tickets(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    own = sample_ticket(db, now, channel=Channel.PHONE, type_code="tehlikeli_yol_bozuklugu")
    other = sample_ticket(db, now, channel=Channel.PHONE, type_code="gurultu")  # Zabıta
    liaison = console_env.login(Role.DEPARTMENT_LIAISON)
    assert liaison.get(f"/tickets/{own.id}").status_code == 200
    refused = liaison.get(f"/tickets/{other.id}", headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_permitted"
    assert own.department is not None and own.department.code == "FEN_ISLERI"
    mayor = console_env.login(Role.MAYORS_OFFICE)
    assert mayor.get(f"/tickets/{own.id}").status_code == 403  # not on the mayor's list
    listed = sample_ticket(db, now)  # through the mayor's office (Fen İşleri too)
    assert mayor.get(f"/tickets/{listed.id}").status_code == 200
    supervisor = console_env.login(Role.SUPERVISOR)
    for ticket in (own, other, listed):
        assert supervisor.get(f"/tickets/{ticket.id}").status_code == 200
    # The search finds only what the liaison may see.
    found = liaison.get(f"/search?q={other.reference_code}").text
    assert other.reference_code not in found.split("Aranan", 1)[1]
    found = liaison.get(f"/search?q={own.reference_code}").text
    assert f">{own.reference_code}</a>" in found
