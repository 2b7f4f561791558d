"""Screen pops for the browser: the AMI listener's Redis stream, fanned out to SSE clients.

The listener appends every pop to the stream ``acikkapi:screenpop`` (and publishes it on
``acikkapi:screenpop:<agent id>``; see ami_listener/screenpop.py for the message). One
:class:`ScreenPopHub` thread per console process reads the stream with a blocking
``XREAD`` and keeps the latest :data:`BUFFER` entries; each SSE response waits on the hub for
entries after the last one it sent that are addressed to its agent. The stream id is the SSE
event id, so a browser that reconnects (``Last-Event-ID``) gets what it missed, and a page
renders the newest id it knows so that a pop arriving while the page loads is not lost.

Redis is a convenience, the database is the record: when Redis is away the hub retries with
a growing pause and the agent screen still shows the current call from the database.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

STREAM = "acikkapi:screenpop"  # ami_listener.screenpop.STREAM
BUFFER = 2000


def stream_key(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; malformed ids sort first."""
    millis, _sep, seq = entry_id.partition("-")
    try:
        return int(millis), int(seq or 0)
    except ValueError:
        return (0, 0)


@dataclass(frozen=True)
class Pop:
    entry_id: str
    agent_id: int | None
    message: dict[str, Any]


def _entry_id(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> Pop | None:
    eid = _entry_id(entry_id)
    raw = fields.get(b"data", fields.get("data"))
    if raw is None:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    agent = message.get("agent_id")
    return Pop(eid, agent if isinstance(agent, int) else None, message)


class ScreenPopHub:
    """One reader of the screen-pop stream per process (thread started by :meth:`start`)."""

    def __init__(self, url: str, *, stream: str = STREAM, block_ms: int = 5000) -> None:
        self.url = url
        self.stream = stream
        self.block_ms = block_ms
        self._entries: deque[Pop] = deque(maxlen=BUFFER)
        self._last_id = "0-0"
        self._start_id: str | None = None  # newest entry when the hub first connected
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.healthy = False

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=self.block_ms / 1000 + 5
        )

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="screenpop-hub", daemon=True)
            self._thread.start()
        self._ready.wait(3)

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(self.block_ms / 1000 + 6)

    def last_id(self) -> str:
        """The newest stream id this hub knows (``"0-0"`` before the first read)."""
        self._ready.wait(3)
        return self._last_id

    def _run(self) -> None:
        pause = 0.5
        client: redis.Redis | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self._client()
                    newest: Any = client.xrevrange(self.stream, count=1)
                    if self._start_id is None:
                        self._start_id = _entry_id(newest[0][0]) if newest else "0-0"
                        self._last_id = self._start_id
                    self.healthy = True
                    self._ready.set()
                reply: Any = client.xread(
                    {self.stream: self._last_id}, block=self.block_ms, count=500
                )
                pause = 0.5
            except RedisError as exc:
                if self.healthy or not self._ready.is_set():
                    log.warning("screen-pop stream unavailable: %s", exc)
                self.healthy = False
                self._ready.set()
                client = None
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)
                continue
            pops = []
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    pop = _decode(entry_id, fields)
                    self._last_id = _entry_id(entry_id)
                    if pop is not None:
                        pops.append(pop)
            if pops:
                with self._changed:
                    self._entries.extend(pops)
                    self._changed.notify_all()

    def _after(self, agent_id: int, after: str) -> list[Pop]:
        key = stream_key(after)
        return [p for p in self._entries if p.agent_id == agent_id and stream_key(p.entry_id) > key]

    def _from_redis(self, agent_id: int, after: str) -> list[Pop]:
        """Entries older than the buffer (a browser that was away for long)."""
        try:
            rows: Any = self._client().xrange(self.stream, min=f"({after}", count=BUFFER)
        except RedisError:
            return []
        found = [_decode(eid, fields) for eid, fields in rows]
        return [p for p in found if p is not None and p.agent_id == agent_id]

    def wait(self, agent_id: int, after: str, timeout: float) -> list[Pop]:
        """Pops for ``agent_id`` with an id above ``after``; waits up to ``timeout`` seconds
        for one to arrive. Returns at once when some are already there."""
        start = self._start_id
        if start is not None and stream_key(after) < stream_key(start):
            # Older than this hub's memory (a browser back from a long absence, or this
            # process restarted): ask Redis for what came after ``after``.
            missed = self._from_redis(agent_id, after)
            if missed:
                return missed
        with self._changed:
            found = self._after(agent_id, after)
            if found or self._stop.is_set():
                return found
            self._changed.wait(timeout)
            return self._after(agent_id, after)


def sse_events(
    hub: ScreenPopHub,
    agent_id: int,
    after: str,
    *,
    until: float,
    heartbeat: float = 15.0,
    clock: Any = None,
) -> Iterator[str]:
    """The text of an SSE response: each pop for ``agent_id`` after ``after`` as an
    ``event: screen_pop`` with the stream id as ``id``; a comment every ``heartbeat`` seconds
    (so a closed connection is noticed); ends at monotonic time ``until`` (the browser
    reconnects, and the session's time-outs are checked again)."""
    import time

    now = clock or time.monotonic
    yield "retry: 2000\n\n"
    last = after
    while now() < until:
        pops = hub.wait(agent_id, last, min(heartbeat, max(0.0, until - now())))
        if not pops:
            yield ": keep-alive\n\n"
            continue
        for pop in pops:
            last = pop.entry_id
            data = json.dumps(pop.message, ensure_ascii=False, separators=(",", ":"))
            yield f"id: {pop.entry_id}\nevent: screen_pop\ndata: {data}\n\n"
