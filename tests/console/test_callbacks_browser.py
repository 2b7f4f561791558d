"""The callback list in a real browser (R5.3): an agent signs in, opens "Geri aramalar" from
the menu, presses "Şimdi ara" on a callback that is due later and closes another with a note.

The console runs as ``acikkapi console run`` (a subprocess, waitress) on a fresh SQLite
instance with the demo data (``acikkapi db upgrade`` + ``acikkapi demo load``: every demo
user's password is ``acikkapi-demo``) and two callback tasks written through the services.
Debian's Chromium via Playwright; the screenshot goes to test-artifacts/screenshots/ and
docs/screenshots/ (40-callbacks). Every wait is bounded; nothing asserts wall-clock speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.settings import Settings
from models import CallbackStatus, CallbackTask, Role, StaffUser
from services.callbacks import request_callback
from tests.console.browser import logged_in_page, shot, start_console


@dataclass
class Live:
    base: str
    database_url: str
    agent: str
    later: int  # due in three hours
    wrong: int  # to be closed

    def task(self, task_id: int) -> CallbackTask:
        engine = make_engine(self.database_url)
        try:
            with Session(engine) as db:
                task = db.get(CallbackTask, task_id)
                assert task is not None
                db.expunge(task)
                return task
        finally:
            engine.dispose()


def _seed(settings: Settings) -> tuple[str, int, int]:
    now = datetime.now(UTC)
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as db:
            agent = db.scalars(
                select(StaffUser).where(StaffUser.role == Role.AGENT).order_by(StaffUser.id)
            ).first()
            assert agent is not None
            later = request_callback(
                db,
                now,
                call_id="browser-cb-1",
                raw_phone="0505 361 88 77",
                reason="out_of_hours",
                language="tr",
            )
            later.due_at = now + timedelta(hours=3)
            wrong = request_callback(
                db,
                now - timedelta(minutes=12),
                call_id="browser-cb-2",
                raw_phone="0533 765 43 21",
                reason="abandoned",
                language="tr",
            )
            db.commit()
            return agent.username, later.id, wrong.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with start_console(
        tmp_path_factory.mktemp("callbacks"), secret="callback-screens-secret", seed=_seed
    ) as console:
        yield Live(console.base, console.database_url, *console.seeded)


def test_agent_calls_now_and_closes_from_the_list(live: Live) -> None:
    with logged_in_page(live.base, live.agent) as page:
        page.click("nav >> text=Geri aramalar")
        page.wait_for_selector("h1:has-text('Geri arama listesi')")
        later = page.locator(f"#callback-{live.later}")
        wrong = page.locator(f"#callback-{live.wrong}")
        assert "0505 *** ** 77" in later.inner_text()  # masked
        assert "0533 *** ** 21" in wrong.inner_text()
        assert "mesai dışı arama" in later.inner_text()
        shot(page, "40-callbacks")
        # "Şimdi ara": the callback is due now
        later.get_by_role("button", name=f"Geri arama #{live.later}: şimdi ara").click()
        page.wait_for_selector(f"text=Geri arama #{live.later} hemen aranacak.")
        due = live.task(live.later).due_at
        assert due <= datetime.now(UTC) + timedelta(minutes=1)
        # "Kapat/İptal" needs a note: the browser refuses an empty one (required field)
        wrong = page.locator(f"#callback-{live.wrong}")
        wrong.get_by_role("button", name=f"Geri arama #{live.wrong}: kapat").click()
        assert live.task(live.wrong).status is CallbackStatus.PENDING
        wrong.get_by_label("Kapatma notu").fill("Yanlış numara")
        wrong.get_by_role("button", name=f"Geri arama #{live.wrong}: kapat").click()
        page.wait_for_selector(f"text=Geri arama #{live.wrong} kapatıldı.")
        assert page.locator(f"#callback-{live.wrong}").count() == 0
        closed = live.task(live.wrong)
        assert closed.status is CallbackStatus.CANCELLED and "Yanlış numara" in (closed.note or "")
        page.get_by_role("link", name="Kapatıldı", exact=True).click()
        page.wait_for_selector(f"#callback-{live.wrong}")
        assert page.csp_errors == []
