"""The survey follow-up page (issue 6 item 3; R5.2) on SQLite and PostgreSQL.

A low satisfaction score is produced the way the IVR produces it — answers stored with
services.surveys.record_answer, then services.survey_outcomes.apply_survey_answers — and
must show up on the supervisors' list; closing it needs a note (POST + CSRF) and writes
what close_follow_up writes (status, closer, note, a timeline note). Agents are refused,
advisors read, department liaisons see only their own department's follow-ups.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from sqlalchemy import select

from agent_console.permissions import allowed
from models import (
    Department,
    Neighbourhood,
    Role,
    SurveyFollowUp,
    Ticket,
    TicketEvent,
    TimelineAction,
)
from services.survey_outcomes import apply_survey_answers
from services.surveys import ensure_default_questions, record_answer
from services.ticket_workflow import resolve_ticket
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import AYSE_TC, sample_ticket

_surveys = itertools.count(1)


def _low_score(
    env: ConsoleEnv, *, score: int = 1, channel: str = "ivr", type_code: str = "yol_bozuklugu"
) -> tuple[Ticket, SurveyFollowUp]:
    """A resolved ticket whose citizen answered the survey with ``score`` (R5.2)."""
    db, now = env.db, env.clock()
    ensure_default_questions(db)
    ticket = sample_ticket(db, now - timedelta(days=2), type_code=type_code)
    resolve_ticket(
        db, env.user(Role.SUPERVISOR), now - timedelta(days=1), ticket, "Çukur kapatıldı."
    )
    key = f"follow-up-page-{next(_surveys)}"
    for code, digit in (("satisfaction", score), ("solved", 1)):
        record_answer(
            db,
            now,
            call_id=key,
            question_code=code,
            digit=digit,
            ticket_id=ticket.id,
            citizen_id=ticket.citizen_id,
            channel=channel,
        )
    outcome = apply_survey_answers(db, now=now, survey_key=key)
    db.flush()
    assert outcome.follow_up_id is not None
    row = db.get(SurveyFollowUp, outcome.follow_up_id)
    assert row is not None and row.status == "open"
    return ticket, row


def _open_rows(html: str) -> str:
    """The open-follow-up table of the page."""
    found = re.search(r'<table class="grid" id="follow-ups">(.*?)</table>', html, re.S)
    assert found, "no open follow-up table"
    return found.group(1)


def test_a_low_score_shows_up_on_the_list(console_env: ConsoleEnv) -> None:
    ticket, row = _low_score(console_env, score=2)
    department = console_env.db.get(Department, ticket.department_id)
    assert department is not None
    for role in (Role.SUPERVISOR, Role.ADVISOR, Role.ADMINISTRATOR):
        client = console_env.login(role)
        response = client.get("/follow-ups")
        assert response.status_code == 200, role
        table = _open_rows(response.text)
        assert f'id="follow-up-{row.id}"' in table
        assert ticket.reference_code in table
        # The code links to the ticket page for whoever may open it (not administrators).
        linked = f'href="/tickets/{ticket.id}"' in table
        assert linked is allowed("tickets.show", role)
        assert department.name_tr in table
        assert "<strong>2</strong>/5" in table
        assert "telefonda tuşlama" in table  # channel ivr
        assert "41*******16" in table and AYSE_TC not in response.text  # masked TC
        if ticket.neighbourhood_id is not None:
            hood = console_env.db.get(Neighbourhood, ticket.neighbourhood_id)
            assert hood is not None and hood.name in table
        # Only supervisors and administrators get the close form.
        assert (f'action="/follow-ups/{row.id}/close"' in table) is (role is not Role.ADVISOR)
    # The menu entry.
    assert "Anket takipleri" in console_env.login(Role.SUPERVISOR).get("/follow-ups").text


def test_closing_needs_a_note_and_leaves_the_open_list(console_env: ConsoleEnv) -> None:
    db = console_env.db
    ticket, row = _low_score(console_env, channel="sms")
    supervisor = console_env.user(Role.SUPERVISOR)
    client = console_env.login(Role.SUPERVISOR)
    url = f"/follow-ups/{row.id}/close"
    for note in ("", "   "):
        refused = client.post(url, data={"csrf_token": csrf(client), "note": note})
        assert refused.status_code == 400
        assert "Kapatmak için ne yapıldığını yazın." in refused.text  # on the form
        assert f'id="note-error-{row.id}"' in refused.text
        db.expire_all()
        assert db.get(SurveyFollowUp, row.id).status == "open"  # type: ignore[union-attr]
    console_env.clock.advance(minutes=5)
    response = client.post(
        url,
        data={"csrf_token": csrf(client), "note": "Vatandaş arandı, ekip yeniden gönderildi."},
    )
    assert response.status_code == 302 and response.location == "/follow-ups"
    db.expire_all()
    closed = db.get(SurveyFollowUp, row.id)
    assert closed is not None
    assert closed.status == "done"
    assert closed.closed_by_id == supervisor.id
    assert closed.closed_at == console_env.clock()
    assert closed.note == "Vatandaş arandı, ekip yeniden gönderildi."
    notes = db.scalars(
        select(TicketEvent.note).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == TimelineAction.NOTE
        )
    ).all()
    assert "Anket takibi kapatıldı: Vatandaş arandı, ekip yeniden gönderildi." in notes
    page = client.get("/follow-ups").text
    assert f"Anket takibi #{row.id} kapatıldı." in page  # the flash message
    assert f'id="follow-up-{row.id}"' not in _open_rows(page)
    # "Recently closed" shows it with who closed it and the note.
    with_closed = client.get("/follow-ups?kapali=1").text
    closed_table = with_closed.split('id="follow-ups-closed"', 1)[1]
    assert f'id="follow-up-{row.id}"' in closed_table
    assert supervisor.full_name in closed_table and "ekip yeniden gönderildi" in closed_table
    assert "SMS yanıtı" in closed_table
    # Closing again changes nothing (first close wins).
    again = client.post(url, data={"csrf_token": csrf(client), "note": "ikinci not", "kapali": "1"})
    assert again.status_code == 302 and again.location == "/follow-ups?kapali=1"
    db.expire_all()
    assert db.get(SurveyFollowUp, row.id).note == closed.note  # type: ignore[union-attr]


def test_agents_are_refused_and_liaisons_cannot_close(console_env: ConsoleEnv) -> None:
    _ticket, row = _low_score(console_env)
    agent = console_env.login(Role.AGENT)
    assert agent.get("/follow-ups").status_code == 403
    token = csrf(agent)
    assert (
        agent.post(
            f"/follow-ups/{row.id}/close", data={"csrf_token": token, "note": "x"}
        ).status_code
        == 403
    )
    liaison = console_env.login(Role.DEPARTMENT_LIAISON)
    closing = liaison.post(
        f"/follow-ups/{row.id}/close", data={"csrf_token": csrf(liaison), "note": "x"}
    )
    assert closing.status_code == 403
    console_env.db.expire_all()
    assert console_env.db.get(SurveyFollowUp, row.id).status == "open"  # type: ignore[union-attr]


def test_closing_requires_the_csrf_token(console_env: ConsoleEnv) -> None:
    _ticket, row = _low_score(console_env)
    client = console_env.login(Role.SUPERVISOR)
    response = client.post(f"/follow-ups/{row.id}/close", data={"note": "Arandı."})
    assert response.status_code == 400
    bad = client.post(f"/follow-ups/{row.id}/close", data={"note": "Arandı.", "csrf_token": "x"})
    assert bad.status_code == 400
    console_env.db.expire_all()
    assert console_env.db.get(SurveyFollowUp, row.id).status == "open"  # type: ignore[union-attr]


def test_department_filter_and_liaisons_see_their_own(console_env: ConsoleEnv) -> None:
    own_ticket, own = _low_score(console_env)  # Fen İşleri, the first liaison's department
    other_ticket, other = _low_score(console_env, type_code="gurultu")  # Zabıta
    liaison = console_env.user(Role.DEPARTMENT_LIAISON)
    assert own_ticket.department_id == liaison.department_id != other_ticket.department_id
    client = console_env.login(Role.SUPERVISOR)
    both = _open_rows(client.get("/follow-ups").text)
    assert f'id="follow-up-{own.id}"' in both and f'id="follow-up-{other.id}"' in both
    filtered = client.get(f"/follow-ups?birim={other_ticket.department_id}").text
    assert f'id="follow-up-{other.id}"' in _open_rows(filtered)
    assert f'id="follow-up-{own.id}"' not in _open_rows(filtered)
    # A liaison sees their own department's only, whatever they ask for, with no picker.
    mine = console_env.login(Role.DEPARTMENT_LIAISON)
    page = mine.get(f"/follow-ups?birim={other_ticket.department_id}")
    assert page.status_code == 200
    rows = _open_rows(page.text)
    assert f'id="follow-up-{own.id}"' in rows and f'id="follow-up-{other.id}"' not in rows
    assert 'name="birim"' not in page.text and "/close" not in rows
