"""The supervisor's campaign pages (issue 6 item 1; R5.1–R5.6, R8.2) on SQLite and PostgreSQL.

Campaigns are created through the form with each target source (resolved tickets of a
period, a citizen group, a CSV file with bad lines), started, paused and stopped with POST +
CSRF; progress comes from the JSON endpoint the page polls while attempts finish through
the real dialer (services.dialer, no Asterisk here). Agents are refused; the advisor reads
survey results only.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select

from models import (
    AttemptStatus,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    DoNotCallNumber,
    Role,
)
from services.campaign_targets import TargetRow, add_targets, targets_from_citizen_group
from services.campaigns import CampaignSettings, create_campaign
from services.dialer import claim_due_attempts, record_outcome
from services.surveys import ensure_default_questions, record_answer
from services.ticket_workflow import resolve_ticket
from tests.conftest import ISTANBUL
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import sample_ticket

LOCAL_DAY = "2026-11-24"  # the console clock's day (FIXED_NOW, a Tuesday, 10:00 Istanbul)


def _form(client: FlaskClient, **fields: object) -> dict[str, object]:
    """A complete new-campaign form (the defaults the page shows), overridden by ``fields``."""
    data: dict[str, object] = {
        "csrf_token": csrf(client),
        "name": "Kasım memnuniyet anketi",
        "kind": "survey",
        "default_language": "tr",
        "source": "resolved_tickets",
        "period_start": LOCAL_DAY,
        "period_end": LOCAL_DAY,
        "department_id": "",
        "neighbourhood_id": "",
        "group": "elderly",
        "group_neighbourhood_id": "",
        "window_days": ["1", "2", "3", "4", "5"],
        "window_start": "10:00",
        "window_end": "19:00",
        "skip_holidays": "y",
        "max_attempts": "3",
        "retry_spacing_minutes": "60",
        "max_concurrent": "2",
        "calls_per_second": "1,5",
    }
    data.update(fields)
    return data


def _campaign(env: ConsoleEnv, name: str) -> Campaign:
    env.db.expire_all()
    campaign = env.db.scalar(select(Campaign).where(Campaign.name == name))
    assert campaign is not None
    return campaign


def _targets(env: ConsoleEnv, campaign_id: int) -> list[CampaignTarget]:
    return list(
        env.db.scalars(
            select(CampaignTarget)
            .where(CampaignTarget.campaign_id == campaign_id)
            .order_by(CampaignTarget.id)
        )
    )


def test_agents_are_refused_and_the_advisor_reads_survey_results_only(
    console_env: ConsoleEnv,
) -> None:
    agent = console_env.login(Role.AGENT)
    for url in ("/campaigns", "/campaigns/new", "/campaigns/do-not-call", "/campaigns/surveys"):
        response = agent.get(url, headers={"Accept": "application/json"})
        assert response.status_code == 403, url
        assert response.get_json()["code"] == "role_not_permitted"
    refused = agent.post(
        "/campaigns/new", data=_form(agent), headers={"Accept": "application/json"}
    )
    assert refused.status_code == 403
    advisor = console_env.login(Role.ADVISOR)
    assert advisor.get("/campaigns/surveys").status_code == 200
    assert advisor.get("/campaigns").status_code == 403
    supervisor = console_env.login(Role.SUPERVISOR)
    page = supervisor.get("/campaigns").text
    assert "Yeni kampanya" in page and 'href="/campaigns/surveys"' in page


def test_new_campaign_form_offers_every_kind_and_group_in_turkish(
    console_env: ConsoleEnv,
) -> None:
    page = console_env.login(Role.SUPERVISOR).get("/campaigns/new").text
    for text in (
        "Memnuniyet anketi (çözüm sonrası)",
        "Geri arama",
        "Çözüm bilgilendirmesi",
        "Gecikme bildirimi",
        "Etkinlik / mahalle toplantısı daveti",
        "Özel gruplarla temas",
        "Veri toplama ve tamamlama",
        "Yaşlılar",
        "Engelliler",
        "Yalnız yaşayanlar",
        "Sağlık taraması olan hastalar",
        "Gençler",
        "Ev hanımları",
        "Dönem içinde çözülen başvurular",
        "CSV dosyası",
        "Resmî tatillerde arama yapma",
    ):
        assert text in page, text
    assert 'name="csrf_token"' in page and 'enctype="multipart/form-data"' in page


def test_create_from_resolved_tickets_of_a_period(console_env: ConsoleEnv) -> None:
    """R5.1/R5.2: the citizens of tickets resolved in the period are the targets."""
    db, now = console_env.db, console_env.clock()
    supervisor_user = console_env.user(Role.SUPERVISOR)
    ticket = sample_ticket(db, now - timedelta(hours=1))
    resolve_ticket(db, supervisor_user, now - timedelta(minutes=30), ticket, "Çukur kapatıldı.")
    db.flush()
    client = console_env.login(Role.SUPERVISOR)
    response = client.post("/campaigns/new", data=_form(client))
    assert response.status_code == 302, response.text[:2000]
    campaign = _campaign(console_env, "Kasım memnuniyet anketi")
    assert response.location == f"/campaigns/{campaign.id}"
    assert campaign.status is CampaignStatus.DRAFT
    assert campaign.target_source is CampaignTargetSource.RESOLVED_TICKETS
    assert campaign.target_criteria["period_start"] == LOCAL_DAY
    assert campaign.window_days == "12345" and campaign.calls_per_second == 1.5
    [target] = _targets(console_env, campaign.id)
    assert target.ticket_id == ticket.id and target.status is CampaignTargetStatus.PENDING
    page = client.get(response.location).text
    assert "Kampanya taslak olarak oluşturuldu: 1 kişi eklendi" in page
    assert "0505 *** ** 77" in page and "361 88" not in page  # masked
    assert ticket.reference_code and ticket.reference_code in page
    # A period with no resolved ticket creates nothing and says why.
    empty = client.post(
        "/campaigns/new",
        data=_form(client, name="Boş dönem", period_start="2026-01-01", period_end="2026-01-02"),
    )
    assert empty.status_code == 400
    assert "aranabilecek kimse yok" in empty.text
    assert console_env.db.scalar(select(Campaign).where(Campaign.name == "Boş dönem")) is None


def test_create_from_a_citizen_group(console_env: ConsoleEnv) -> None:
    """R5.5: special groups (elderly here) from the citizens' records."""
    client = console_env.login(Role.SUPERVISOR)
    expected = targets_from_citizen_group(console_env.db, group="elderly")
    assert expected  # the demo data has elderly citizens with phones
    response = client.post(
        "/campaigns/new",
        data=_form(
            client,
            name="Yaşlılara bayram ziyareti daveti",
            kind="special_group",
            source="citizen_group",
            group="elderly",
            message_tr="Belediyemiz bayramda sizi ziyaret etmek istiyor.",
        ),
    )
    assert response.status_code == 302, response.text[:2000]
    campaign = _campaign(console_env, "Yaşlılara bayram ziyareti daveti")
    assert campaign.kind is CampaignKind.SPECIAL_GROUP
    assert campaign.target_criteria == {"group": "elderly", "neighbourhood_id": None}
    assert {t.citizen_id for t in _targets(console_env, campaign.id)} == {
        r.citizen_id for r in expected
    }
    page = client.get(response.location).text
    assert "Yaşlılar" in page and "Belediyemiz bayramda" in page


def test_csv_upload_shows_bad_lines_and_can_skip_them(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    csv_text = (
        "telefon;ad;dil\n"
        "0532 111 22 33;Ali Kaya;tr\n"
        ";Boş Numara;tr\n"
        "0532 111 22 44;Veli Can;almanca\n"
        "12345;Kısa Numara;en\n"
        "0532 111 22 55;Jane Doe;en\n"
    )

    def upload(**fields: object) -> dict[str, object]:
        return _form(
            client,
            name="Etkinlik daveti",
            kind="event_invitation",
            source="csv",
            csv_file=(io.BytesIO(csv_text.encode("utf-8")), "davet.csv"),
            **fields,
        )

    refused = client.post("/campaigns/new", data=upload(), content_type="multipart/form-data")
    assert refused.status_code == 400
    assert 'id="csv-errors"' in refused.text
    assert "Satır 3" in refused.text or ">3<" in refused.text
    assert "almanca" in refused.text
    assert "Dosyada 2 hatalı satır var" in refused.text
    assert console_env.db.scalar(select(Campaign).where(Campaign.name == "Etkinlik daveti")) is None

    created = client.post(
        "/campaigns/new", data=upload(skip_bad_lines="y"), content_type="multipart/form-data"
    )
    assert created.status_code == 302, created.text[:2000]
    campaign = _campaign(console_env, "Etkinlik daveti")
    assert campaign.target_criteria["file"] == "davet.csv"
    targets = _targets(console_env, campaign.id)
    assert [t.display_name for t in targets] == ["Ali Kaya", "Jane Doe"]
    assert targets[1].language.value == "en"
    page = client.get(created.location).text
    assert "2 kişi eklendi" in page
    assert "Satır 3" in page and "Satır 4" in page and "Satır 5" in page  # every dropped line


def test_bad_settings_are_shown_on_their_fields(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    upside_down = client.post(
        "/campaigns/new", data=_form(client, window_start="19:00", window_end="10:00")
    )
    assert upside_down.status_code == 400
    assert "Arama saatinin başlangıcı bitişinden önce olmalı." in upside_down.text
    no_days = _form(client)
    del no_days["window_days"]
    assert "En az bir arama günü seçin." in client.post("/campaigns/new", data=no_days).text
    too_many = client.post("/campaigns/new", data=_form(client, max_attempts="11"))
    assert "En fazla deneme sayısı 1 ile 10 arasında olmalı." in too_many.text
    no_period = client.post("/campaigns/new", data=_form(client, period_end=""))
    assert "Dönemin başlangıç ve bitiş tarihini girin." in no_period.text
    assert (
        console_env.db.scalar(select(Campaign).where(Campaign.name == "Kasım memnuniyet anketi"))
        is None
    )


def _three_targets(env: ConsoleEnv, now: datetime) -> Campaign:
    campaign = create_campaign(
        env.db,
        actor=env.user(Role.SUPERVISOR),
        now=now,
        settings=CampaignSettings(
            name="Gecikme bildirimi", kind=CampaignKind.DELAY_NOTICE, calls_per_second=10
        ),
        target_source=CampaignTargetSource.CSV,
        target_criteria={"file": "liste.csv"},
    )
    add_targets(
        env.db,
        now=now,
        campaign_id=campaign.id,
        rows=[TargetRow(phone=f"0532 700 00 0{i}", name=f"Kişi {i}") for i in range(3)],
    )
    env.db.flush()
    return campaign


def test_start_pause_stop_and_live_progress(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    campaign = _three_targets(console_env, now)
    client = console_env.login(Role.SUPERVISOR)
    token = csrf(client)
    url = f"/campaigns/{campaign.id}"

    def progress() -> dict[str, object]:
        body = client.get(f"/campaigns/progress?id={campaign.id}&id=999999").get_json()
        [one] = body["campaigns"]  # unknown ids are left out
        assert isinstance(one, dict)
        return one

    assert client.post(f"{url}/pause", data={"csrf_token": token}).status_code == 302
    assert "Bu kampanya duraklatılamaz" in client.get(url).text  # a draft cannot be paused
    assert client.post(f"{url}/start", data={"csrf_token": token}).status_code == 302
    db.expire_all()
    assert db.get(Campaign, campaign.id).status is CampaignStatus.RUNNING  # type: ignore[union-attr]
    first = progress()
    assert (first["status"], first["total"], first["final"], first["percent"]) == (
        "running",
        3,
        0,
        0,
    )
    assert first["live"] is True and first["status_label"] == "sürüyor"

    orders = claim_due_attempts(db, now=now, worker="test", limit=10)
    assert len(orders) == 2  # max_concurrent
    assert progress()["in_flight"] == 2
    record_outcome(db, now=now, attempt_id=orders[0].attempt_id, outcome=AttemptStatus.ANSWERED)
    record_outcome(db, now=now, attempt_id=orders[1].attempt_id, outcome=AttemptStatus.BUSY)
    db.flush()
    after = progress()
    assert (after["final"], after["percent"], after["in_flight"]) == (1, 33, 0)
    assert after["by_outcome"] == {"answered": 1, "busy": 1}
    assert after["by_status"] == {"done": 1, "pending": 2}
    page = client.get(url).text
    assert 'id="campaign-pause"' in page and 'id="campaign-stop"' in page
    assert 'value="1"' in page and 'max="3"' in page  # the progress bar, server-rendered

    paused = client.post(
        f"{url}/pause", data={"csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert paused.get_json() == {
        "ok": True,
        "status": "paused",
        "message": "Kampanya duraklatıldı; süren aramalar tamamlanacak.",
    }
    assert claim_due_attempts(db, now=now + timedelta(hours=2), worker="test") == []
    assert 'id="campaign-start"' in client.get(url).text  # "Sürdür"
    assert client.post(f"{url}/stop", data={"csrf_token": token}).status_code == 302
    stopped = progress()
    assert stopped["status"] == "stopped" and stopped["percent"] == 100
    assert stopped["live"] is False
    assert stopped["by_status"] == {"done": 1, "cancelled": 2}
    # Without the CSRF token nothing happens.
    assert client.post(f"{url}/start", data={}).status_code == 400


def test_do_not_call_list(console_env: ConsoleEnv) -> None:
    """R5.6: numbers never called; added numbers are skipped by new campaigns."""
    client = console_env.login(Role.SUPERVISOR)
    token = csrf(client)
    added = client.post(
        "/campaigns/do-not-call",
        data={"csrf_token": token, "phone": "0532 999 88 77", "reason": "Vatandaş istedi"},
        follow_redirects=True,
    )
    assert "0532 *** ** 77 aranmama listesine eklendi." in added.text
    assert "Vatandaş istedi" in added.text and "999 88" not in added.text.split("dnc-list")[1]
    assert console_env.db.get(DoNotCallNumber, "+905329998877") is not None
    bad = client.post(
        "/campaigns/do-not-call", data={"csrf_token": token, "phone": "12"}, follow_redirects=True
    )
    assert "flash-error" in bad.text
    removed = client.post(
        "/campaigns/do-not-call/remove",
        data={"csrf_token": token, "phone": "+905329998877"},
        follow_redirects=True,
    )
    assert "aranmama listesinden çıkarıldı" in removed.text
    console_env.db.expire_all()
    assert console_env.db.get(DoNotCallNumber, "+905329998877") is None
    again = client.post(
        "/campaigns/do-not-call/remove",
        data={"csrf_token": token, "phone": "+905329998877"},
        follow_redirects=True,
    )
    assert "Bu numara listede yoktu." in again.text


def test_survey_results_page_and_campaign_results(console_env: ConsoleEnv) -> None:
    """R5.2/R8.2: per department and neighbourhood, over time, before/after a change."""
    db, now = console_env.db, console_env.clock()
    ensure_default_questions(db)
    ticket = sample_ticket(db, now - timedelta(days=3))
    for call, when, score, solved in (
        ("c1", now - timedelta(days=20), 2, 2),
        ("c2", now - timedelta(days=2), 5, 1),
        ("c3", now - timedelta(days=1), 4, 1),
    ):
        for code, digit in (("satisfaction", score), ("solved", solved)):
            record_answer(
                db,
                when,
                call_id=call,
                question_code=code,
                digit=digit,
                ticket_id=ticket.id,
                citizen_id=None,
            )
    db.flush()
    assert ticket.department is not None
    client = console_env.login(Role.MAYORS_OFFICE)
    page = client.get("/campaigns/surveys?pivot=2026-11-14&days=30&period=week").text
    assert ticket.department.name_tr in page
    assert 'id="before-after"' in page
    assert "3.67" in page  # mean satisfaction of the three surveys
    assert "+2.50" in page  # before 2.00 (one survey), after 4.50 (two)
    assert "+100 puan" in page  # solved: 0 % before, 100 % after
    weekly = client.get("/campaigns/surveys?start=2026-11-01&end=2026-11-24&period=week").text
    assert "haftası" in weekly
    local = (now - timedelta(days=20)).astimezone(ISTANBUL).date()
    monday = local - timedelta(days=local.weekday())
    assert f"{monday:%d.%m.%Y} haftası" in weekly


def test_a_survey_campaign_page_shows_its_own_results(console_env: ConsoleEnv) -> None:
    """R5.2: the answers collected by the campaign's calls, per department."""
    db, now = console_env.db, console_env.clock()
    ensure_default_questions(db)
    ticket = sample_ticket(db, now)
    campaign = create_campaign(
        db,
        actor=console_env.user(Role.SUPERVISOR),
        now=now,
        settings=CampaignSettings(name="Anket kampanyası", kind=CampaignKind.SURVEY),
        target_source=CampaignTargetSource.RESOLVED_TICKETS,
        target_criteria={"period_start": LOCAL_DAY, "period_end": LOCAL_DAY},
    )
    add_targets(
        db,
        now=now,
        campaign_id=campaign.id,
        rows=[TargetRow(phone="0532 700 11 22", ticket_id=ticket.id)],
    )
    client = console_env.login(Role.SUPERVISOR)
    client.post(f"/campaigns/{campaign.id}/start", data={"csrf_token": csrf(client)})
    [order] = claim_due_attempts(db, now=now, worker="test")
    for code, digit in (("satisfaction", 4), ("solved", 1)):
        answer = record_answer(
            db,
            now,
            call_id=order.attempt_id,
            question_code=code,
            digit=digit,
            ticket_id=ticket.id,
            citizen_id=None,
        )
        answer.attempt_id = order.attempt_id
    record_outcome(
        db, now=now, attempt_id=order.attempt_id, outcome=AttemptStatus.ANSWERED, result="complete"
    )
    db.flush()
    page = client.get(f"/campaigns/{campaign.id}").text
    survey = page.split('id="campaign-survey"')[1].split("</section>")[0]
    assert "4.00" in survey and "%100" in survey
    assert ticket.department is not None and ticket.department.name_tr in survey
    assert "tamamlandı" in page  # the only target answered: the campaign finished
    assert "(complete)" in page
