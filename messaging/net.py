"""What the adapters share about the network (issue 5)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: the only hosts an adapter talks to
    without TLS (credentials never cross a network in clear text)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
