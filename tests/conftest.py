"""Shared fixtures: the domain suite runs against both SQLite and PostgreSQL.

Each backend's schema is built once per run by the real Alembic migrations, the catalogue
and demo data are loaded and committed once, and every test runs inside a transaction
that is rolled back afterwards (services never commit, so nothing leaks between tests).
PostgreSQL comes from ``TEST_DATABASE_URL`` (``scripts/test`` starts a local server).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.migrate import upgrade
from models import Role, StaffUser
from services.catalogue_loader import load_catalogue, load_demo, load_holidays

DEFAULT_PG_URL = "postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_test"
ISTANBUL = ZoneInfo("Europe/Istanbul")
# A Tuesday morning in Istanbul, an ordinary working day.
FIXED_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=ISTANBUL).astimezone(UTC)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _seed(engine: Engine) -> None:
    with Session(engine) as session:
        load_holidays(session)
        load_catalogue(session, FIXED_NOW)
        load_demo(session, FIXED_NOW)
        session.commit()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("db") / "acikkapi-test.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgresql_engine() -> Iterator[Engine]:
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL)
    _reset_postgres(url)
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is always rolled back."""
    connection = engine.connect()
    outer = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield db
    finally:
        db.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def now() -> datetime:
    return FIXED_NOW


def staff_with_role(session: Session, role: Role) -> StaffUser:
    user = session.scalars(
        select(StaffUser).where(StaffUser.role == role).order_by(StaffUser.id)
    ).first()
    assert user is not None, f"demo data has no {role.value}"
    return user


@pytest.fixture
def agent(session: Session) -> StaffUser:
    return staff_with_role(session, Role.AGENT)


@pytest.fixture
def supervisor(session: Session) -> StaffUser:
    return staff_with_role(session, Role.SUPERVISOR)
