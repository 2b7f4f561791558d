"""``acikkapi ami-listener …``: the AMI event listener daemon (filled by issue 3)."""

from __future__ import annotations

import click


@click.group("ami-listener")
def ami_listener() -> None:
    """Turn Asterisk Manager events into call records, tickets and screen pops."""
