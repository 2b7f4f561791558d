"""Screen pops on Redis: pub/sub for consoles that are listening, a capped stream for late ones.

Each message (JSON, see :meth:`services.call_records.ScreenPop.as_message`) is published to
``acikkapi:screenpop:<agent_id>`` and appended to the stream ``acikkapi:screenpop`` (trimmed to
about ``stream_maxlen`` entries) so a console that connects late can catch up with ``XRANGE``
/ ``XREAD``. Redis is a convenience, the database is the record: when Redis is down messages
wait in a bounded in-memory backlog (oldest dropped and counted), every failure is logged and
counted, and :meth:`ScreenPopPublisher.flush` retries later. Nothing here raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.call_records import ScreenPop

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "acikkapi:screenpop:"
STREAM = "acikkapi:screenpop"


@dataclass
class PublisherStats:
    published: int = 0
    failures: int = 0
    dropped: int = 0


class ScreenPopPublisher:
    def __init__(
        self,
        url: str,
        *,
        stream_maxlen: int = 10_000,
        backlog: int = 1_000,
        timeout: float = 1.0,
    ) -> None:
        self.url = url
        self.stream_maxlen = stream_maxlen
        self.timeout = timeout
        self.stats = PublisherStats()
        self._pending: deque[dict[str, Any]] = deque()
        self._backlog = backlog
        self._client: aioredis.Redis | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
            )
        return self._client

    async def publish(self, pop: ScreenPop) -> bool:
        """Queue ``pop`` and try to send everything pending; ``True`` when all went out."""
        if len(self._pending) >= self._backlog:
            self._pending.popleft()
            self.stats.dropped += 1
        self._pending.append(pop.as_message())
        return await self.flush()

    async def flush(self) -> bool:
        while self._pending:
            message = self._pending[0]
            try:
                await asyncio.wait_for(self._send(message), self.timeout * 2)
            except (RedisError, OSError, TimeoutError) as exc:
                self.stats.failures += 1
                log.warning(
                    "screen pop for call %s not published (%d waiting): %s",
                    message.get("call_id"),
                    len(self._pending),
                    exc or type(exc).__name__,
                )
                await self._drop_client()
                return False
            self._pending.popleft()
            self.stats.published += 1
        return True

    async def _send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message, ensure_ascii=False)
        agent_id = message.get("agent_id")
        async with self._redis().pipeline(transaction=False) as pipe:
            if agent_id is not None:
                pipe.publish(f"{CHANNEL_PREFIX}{agent_id}", payload)
            pipe.xadd(
                STREAM,
                {"agent_id": str(agent_id or ""), "data": payload},
                maxlen=self.stream_maxlen,
                approximate=True,
            )
            await pipe.execute()

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def close(self) -> None:
        await self._drop_client()
