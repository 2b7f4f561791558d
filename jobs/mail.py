"""Polling the info@ mailbox as an RQ job (issue 5, e-mail channel)."""

from __future__ import annotations

from typing import Any

from jobs.runtime import runtime


def poll_inbox() -> dict[str, Any]:
    """One poll of the configured IMAP mailbox; each message is its own transaction (on the
    worker's database engine)."""
    from messaging.email_cli import poll_once

    rt = runtime()
    return dict(vars(poll_once(rt.settings, rt.sessions)))
