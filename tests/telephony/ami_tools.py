"""A tiny blocking AMI client for tests: log in, send actions, collect events in a thread.

Deliberately independent of ami_listener/ (that is what later tests check); frames are
decoded strictly as UTF-8.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

Message = dict[str, list[str]]


def _parse(frame: bytes) -> Message:
    msg: Message = {}
    for line in frame.decode("utf-8").split("\r\n"):
        if ": " in line:
            key, value = line.split(": ", 1)
            msg.setdefault(key, []).append(value)
    return msg


def first(msg: Message, key: str) -> str:
    """The first value of header ``key`` (empty string when absent)."""
    return msg.get(key, [""])[0]


def chan_vars(msg: Message, prefix: str = "ChanVariable") -> dict[str, str]:
    """``ChanVariable: NAME=value`` headers as a dict (``DestChanVariable`` with prefix)."""
    out: dict[str, str] = {}
    for item in msg.get(prefix, []):
        name, _, value = item.partition("=")
        out[name] = value
    return out


class Ami:
    """One AMI connection; events are appended to :attr:`events` by a reader thread."""

    def __init__(self, host: str, port: int, user: str, secret: str, events: str = "on"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        self.banner = self._readline()
        # Every byte Asterisk sent, banner included: a transcript for the listener's replay tests.
        self.raw = bytearray(self.banner)
        self.events: list[Message] = []
        self._responses: dict[str, Message] = {}
        self._lock = threading.Condition()
        self._buf = b""
        self._counter = 0
        self._closed = False
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        self.login = self.action("Login", Username=user, Secret=secret, Events=events)

    def _readline(self) -> bytes:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                break
            data += chunk
        return data

    def _reader(self) -> None:
        while not self._closed:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self.raw += chunk
            self._buf += chunk
            while b"\r\n\r\n" in self._buf:
                frame, self._buf = self._buf.split(b"\r\n\r\n", 1)
                msg = _parse(frame)
                with self._lock:
                    if "Response" in msg and "ActionID" in msg:
                        self._responses[first(msg, "ActionID")] = msg
                    else:
                        self.events.append(msg)
                    self._lock.notify_all()

    def action(self, name: str, timeout: float = 10, **headers: str) -> Message:
        """Send action ``name`` and return its response (raises ``TimeoutError``)."""
        self._counter += 1
        action_id = f"t{self._counter}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        deadline = time.monotonic() + timeout
        with self._lock:
            while action_id not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no response to {name}")
                self._lock.wait(left)
            return self._responses.pop(action_id)

    def wait_event(self, predicate: Callable[[Message], bool], timeout: float = 30) -> Message:
        """Block until an event satisfying ``predicate`` arrived (raises ``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._lock:
            while True:
                for msg in self.events[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0:
                    names = sorted({first(e, "Event") for e in self.events})
                    raise TimeoutError(f"event not seen within {timeout} s; saw {names}")
                self._lock.wait(left)

    def transcript(self) -> bytes:
        """The raw stream received so far (exactly as sent, CRLF line ends)."""
        with self._lock:
            return bytes(self.raw)

    def close(self) -> None:
        """Log off and close the socket."""
        with contextlib.suppress(OSError, TimeoutError):
            self.action("Logoff", timeout=2)
        self._closed = True
        self.sock.close()
