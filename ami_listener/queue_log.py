"""Reading Asterisk's ``queue_log`` to complete calls that happened while the listener was down.

Format: ``epoch|callid|queue|agent|EVENT|data1|data2|...`` where ``callid`` is the Uniqueid of
the caller's channel in the queue (equal to ``CALL_ID`` because the dialplan sets
``__CALL_ID=${UNIQUEID}`` on the inbound leg before ``Queue()``).

:class:`QueueLogReader` reads only complete new lines after a remembered byte offset (kept in
a small JSON file under the instance folder with the file's inode, so rotation or truncation
restarts at 0). Lines are decoded as strict UTF-8; a line with invalid bytes is skipped and
counted, never repaired. :func:`facts_from_entries` is pure.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.call_records import (
    Abandoned,
    AgentAnswered,
    AgentCompleted,
    CallEnded,
    CallFact,
    CallStarted,
    QueueExited,
    QueueJoined,
    Transferred,
)

log = logging.getLogger(__name__)

MAX_LINE = 8 * 1024
MAX_READ = 32 * 1024 * 1024  # one reconciliation reads at most this much; the rest next time


@dataclass(frozen=True)
class QueueLogEntry:
    at: datetime
    call_id: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def field(self, index: int) -> str | None:
        """``data1`` is ``field(1)``."""
        return self.data[index - 1] if 0 < index <= len(self.data) else None


def parse_line(line: str) -> QueueLogEntry | None:
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit() or not parts[4]:
        return None
    return QueueLogEntry(
        at=datetime.fromtimestamp(int(parts[0]), UTC),
        call_id=parts[1],
        queue=parts[2],
        agent=parts[3],
        event=parts[4],
        data=tuple(parts[5:]),
    )


@dataclass
class QueueLogStats:
    lines: int = 0
    bad_encoding: int = 0
    malformed: int = 0
    too_long: int = 0


class QueueLogReader:
    """Incremental reader; :meth:`commit` stores the offset once the facts are written."""

    def __init__(self, path: Path, state_path: Path) -> None:
        self.path = path
        self.state_path = state_path
        self.stats = QueueLogStats()
        self._pending: tuple[int, int] | None = None

    def _load(self) -> tuple[int, int]:
        try:
            state = json.loads(self.state_path.read_text("utf-8"))
            return int(state["inode"]), int(state["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0

    def read_new(self) -> list[QueueLogEntry]:
        """Entries appended since the last committed offset (empty if the file is missing)."""
        try:
            stat = self.path.stat()
        except OSError:
            return []
        inode, offset = self._load()
        if inode != stat.st_ino or offset > stat.st_size:
            offset = 0  # rotated or truncated
        entries: list[QueueLogEntry] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(MAX_READ)
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = (stat.st_ino, offset)
            return entries
        for raw in data[: end + 1].splitlines():
            self.stats.lines += 1
            if len(raw) > MAX_LINE:
                self.stats.too_long += 1
                continue
            try:
                text = raw.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                self.stats.bad_encoding += 1
                continue
            entry = parse_line(text)
            if entry is None:
                self.stats.malformed += 1
                continue
            entries.append(entry)
        self._pending = (stat.st_ino, offset + end + 1)
        return entries

    def commit(self) -> None:
        """Remember how far :meth:`read_new` got (call after the facts are committed)."""
        if self._pending is None:
            return
        inode, offset = self._pending
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"inode": inode, "offset": offset}), "utf-8")
        os.replace(tmp, self.state_path)
        self._pending = None


def facts_from_entries(
    entries: Iterable[QueueLogEntry],
    internal_caller: re.Pattern[str],
    member_interfaces: Mapping[str, str] | None = None,
) -> list[CallFact]:
    """Translate queue_log entries into call facts (calls from internal callers are skipped).

    The agent column holds the queue member's *name* on Asterisk 22 (call events ignore
    ``log_membername_as_agent``); ``member_interfaces`` (from ``QueueStatus``) maps it back to
    the interface (``PJSIP/1005``). Unknown names are kept as they are.
    """
    names = member_interfaces or {}
    facts: list[CallFact] = []
    internal: set[str] = set()
    for e in entries:
        if not e.call_id or e.call_id == "NONE" or e.call_id in internal:
            continue
        agent = e.agent if e.agent and e.agent != "NONE" else None
        agent = names.get(agent, agent) if agent else None
        if e.event == "ENTERQUEUE":
            caller = e.field(2) or None
            if caller and internal_caller.match(caller):
                internal.add(e.call_id)
                continue
            facts.append(CallStarted(e.call_id, e.at, caller_raw=caller))
            facts.append(QueueJoined(e.call_id, e.at, e.queue))
        elif e.event == "CONNECT" and agent:
            facts.append(AgentAnswered(e.call_id, e.at, agent, _int(e.field(1)), e.queue))
        elif e.event in ("COMPLETECALLER", "COMPLETEAGENT"):
            reason = "caller" if e.event == "COMPLETECALLER" else "agent"
            facts.append(
                AgentCompleted(e.call_id, e.at, _int(e.field(2)), _int(e.field(1)), reason)
            )
            facts.append(CallEnded(e.call_id, e.at, f"queue_log {e.event.lower()}"))
        elif e.event == "ABANDON":
            facts.append(Abandoned(e.call_id, e.at, _int(e.field(3)), e.queue, _int(e.field(2))))
        elif e.event in ("EXITWITHTIMEOUT", "EXITEMPTY"):
            reason = "TIMEOUT" if e.event == "EXITWITHTIMEOUT" else "LEAVEEMPTY"
            facts.append(QueueExited(e.call_id, e.at, reason, _int(e.field(3)), e.queue))
        elif e.event == "BLINDTRANSFER":
            exten, context = e.field(1), e.field(2)
            target = f"{exten}@{context}" if exten and context else exten
            facts.append(
                AgentCompleted(e.call_id, e.at, _int(e.field(4)), _int(e.field(3)), "transfer")
            )
            facts.append(Transferred(e.call_id, e.at, "blind", agent, target))
        elif e.event == "ATTENDEDTRANSFER":
            # data: method|target...|holdtime|calltime|origposition (the last three are fixed)
            hold, talk = (_int(e.data[-3]), _int(e.data[-2])) if len(e.data) >= 3 else (None, None)
            facts.append(AgentCompleted(e.call_id, e.at, talk, hold, "transfer"))
            facts.append(Transferred(e.call_id, e.at, "attended", agent, e.field(2) or None))
    return facts


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
