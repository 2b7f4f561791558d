"""Fixtures of the console tests: the real application on the real seeded databases.

Each test gets the Flask app built by :func:`agent_console.create_app` on a connection of
the session's SQLite or PostgreSQL engine (``tests/conftest.py``) inside an outer transaction
that is rolled back afterwards: the views commit (savepoints), nothing leaks between tests.
The console's clock is a :class:`Clock` the test moves (time travel, never sleeping). The
PBX port points at nothing, so AMI operations fail as they do when Asterisk is down; the
telephony tests (tests/telephony/test_console_browser.py) use a real Asterisk.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.settings import Settings, load_settings
from agent_console import create_app
from agent_console.context import EXTENSION
from agent_console.screenpop import ScreenPopHub
from models import Role, StaffUser
from services.staff_auth import hash_password
from tests.conftest import FIXED_NOW

PASSWORD = "dogru-parola-123"
PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: argon2 is slow on purpose
REDIS_URL = "redis://127.0.0.1:6379/12"  # a database of its own for the console tests

HUMAN_ROLES = [r for r in Role if r is not Role.SYSTEM]


class Clock:
    """The console's clock in tests: starts at FIXED_NOW, moves only when told."""

    def __init__(self, start: datetime = FIXED_NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def console_settings(instance: Path, database_url: str, **extra: str) -> Settings:
    env = {
        "ACIKKAPI_INSTANCE_DIR": str(instance),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "ACIKKAPI_AMI_PORT": str(free_port()),  # nothing listens: the PBX is "down"
        "ACIKKAPI_CONSOLE_SECRET_KEY": "console-tests-secret-key",
    }
    env.update(extra)
    return load_settings(env)


@dataclass
class ConsoleEnv:
    app: Flask
    clock: Clock
    db: Session  # the test's own view of the same connection (sees what views flushed)
    recordings: Path

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def user(self, role: Role) -> StaffUser:
        """The first demo user with ``role``, given the test password."""
        user = self.db.scalars(
            select(StaffUser).where(StaffUser.role == role).order_by(StaffUser.id)
        ).first()
        assert user is not None, f"demo data has no {role.value}"
        if user.password_hash != PASSWORD_HASH:
            user.password_hash = PASSWORD_HASH
            self.db.flush()
        return user

    def login(self, role: Role, client: FlaskClient | None = None) -> FlaskClient:
        """A client signed in as the first demo user with ``role``."""
        client = client or self.client()
        user = self.user(role)
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302, response.text[:500]
        return client


def csrf_from(html: str) -> str:
    """The CSRF token of a rendered page (meta tag or hidden input)."""
    found = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert found, "no CSRF token on the page"
    return found.group(1)


def csrf(client: FlaskClient) -> str:
    """A CSRF token for ``client``'s session (from its start page)."""
    return csrf_from(client.get("/", follow_redirects=True).text)


@pytest.fixture
def console_env(engine: Engine, tmp_path: Path) -> Iterator[ConsoleEnv]:
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    db = factory()
    clock = Clock()
    recordings = tmp_path / "monitor"
    recordings.mkdir()
    app = create_app(
        console_settings(tmp_path / "instance", engine.url.render_as_string(hide_password=False)),
        testing=True,
        session_factory=factory,
        clock=clock,
        recordings_dir=lambda: recordings,
    )
    # The screen-pop hub stops between two blocking reads of the stream: keep them short,
    # so that stopping it at the end of each test takes a moment, not the production 5 s.
    app.extensions[EXTENSION].screenpops = ScreenPopHub(REDIS_URL, block_ms=100)
    try:
        yield ConsoleEnv(app, clock, db, recordings)
    finally:
        app.extensions[EXTENSION].screenpops.stop()
        db.close()
        outer.rollback()
        connection.close()
