"""One SQLAlchemy session per request; views that write commit through :func:`transaction`.

Services never commit: a view does its reads with :func:`session` and its writes inside
``with db.transaction() as s:`` — committed when the block ends without an exception, rolled
back otherwise. Whatever is still open when the request ends is rolled back and closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g
from sqlalchemy.orm import Session

from agent_console.context import console

_KEY = "acikkapi_db"


def session() -> Session:
    """The request's session (opened on first use)."""
    found = g.get(_KEY)
    if found is None:
        found = console().sessions()
        setattr(g, _KEY, found)
    assert isinstance(found, Session)
    return found


@contextmanager
def transaction() -> Iterator[Session]:
    """The request's session; commit when the block succeeds, roll back when it raises."""
    db = session()
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise


def close() -> None:
    """Roll back what was not committed and release the connection (end of request, or
    before a long streamed response)."""
    found = g.pop(_KEY, None)
    if isinstance(found, Session):
        found.rollback()
        found.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(lambda _exc: close())
