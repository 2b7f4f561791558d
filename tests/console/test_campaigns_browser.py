"""Campaign pages in a real browser: live progress bars move as attempts finish (issue 6).

The console runs as ``acikkapi console run`` (a subprocess) on a fresh SQLite instance with
the demo data (``acikkapi db upgrade`` + ``acikkapi demo load``), as in
test_screens_browser.py. The dialer is driven from the test through the real services
(``services.dialer.claim_due_attempts`` / ``record_outcome`` on the same database), not
through Asterisk: the page only polls ``/campaigns/progress`` every 2 s, so what is checked
here is that the bars and counts follow the database. Debian's Chromium via Playwright;
screenshots go to test-artifacts/screenshots/ and docs/screenshots/ (30-34). Every wait is
bounded; nothing asserts wall-clock speed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.settings import Settings
from models import (
    AttemptStatus,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    Channel,
    Role,
    StaffUser,
)
from services.actors import system_actor
from services.campaign_targets import TargetRow, add_targets
from services.campaigns import CampaignSettings, create_campaign, start_campaign
from services.dialer import claim_due_attempts, record_outcome
from services.intake import open_ticket
from services.intake_request import IntakeRequest
from services.surveys import ensure_default_questions, record_answer
from tests.console.browser import logged_in_page, shot, start_console


@dataclass
class Live:
    base: str
    database_url: str
    supervisor: str  # user name
    seeded_id: int  # a running campaign of 6 targets

    def session(self) -> Session:
        return Session(make_engine(self.database_url), expire_on_commit=False)


def _seed(settings: Settings) -> tuple[str, int]:
    """A running campaign of six numbers, and survey answers on resolved tickets."""
    now = datetime.now(UTC)
    with Session(make_engine(settings.database_url), expire_on_commit=False) as db:
        supervisor = db.scalars(
            select(StaffUser).where(StaffUser.role == Role.SUPERVISOR).order_by(StaffUser.id)
        ).first()
        assert supervisor is not None
        campaign = create_campaign(
            db,
            actor=supervisor,
            now=now,
            settings=CampaignSettings(
                name="Kuzeykent mahalle toplantısı daveti",
                kind=CampaignKind.EVENT_INVITATION,
                window_start=clock(0),
                window_end=clock(23, 59),
                max_concurrent=3,
                calls_per_second=20,
                message_tr="Perşembe 19:00'da mahalle toplantısına davetlisiniz.",
                window_days="1234567",
                skip_holidays=False,
            ),
            target_source=CampaignTargetSource.CSV,
            target_criteria={"file": "kuzeykent.csv", "rows": 6},
        )
        add_targets(
            db,
            now=now,
            campaign_id=campaign.id,
            rows=[TargetRow(phone=f"0532 610 00 0{i}", name=f"Komşu {i}") for i in range(6)],
        )
        start_campaign(db, actor=supervisor, now=now, campaign_id=campaign.id)
        # Survey answers for the results page: two resolved tickets, before and after a change.
        ensure_default_questions(db)
        robot = system_actor(db, "campaign-screens", now)
        for n, (hood, type_code, tc) in enumerate(
            (
                ("Yıldıztepe", "yol_bozuklugu", "41339237316"),
                ("Kuzeykent", "gurultu", "82058652264"),
            )
        ):
            ticket = open_ticket(
                db,
                robot,
                now - timedelta(days=40),
                IntakeRequest(
                    channel=Channel.PHONE,
                    ticket_type_code=type_code,
                    description="Anket için örnek başvuru.",
                    tc_number=tc,
                    neighbourhood=hood,
                ),
            ).ticket
            for days, score, solved in ((30, 2 + n, 2), (20, 3, 1), (10, 4 + n, 1), (3, 5, 1)):
                call = f"seed-{ticket.id}-{days}"
                for code, digit in (("satisfaction", score), ("solved", solved), ("courtesy", 4)):
                    record_answer(
                        db,
                        now - timedelta(days=days),
                        call_id=call,
                        question_code=code,
                        digit=digit,
                        ticket_id=ticket.id,
                        citizen_id=None,
                    )
        db.commit()
        return supervisor.username, campaign.id


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with start_console(
        tmp_path_factory.mktemp("campaigns"), secret="campaign-screens-secret", seed=_seed
    ) as console:
        supervisor, seeded = console.seeded
        yield Live(console.base, console.database_url, supervisor, seeded)


@pytest.fixture(scope="module")
def page(live: Live) -> Iterator[Any]:
    with logged_in_page(live.base, live.supervisor) as tab:
        yield tab


def _finish(live: Live, campaign_id: int, outcomes: list[AttemptStatus]) -> int:
    """Claim due attempts through the real dialer and record ``outcomes`` in order for those
    of ``campaign_id`` (any other campaign's claim: no answer); return how many of
    ``campaign_id`` were recorded. Pacing may hand out fewer claims than asked in one
    second: claiming is retried for a bounded time."""
    done = 0
    deadline = time.monotonic() + 20
    with live.session() as db:
        while done < len(outcomes) and time.monotonic() < deadline:
            orders = claim_due_attempts(db, now=datetime.now(UTC), worker="browser-test")
            db.commit()
            for order in orders:
                outcome = AttemptStatus.NO_ANSWER
                if order.campaign_id == campaign_id and done < len(outcomes):
                    outcome = outcomes[done]
                    done += 1
                record_outcome(
                    db, now=datetime.now(UTC), attempt_id=order.attempt_id, outcome=outcome
                )
            db.commit()
            if not orders:
                time.sleep(0.2)  # the next pacing slot
    return done


def _bar(page: Any, campaign_id: int) -> int:
    return int(page.eval_on_selector(f"#campaign-progress-{campaign_id}", "el => el.value"))


def test_progress_bar_moves_as_attempts_finish(page: Any, live: Live) -> None:
    cid = live.seeded_id
    page.goto(f"{live.base}/campaigns")
    row = page.locator(f"#campaign-{cid}")
    row.wait_for()
    assert _bar(page, cid) == 0 and "sürüyor" in row.inner_text()
    # Three answered calls: the list page's bar follows within a couple of polls.
    assert _finish(live, cid, [AttemptStatus.ANSWERED] * 3) == 3
    # (<progress>.value reflects its attribute; wait_for_function would need eval: CSP)
    page.wait_for_selector(f'#campaign-progress-{cid}[value="3"]')
    assert "50" in row.locator('[data-field="percent"]').inner_text()
    shot(page, "30-campaigns")
    # Busy and unanswered targets are retried later, not finished: the bar does not move.
    assert _finish(live, cid, [AttemptStatus.BUSY, AttemptStatus.NO_ANSWER]) == 2
    page.goto(f"{live.base}/campaigns/{cid}")
    page.wait_for_selector("#outcome-counts")
    assert page.inner_text('[data-count="by_outcome.busy"]') == "1"
    assert page.inner_text('[data-count="by_outcome.answered"]') == "3"
    assert _bar(page, cid) == 3
    shot(page, "32-campaign-detail")
    assert page.csp_errors == []


def test_create_start_and_watch_a_group_campaign(page: Any, live: Live) -> None:
    """The supervisor creates a youth campaign through the form, starts it, and watches it
    finish: the page reloads itself when the status changes."""
    page.goto(f"{live.base}/campaigns/new")
    page.fill("#name", "Gençlik merkezi tanıtım araması")
    page.select_option("#kind", "special_group")
    assert page.is_visible("#period_start")  # resolved tickets: the default source
    page.check('input[name="source"][value="citizen_group"]')
    assert page.is_hidden("#period_start") and page.is_visible("#group")
    page.select_option("#group", "youth")
    for day in ("6", "7"):
        page.check(f'input[name="window_days"][value="{day}"]')
    page.fill("#window_start", "00:00")
    page.fill("#window_end", "23:59")
    page.uncheck("#skip_holidays")
    page.fill("#max_concurrent", "5")
    page.fill("#calls_per_second", "5")
    page.fill("#message_tr", "Yeni gençlik merkezimizin açılışına davetlisiniz.")
    shot(page, "31-campaign-new")
    page.click("#campaign-submit")
    page.wait_for_selector(".flash-success")
    assert "Kampanya taslak olarak oluşturuldu" in page.inner_text(".flashes")
    cid = int(page.url.rstrip("/").rsplit("/", 1)[1])
    with live.session() as db:
        campaign = db.get(Campaign, cid)
        assert campaign is not None and campaign.status is CampaignStatus.DRAFT
        total = len(pending_targets(db, cid))
    assert total > 0
    page.click("#campaign-start")
    page.wait_for_selector("#campaign-pause")
    assert "Kampanya başlatıldı." in page.inner_text(".flashes")
    assert _finish(live, cid, [AttemptStatus.ANSWERED] * total) == total
    # Finished: the status changes, the page reloads with no control left.
    page.wait_for_selector(".campaign-status-finished")
    assert _bar(page, cid) == total
    assert page.locator("#campaign-pause").count() == 0
    assert page.csp_errors == []


def pending_targets(db: Session, campaign_id: int) -> list[Any]:
    return list(
        db.scalars(
            select(CampaignTarget).where(
                CampaignTarget.campaign_id == campaign_id,
                CampaignTarget.status == CampaignTargetStatus.PENDING,
            )
        )
    )


def test_do_not_call_and_survey_results(page: Any, live: Live) -> None:
    page.goto(f"{live.base}/campaigns/do-not-call")
    page.fill("#phone", "0532 999 88 77")
    page.fill("#reason", "Vatandaş aranmak istemediğini bildirdi")
    page.click("#dnc-add button[type=submit]")
    page.wait_for_selector(".flash-success")
    assert "0532 *** ** 77" in page.inner_text("#dnc-list")
    shot(page, "33-do-not-call")
    pivot = (datetime.now(UTC) - timedelta(days=15)).date().isoformat()
    page.goto(f"{live.base}/campaigns/surveys?pivot={pivot}&days=30&period=week")
    page.wait_for_selector("#before-after")
    assert "Yıldıztepe" in page.inner_text("#survey-neighbourhoods")
    assert "puan" in page.inner_text("#before-after")
    shot(page, "34-survey-results")
    assert page.csp_errors == []
