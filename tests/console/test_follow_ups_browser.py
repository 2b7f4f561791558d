"""The survey follow-up page in a real browser (issue 6 item 3; R5.2).

The console runs as ``acikkapi console run`` (a subprocess) on a fresh SQLite instance with
the demo data (``acikkapi db upgrade`` + ``acikkapi demo load``), as in
test_campaigns_browser.py. Two low survey scores are produced through the real services
(services.surveys.record_answer + services.survey_outcomes.apply_survey_answers); the
supervisor closes one with a note and looks at the recently closed ones. Debian's Chromium
via Playwright; the screenshot goes to test-artifacts/screenshots/ and docs/screenshots/
(36). Every wait is bounded; nothing asserts wall-clock speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.settings import Settings
from models import Channel, Role, StaffUser, SurveyFollowUp
from services.actors import system_actor
from services.intake import open_ticket
from services.intake_request import IntakeRequest
from services.survey_outcomes import apply_survey_answers
from services.surveys import ensure_default_questions, record_answer
from services.ticket_workflow import resolve_ticket
from tests.console.browser import logged_in_page, shot, start_console


@dataclass
class Live:
    base: str
    database_url: str
    supervisor: str  # user name
    follow_ups: list[int]  # open low-score follow-ups: IVR score 1, SMS score 2

    def session(self) -> Session:
        return Session(make_engine(self.database_url), expire_on_commit=False)


def _seed(settings: Settings) -> tuple[str, list[int]]:
    """Two resolved tickets whose citizens gave low scores (one by keypad, one by SMS)."""
    now = datetime.now(UTC)
    with Session(make_engine(settings.database_url), expire_on_commit=False) as db:
        supervisor = db.scalars(
            select(StaffUser).where(StaffUser.role == Role.SUPERVISOR).order_by(StaffUser.id)
        ).first()
        assert supervisor is not None
        ensure_default_questions(db)
        robot = system_actor(db, "follow-up-screens", now)
        follow_ups = []
        for n, (hood, type_code, tc, score, channel) in enumerate(
            (
                ("Yıldıztepe", "yol_bozuklugu", "41339237316", 1, "ivr"),
                ("Kuzeykent", "gurultu", "82058652264", 2, "sms"),
            )
        ):
            ticket = open_ticket(
                db,
                robot,
                now - timedelta(days=5),
                IntakeRequest(
                    channel=Channel.PHONE,
                    ticket_type_code=type_code,
                    description="Anket takibi için örnek başvuru.",
                    tc_number=tc,
                    neighbourhood=hood,
                ),
            ).ticket
            resolve_ticket(db, supervisor, now - timedelta(days=2), ticket, "İş tamamlandı.")
            key = f"browser-follow-up-{ticket.id}"
            for code, digit in (("satisfaction", score), ("solved", 1)):
                record_answer(
                    db,
                    now - timedelta(hours=3 - n),
                    call_id=key,
                    question_code=code,
                    digit=digit,
                    ticket_id=ticket.id,
                    citizen_id=ticket.citizen_id,
                    channel=channel,
                )
            outcome = apply_survey_answers(db, now=now - timedelta(hours=3 - n), survey_key=key)
            assert outcome.follow_up_id is not None
            follow_ups.append(outcome.follow_up_id)
        db.commit()
        return supervisor.username, follow_ups


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with start_console(
        tmp_path_factory.mktemp("follow-ups"), secret="follow-up-screens-secret", seed=_seed
    ) as console:
        supervisor, follow_ups = console.seeded
        yield Live(console.base, console.database_url, supervisor, follow_ups)


@pytest.fixture(scope="module")
def page(live: Live) -> Iterator[Any]:
    with logged_in_page(live.base, live.supervisor) as tab:
        yield tab


def test_supervisor_closes_a_low_score_follow_up(page: Any, live: Live) -> None:
    first, second = live.follow_ups
    page.click("nav >> text=Anket takipleri")  # the menu entry
    page.wait_for_selector(f"#follow-up-{first}")
    table = page.inner_text("#follow-ups")
    assert "Yıldıztepe" in table and "Kuzeykent" in table
    assert "telefonda tuşlama" in table and "SMS yanıtı" in table
    assert "41*******16" in table and "41339237316" not in page.content()
    page.fill(f"#note-{first}", "Vatandaş arandı; asfalt ekibi yarın yeniden gidecek.")
    page.click(f"#follow-up-{first} button[type=submit]")
    page.wait_for_selector(".flash-success")
    assert f"Anket takibi #{first} kapatıldı." in page.inner_text(".flashes")
    assert page.locator(f"#follow-ups #follow-up-{first}").count() == 0
    assert page.locator(f"#follow-ups #follow-up-{second}").count() == 1
    with live.session() as db:
        row = db.get(SurveyFollowUp, first)
        assert row is not None and row.status == "done" and row.note is not None
    page.check("#kapali")
    page.click("#follow-up-filters button[type=submit]")
    page.wait_for_selector(f"#follow-ups-closed #follow-up-{first}")
    assert "asfalt ekibi" in page.inner_text("#follow-ups-closed")
    shot(page, "36-survey-follow-ups")
    assert page.csp_errors == []
