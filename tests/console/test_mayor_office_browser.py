"""The mayor's weekly call list (R5.4) in a real browser.

The console runs as ``acikkapi console run`` (a subprocess, waitress) on a fresh SQLite
instance with the demo data (password ``acikkapi-demo``) and four tickets of the past week;
the week's list is drawn and published by the job's own code (``jobs.mayor.run_weekly``).
Debian's Chromium, driven by Playwright, signs in as the mayor's office, records a call
with a follow-up ticket, opens the PDF link, and the supervisor opens the report.
Screenshots go to test-artifacts/screenshots/ and docs/screenshots/. Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.db import make_engine
from acikkapi.settings import Settings
from jobs.mayor import draw_moment, run_weekly
from models import Channel, MayorCallEntry, MayorCallResult, Role, StaffUser, Ticket
from services.actors import system_actor
from services.intake import open_ticket
from services.mayor_calls import week_start_of
from tests.console.browser import DESKTOP, launch_chromium, shot, sign_in, start_console
from tests.factories import mobile, request, valid_tc

HOODS = ["Yıldıztepe", "Çamlıbel", "Kuzeykent", "Ihlamurdere"]
TYPES = ["yol_bozuklugu", "cevre_temizligi", "gurultu", "park_bakimi"]


@dataclass
class Site:
    base: str
    database_url: str
    users: dict[Role, StaffUser]


def _seed(settings: Settings) -> dict[Role, StaffUser]:
    """Four tickets of last week, then this week's list drawn and published as the job
    does it (the job's moment is this week's, whatever the real date)."""
    engine = make_engine(settings.database_url)
    real_now = datetime.now(UTC)
    last_week = datetime.combine(week_start_of(real_now), datetime.min.time(), tzinfo=UTC)
    with Session(engine, expire_on_commit=False) as db:
        robot = system_actor(db, "mayor-screens", real_now)
        for i in range(4):
            when = last_week - timedelta(days=6 - i, hours=-10)
            values = {
                "tc_number": valid_tc(5100 + i),
                "phone": mobile(5100 + i),
                "first_name": "Şükrü",
                "last_name": f"Çağlar{i}",
                "neighbourhood": HOODS[i],
                "ticket_type_code": TYPES[i],
                "received_at": when,
                "description": "Sokak lambaları akşamları yanmıyor, çocuklar karanlıkta yürüyor.",
            }
            open_ticket(db, robot, when, request(Channel.PHONE, **values))
        users = {
            role: db.scalars(
                select(StaffUser).where(StaffUser.role == role).order_by(StaffUser.id)
            ).first()
            for role in (Role.MAYORS_OFFICE, Role.SUPERVISOR)
        }
        db.commit()
    moment = max(real_now, draw_moment(real_now, settings) + timedelta(minutes=1))
    done = run_weekly(sessionmaker(bind=engine), settings, moment)
    assert done["drawn"] and done["entries"] == 4, done
    engine.dispose()
    assert all(u is not None for u in users.values())
    return {role: u for role, u in users.items() if u is not None}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with start_console(
        tmp_path_factory.mktemp("mayor-screens"),
        secret="mayor-screens-secret",
        seed=_seed,
        redis_db=13,
    ) as console:
        yield Site(console.base, console.database_url, console.seeded)


@pytest.fixture(scope="module")
def chromium(site: Site) -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


def _page(chromium: Any, site: Site, role: Role) -> Any:
    return sign_in(chromium, site.base, site.users[role].username, **DESKTOP)


def test_the_office_records_a_call_with_a_follow_up(chromium: Any, site: Site) -> None:
    page = _page(chromium, site, Role.MAYORS_OFFICE)
    page.click("nav >> text=Başkanlık arama listesi")
    page.wait_for_selector("#entry-1")
    assert page.locator(".mayor-entries > li").count() == 4
    assert "Şükrü Çağlar" in page.inner_text("#entry-1")
    shot(page, "45-mayor-call-list")
    page.select_option("#record-1 select[name=result]", "reached")
    page.fill("#record-1 textarea[name=notes]", "Başkanımıza teşekkürlerini iletti.")
    page.fill("#record-1 textarea[name=follow_up]", "Parktaki oyun grubu kırık, onarılsın.")
    page.click("#record-1-submit")
    page.wait_for_selector(".flash-success")
    assert "Takip başvurusu açıldı" in page.inner_text(".flashes")
    assert "Ulaşıldı" in page.inner_text("#entry-1-result")
    href = page.get_attribute("#mayor-pdf", "href")
    pdf = page.request.get(f"{site.base}{href}")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert page.csp_errors == []

    with Session(make_engine(site.database_url)) as db:
        entry = db.scalars(select(MayorCallEntry).where(MayorCallEntry.position == 1)).one()
        assert entry.result is MayorCallResult.REACHED
        follow = db.get(Ticket, entry.follow_up_ticket_id)
        assert follow is not None and follow.channel is Channel.MAYORS_OFFICE

    boss = _page(chromium, site, Role.SUPERVISOR)
    boss.goto(f"{site.base}/mayor/report?list={entry.list_id}")
    boss.wait_for_selector("#report-summary")
    assert "1 / 4 arama tamamlandı" in boss.inner_text("#report-summary")
    shot(boss, "46-mayor-call-report")
    assert boss.csp_errors == []
