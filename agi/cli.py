"""``acikkapi agi …``: the FastAGI server (filled by issue 3)."""

from __future__ import annotations

import click


@click.group("agi")
def agi() -> None:
    """The FastAGI server Asterisk calls for caller lookup, callbacks and surveys."""
