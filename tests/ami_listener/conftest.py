"""Fixtures of the listener tests: the real Redis on 127.0.0.1:6379 for screen pops."""

from __future__ import annotations

import subprocess

import pytest
import redis

from acikkapi.settings import REPO_ROOT

TEST_REDIS = "redis://127.0.0.1:6379/15"  # a database of its own; pub/sub is server-wide


def _ping() -> bool:
    try:
        return bool(redis.Redis.from_url(TEST_REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def redis_up() -> None:
    if _ping():
        return
    subprocess.run(
        ["bash", "-c", f'source "{REPO_ROOT}/scripts/lib.sh" && ak_redis_up'],
        check=False,
        timeout=90,
    )
    if not _ping():
        pytest.skip("Redis on 127.0.0.1:6379 is not running and scripts/lib.sh ak_redis_up failed")
