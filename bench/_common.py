"""Helpers shared by the benchmark scripts (not a test, not application code)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_bench"


def libpq_dsn(url: str, database: str | None = None) -> str:
    """The libpq form of a SQLAlchemy URL (optionally for another database)."""
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)
