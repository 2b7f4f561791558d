"""Watchdog and backoff policy with a fake clock (pure logic: nothing sleeps)."""

from __future__ import annotations

import asyncio

from ami_listener.client import AmiClient
from ami_listener.liveness import Backoff, Watchdog


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    seen: list[tuple[float, float]] = []

    def rng(low: float, high: float) -> float:
        seen.append((low, high))
        return high  # worst case

    backoff = Backoff(base=0.5, cap=30.0, rng=rng)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert all(low == 0.0 for low, _ in seen)  # full jitter: anywhere from zero
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_never_exceeds_cap_with_real_randomness() -> None:
    backoff = Backoff(base=1.0, cap=5.0)
    for _ in range(200):
        assert 0.0 <= backoff.next_delay() <= 5.0
    assert backoff.failures == 200  # huge counts do not overflow


def test_watchdog_pings_when_idle_and_declares_death_after_timeout() -> None:
    dog = Watchdog(interval=10.0, timeout=5.0)
    dog.start(now=100.0)
    assert not dog.ping_due(109.9)
    assert dog.ping_due(110.0)
    dog.ping_sent(110.0)
    assert not dog.ping_due(111.0)  # one ping at a time
    assert not dog.dead(114.9)
    assert dog.dead(115.0)


def test_watchdog_answered_ping_and_traffic_postpone_the_next_ping() -> None:
    dog = Watchdog(interval=10.0, timeout=5.0)
    dog.start(0.0)
    dog.traffic(7.0)  # an event arrived: the link is alive
    assert dog.next_ping_at() == 17.0
    dog.ping_sent(17.0)
    dog.traffic(18.0)  # traffic does not cancel an outstanding ping
    assert dog.dead(22.0)
    dog.pong(21.0)
    assert not dog.dead(30.0)
    assert dog.next_ping_at() == 31.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_client_ping_failure_marks_connection_dead() -> None:
    """AmiClient.ping with no connection: the action fails fast, the watchdog sees no pong."""
    clock = FakeClock()
    client = AmiClient("127.0.0.1", 1, "listener", "x", lambda e: None, clock=clock)
    client.watchdog.start(clock())
    clock.now = 10.0
    assert asyncio.run(client.ping()) is False
    clock.now = 15.0
    assert client.watchdog.dead(clock())
