"""Fixtures and helpers of the listener tests: the real Redis on 127.0.0.1:6379 for screen
pops, and the writer's and ticket stage's transactions on the test's own session."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from acikkapi.settings import REPO_ROOT
from ami_listener.screenpop import CHANNEL_PREFIX
from ami_listener.writer import FactWriter
from services.call_records import CallFact

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


def transaction_on(session: Session) -> Callable[[], AbstractContextManager[Session]]:
    """A writer/stage transaction that is a savepoint of the test's session (whose outer
    transaction the ``session`` fixture rolls back)."""

    @contextmanager
    def transaction() -> Iterator[Session]:
        with session.begin_nested():
            yield session

    return transaction


async def run_writer(writer: FactWriter, facts: Iterable[CallFact]) -> None:
    """Feed ``facts`` to a running ``writer`` (its ``run`` task, as in the daemon) and stop
    it once they are committed."""
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    for fact in facts:
        writer.submit(fact)
    await writer.drain()
    stop.set()
    await task


async def inline(fn: Callable[[], Any]) -> Any:
    """Offload that runs the batch on the loop's thread: SQLite connections belong to the
    test thread (production uses a worker thread)."""
    return fn()


def subscribe_pops(client: redis.Redis) -> Any:
    """A subscription to every agent's screen-pop channel, confirmed (a ``PubSub``)."""
    pubsub: Any = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
    pubsub.get_message(timeout=1)  # subscription confirmation
    return pubsub


def pops_of(pubsub: Any, call_id: str) -> list[dict[str, Any]]:
    """The screen pops of ``call_id`` received on ``pubsub`` (each with its ``channel``):
    read until one has arrived and then 0.2 s pass without a message, so that a second pop
    of the call is seen too (at most 20 reads); closes ``pubsub``."""
    mine: list[dict[str, Any]] = []
    for _ in range(20):
        message = pubsub.get_message(timeout=0.2)
        if message is None and mine:
            break
        if message and message["type"] == "pmessage":
            pop = {"channel": message["channel"], **json.loads(message["data"])}
            if pop["call_id"] == call_id:
                mine.append(pop)
    pubsub.close()
    return mine
