"""Pure reconnect and liveness policy (no sleeping, no I/O: tested with a fake clock).

- :class:`Backoff`: exponential backoff with *full jitter* — the n-th consecutive failure
  waits a uniformly random time in ``[0, min(cap, base * 2**n)]`` so that many listeners (or a
  restarted Asterisk) do not reconnect in lock-step. A successful login resets it.
- :class:`Watchdog`: decides when the next ``Ping`` is due and when a connection is dead. AMI
  over TCP can be half-open (Asterisk gone, no FIN/RST): only an unanswered ``Ping`` shows it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    rng: Callable[[float, float], float] = field(default=random.uniform)
    failures: int = 0

    def ceiling(self) -> float:
        """Upper bound of the next delay."""
        return float(min(self.cap, self.base * (2.0 ** min(self.failures, 32))))

    def next_delay(self) -> float:
        """Delay before the next attempt; counts one more failure."""
        delay = self.rng(0.0, self.ceiling())
        self.failures += 1
        return max(0.0, min(delay, self.cap))

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Watchdog:
    """Ping every ``interval`` seconds; a ping unanswered after ``timeout`` seconds is death."""

    interval: float = 10.0
    timeout: float = 5.0
    last_ok: float = 0.0
    ping_sent_at: float | None = None

    def start(self, now: float) -> None:
        self.last_ok = now
        self.ping_sent_at = None

    def next_ping_at(self) -> float:
        return self.last_ok + self.interval

    def ping_due(self, now: float) -> bool:
        return self.ping_sent_at is None and now >= self.next_ping_at()

    def ping_sent(self, now: float) -> None:
        self.ping_sent_at = now

    def pong(self, now: float) -> None:
        self.last_ok = now
        self.ping_sent_at = None

    def traffic(self, now: float) -> None:
        """Any frame from Asterisk proves the connection is alive (pings only when idle)."""
        if self.ping_sent_at is None:
            self.last_ok = max(self.last_ok, now)

    def dead(self, now: float) -> bool:
        return self.ping_sent_at is not None and now - self.ping_sent_at >= self.timeout
