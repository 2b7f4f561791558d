"""The file SMS gateway: the embedded default (issue 5).

Each message becomes one JSON file in ``settings.sms_file_dir`` whose name is derived from
the idempotency key alone. Publishing is atomic and exclusive: the JSON is written to a
temporary file, flushed to disk, then hard-linked to its final name; ``link`` fails when
the name exists, so of two sends with the same key exactly one writes the message and the
other gets ``duplicate=True``. A process killed at any point leaves either no message (only
a temporary file, removed by the next gateway started) or the complete message: never a
half-written file and never a second copy. Demos, tests and a human reading the folder
see exactly what a citizen would have received.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from messaging.delivery import DeliveryError, OutgoingSms, SendResult
from messaging.sms_gateway import IYS_MESSAGE_TYPE, prepare

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TEMP_SUFFIX = ".tmp"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def file_name(key: str) -> str:
    """The message file's name for idempotency ``key``: a readable slug and a hash.

    Different keys give different names (the hash), whatever characters they contain; the
    slug never contains a path separator or starts with a dot.
    """
    slug = _UNSAFE.sub("_", key).strip("._-")[:80] or "sms"
    return f"{slug}-{_digest(key)}.json"


def provider_message_id(key: str) -> str:
    return f"file-{_digest(key)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


class FileSmsGateway:
    """Writes one JSON file per message; see the module docstring for the guarantees."""

    def __init__(
        self, directory: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self.remove_abandoned_temp_files()

    def remove_abandoned_temp_files(self) -> int:
        """Delete temporary files left by processes that no longer run; returns the count."""
        removed = 0
        for path in self.directory.glob(f".*{_TEMP_SUFFIX}"):
            parts = path.name.split(".")
            pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
            if pid is not None and not _pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def send(self, sms: OutgoingSms) -> SendResult:
        """Write the message unless a message with the same idempotency key exists."""
        encoded = prepare(sms)
        final = self.directory / file_name(sms.idempotency_key)
        message_id = provider_message_id(sms.idempotency_key)
        parts = len(encoded.parts)
        if final.exists():
            return SendResult(provider_message_id=message_id, parts=parts, duplicate=True)
        record: dict[str, Any] = {
            "provider_message_id": message_id,
            "idempotency_key": sms.idempotency_key,
            "recipient": sms.recipient,
            "sender": sms.sender,
            "text": sms.text,
            "encoding": encoded.encoding.value,
            "data_coding": encoded.data_coding,
            "characters": encoded.characters,
            "units": encoded.units,
            "parts": parts,
            "segments": [part.text for part in encoded.parts],
            "iys_message_type": IYS_MESSAGE_TYPE,
            "commercial": False,
            "written_at": self._clock().isoformat(),
        }
        data = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        temp = self.directory / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, final)  # atomic and exclusive: fails if the name exists
            except FileExistsError:
                return SendResult(provider_message_id=message_id, parts=parts, duplicate=True)
            self._sync_directory()
        except OSError as exc:
            raise DeliveryError(f"file gateway could not write {final}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):  # gone already, or the folder itself is gone
                temp.unlink()
        return SendResult(provider_message_id=message_id, parts=parts)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing to release."""


def read_messages(directory: Path) -> list[dict[str, Any]]:
    """Every message the file gateway wrote to ``directory``, oldest first."""
    messages = []
    for path in Path(directory).glob("*.json"):
        with path.open(encoding="utf-8") as handle:
            messages.append(json.load(handle))
    return sorted(messages, key=lambda m: (m.get("written_at", ""), m["provider_message_id"]))
