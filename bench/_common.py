"""Helpers shared by the benchmark scripts (not a test, not application code)."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
DEFAULT_URL = "postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_bench"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of unsorted ``values`` (``nan`` when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def libpq_dsn(url: str, database: str | None = None) -> str:
    """The libpq form of a SQLAlchemy URL (optionally for another database)."""
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def replace_docs_section(title: str, content: str) -> Path:
    """Put ``content`` in place of the ``title`` section of docs/benchmarks.md (appended
    when the section is missing); the other sections are kept as they are."""
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: content.rstrip("\n") + "\n\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + content
    DOCS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
    return DOCS
