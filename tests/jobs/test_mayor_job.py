"""The mayor's weekly list job (jobs.mayor, R5.4) on a committed SQLite database, called as
the scheduler's worker calls it (its own transactions), with time moved by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.db import make_engine
from acikkapi.migrate import upgrade
from acikkapi.settings import SettingsError, load_settings
from jobs.mayor import draw_moment, run_weekly
from jobs.schedule import periodic_jobs
from models import Channel, MayorCallList, Notification
from services.actors import system_actor
from services.intake import open_ticket
from tests.conftest import _seed
from tests.factories import at, mobile, request, valid_tc


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'mayor.db'}"
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    yield engine
    engine.dispose()


def test_draws_once_when_due_and_publishes(engine: Engine, tmp_path: Path) -> None:
    settings = load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path), "DATABASE_URL": "sqlite://"})
    sessions = sessionmaker(bind=engine)
    with sessions() as session:
        actor = system_actor(session, "tests", at(2026, 11, 24, 10))
        for i, hood in enumerate(["Yıldıztepe", "Çamlıbel", "Kuzeykent"]):
            when = at(2026, 11, 24 + i, 10)
            values = {"tc_number": valid_tc(900 + i), "phone": mobile(900 + i)}
            open_ticket(
                session,
                actor,
                when,
                request(Channel.PHONE, neighbourhood=hood, received_at=when, **values),
            )
        session.commit()

    assert draw_moment(at(2026, 12, 2, 12), settings) == at(2026, 11, 30, 9)
    assert run_weekly(sessions, settings, at(2026, 11, 30, 8, 59)) == {"due": False}
    first = run_weekly(sessions, settings, at(2026, 11, 30, 9, 5))
    assert first["due"] and first["drawn"] and first["entries"] == 3 and first["emails"] >= 2
    again = run_weekly(sessions, settings, at(2026, 11, 30, 9, 15))
    assert again == {"due": True, "list_id": first["list_id"], "drawn": False, "emails": 0}
    later = run_weekly(sessions, settings, at(2026, 12, 3, 18))
    assert later["list_id"] == first["list_id"] and not later["drawn"]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MayorCallList)) == 1
        keys = session.scalars(
            select(Notification.idempotency_key).where(Notification.idempotency_key.like("mayor-%"))
        ).all()
        assert len(keys) == first["emails"]


def test_the_schedule_runs_the_job_every_ten_minutes(tmp_path: Path) -> None:
    settings = load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path)})
    jobs = {job.name: job for job in periodic_jobs(settings)}
    assert jobs["mayor-weekly-list"].interval_s == 600
    assert jobs["mayor-weekly-list"].func.__name__ == "weekly_mayor_list"


def test_the_draw_moment_follows_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ACIKKAPI_INSTANCE_DIR": str(tmp_path),
            "ACIKKAPI_MAYOR_LIST_WEEKDAY": "3",
            "ACIKKAPI_MAYOR_LIST_HOUR": "14",
        }
    )
    assert draw_moment(at(2026, 11, 30, 9), settings) == at(2026, 12, 2, 14)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ACIKKAPI_MAYOR_LIST_WEEKDAY", "0"),
        ("ACIKKAPI_MAYOR_LIST_WEEKDAY", "8"),
        ("ACIKKAPI_MAYOR_LIST_HOUR", "24"),
        ("ACIKKAPI_MAYOR_LIST_SIZE", "0"),
        ("ACIKKAPI_MAYOR_LIST_SIZE", "dört"),
        ("ACIKKAPI_MAYOR_LIST_EXCLUDE_WEEKS", "-1"),
    ],
)
def test_bad_list_settings_are_refused(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path), name: value})


def test_list_settings_defaults(tmp_path: Path) -> None:
    settings = load_settings({"ACIKKAPI_INSTANCE_DIR": str(tmp_path)})
    assert (settings.mayor_list_weekday, settings.mayor_list_hour) == (1, 9)
    assert (settings.mayor_list_size, settings.mayor_list_exclude_weeks) == (4, 8)
