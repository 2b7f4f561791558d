"""``acikkapi asterisk …``: provisioning and control of the PBX (filled by issue 3)."""

from __future__ import annotations

import click


@click.group("asterisk")
def asterisk() -> None:
    """Install, configure, start, stop, reload and inspect Asterisk."""
