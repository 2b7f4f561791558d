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


def patch_ticket_contacts_relationship() -> bool:
    """Work around an ambiguous ``Ticket.contacts`` relationship, in this process only.

    ``ticket_contacts`` has two foreign keys to ``tickets`` (``ticket_id`` and
    ``original_ticket_id``); when ``Ticket.contacts`` does not say which one it follows, the
    ORM cannot configure its mappers (``AmbiguousForeignKeysError``). Until the model says
    ``foreign_keys="TicketContact.ticket_id"`` itself, the benchmarks set it here (the same
    choice ``TicketContact.ticket`` makes). Returns True when the patch was needed.
    """
    import models

    prop = models.Ticket.__mapper__._props.get("contacts")  # noqa: SLF001
    args = getattr(prop, "_init_args", None)
    if args is None or args.foreign_keys.argument is not None:
        return False
    args.foreign_keys.argument = "TicketContact.ticket_id"
    print(
        "WARNING: models.Ticket.contacts has no foreign_keys (AmbiguousForeignKeysError); "
        "patched in-process to TicketContact.ticket_id for the benchmark",
        file=sys.stderr,
        flush=True,
    )
    return True
