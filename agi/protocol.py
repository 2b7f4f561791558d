"""The AGI wire protocol as Asterisk speaks it over FastAGI, on top of panoramisk's Request.

panoramisk 1.4's ``Request.send_command`` is kept as the entry point but replaced here
because, as shipped, it (a) waits forever for a reply (a stuck channel pins the handler),
(b) decodes replies strictly, so one undecodable byte in a variable kills the route with an
unexplained ``UnicodeDecodeError``, (c) does not recognise the ``HANGUP`` line Asterisk sends
unsolicited to FastAGI scripts, and (d) reads only the first line of a ``520-`` usage error.
Commands are written with :func:`quote` so that no value can break the line protocol.

Asterisk's reply lines (``res_agi.c``)::

    200 result=1                      success (SET VARIABLE, ...)
    200 result=0                      GET VARIABLE: not set
    200 result=1 (value)              GET VARIABLE: value
    200 result=5                      GET DATA: the digits pressed
    200 result= (timeout)             GET DATA: nothing pressed
    200 result=-1                     failure or hangup during the command
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows: ... 520 End of proper usage.
    HANGUP                            (unsolicited) the channel hung up
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from panoramisk.fast_agi import Request

if TYPE_CHECKING:
    from agi.server import AgiContext

MAX_VALUE_CHARS = 512  # Asterisk reads a command into a 2 KiB buffer (AGI_BUF_LEN)
MAX_REPLY_BYTES = 8192
_REPLY = re.compile(r"^(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)$")
_RESULT = re.compile(r"^result=(?P<result>\S*)(?:\s+\((?P<data>.*)\))?(?:\s+(?P<extra>.*))?$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\([A-Za-z0-9_,-]*\))?$")


class AgiError(Exception):
    """The AGI conversation cannot go on (the route should stop)."""


class AgiHangup(AgiError):
    """The channel hung up (``HANGUP`` line, ``511``, ``result=-1`` or the socket closed)."""


class AgiCommandError(AgiError):
    """Asterisk refused a command (``510``/``520`` or an unexpected reply)."""


@dataclass(frozen=True)
class AgiReply:
    code: int
    result: str  # what follows ``result=`` ("" for a GET DATA timeout)
    data: str | None  # the text in parentheses: a variable's value, "timeout"...
    line: str


def quote(value: object) -> str:
    """A double-quoted AGI argument Asterisk parses back to exactly ``value`` (sanitised).

    Asterisk's ``parse_args`` treats ``\\`` as an escape and ``"`` as grouping, and a newline
    ends the command: control characters (CR, LF, NUL, ...) are dropped, backslashes and
    quotes escaped, and the value capped at :data:`MAX_VALUE_CHARS` characters.
    """
    text = "".join(ch for ch in str(value) if ch.isprintable() or ch == " ")[:MAX_VALUE_CHARS]
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_reply(line: str) -> AgiReply:
    """Parse one reply line (the 520 continuation lines are read by the caller)."""
    match = _REPLY.match(line)
    if match is None:
        raise AgiCommandError(f"unexpected AGI reply {line!r}")
    code = int(match["code"])
    result, data = "", None
    if code == 200:
        found = _RESULT.match(match["rest"])
        if found is None:
            raise AgiCommandError(f"unexpected AGI reply {line!r}")
        result, data = found["result"], found["data"]
    return AgiReply(code=code, result=result, data=data, line=line)


class AgiRequest(Request):  # type: ignore[misc]  # panoramisk ships no type hints
    """One FastAGI session: the ``agi_*`` headers and the command channel to Asterisk."""

    headers: Mapping[str, str]
    app: Any
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def __init__(
        self,
        app: Any,
        headers: Mapping[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: AgiContext,
    ) -> None:
        super().__init__(app=app, headers=headers, reader=reader, writer=writer)
        self.context = context
        self.hung_up = False

    # -- headers ---------------------------------------------------------------------------
    def header(self, name: str) -> str | None:
        """A header value; ``None`` when missing or when it carried undecodable bytes.

        Headers are decoded with ``surrogateescape`` so that bad bytes are never dropped
        silently (panoramisk's ``errors='ignore'`` elsewhere would turn ``0532\\xff123``
        into another number); a value that contains them is treated as unusable.
        """
        value = self.headers.get(name)
        if value is None or has_undecodable(value):
            return None
        return value

    def argument(self, position: int) -> str | None:
        """AGI argument ``position`` (1-based, ``agi_arg_N``), stripped; None when empty."""
        value = self.header(f"agi_arg_{position}")
        return value.strip() or None if value is not None else None

    # -- commands --------------------------------------------------------------------------
    async def send_command(self, command: str) -> AgiReply:
        """Send one command line and return Asterisk's reply (bounded in time and size)."""
        if self.hung_up:
            raise AgiHangup("channel already hung up")
        if "\n" in command or "\r" in command:
            raise ValueError("an AGI command must be a single line")
        self.writer.write(command.encode("utf-8") + b"\n")
        await self.writer.drain()
        timeout = self.context.command_timeout
        line = await self._read_line(timeout)
        if line == "HANGUP":
            self.hung_up = True
            raise AgiHangup("HANGUP received")
        reply = parse_reply(line)
        if reply.code == 520:
            while not line.startswith("520 "):  # usage text until "520 End of proper usage."
                line = await self._read_line(timeout)
            raise AgiCommandError(f"usage error for {command.split(' ', 2)[:2]}")
        if reply.code == 511:
            self.hung_up = True
            raise AgiHangup(reply.line)
        if reply.code != 200:
            raise AgiCommandError(reply.line)
        return reply

    async def _read_line(self, timeout: float) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
        except (TimeoutError, ValueError) as exc:  # ValueError: line over the stream limit
            raise AgiError(f"no usable reply from Asterisk: {exc!r}") from exc
        if not raw.endswith(b"\n"):
            self.hung_up = True
            raise AgiHangup("connection closed by Asterisk")
        return raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")

    async def set_variable(self, name: str, value: object) -> None:
        if not _VAR_NAME.match(name):
            raise ValueError(f"not a channel variable name: {name!r}")
        await self.send_command(f"SET VARIABLE {name} {quote(value)}")

    async def get_variable(self, name: str) -> str | None:
        """The variable's value; ``None`` when unset, empty or not decodable."""
        if not _VAR_NAME.match(name):
            raise ValueError(f"not a channel variable name: {name!r}")
        reply = await self.send_command(f"GET VARIABLE {name}")
        if reply.result != "1" or not reply.data or has_undecodable(reply.data):
            return None
        return reply.data

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``prompt`` and collect up to ``max_digits`` keys; "" when nothing was pressed."""
        reply = await self.send_command(f"GET DATA {prompt} {int(timeout_ms)} {int(max_digits)}")
        if reply.result == "-1":
            self.hung_up = True
            raise AgiHangup("GET DATA failed (hangup)")
        return "" if reply.data == "timeout" else reply.result

    async def stream_file(self, prompt: str) -> None:
        """Play ``prompt`` without accepting keys (a missing file is logged by Asterisk)."""
        await self.send_command(f'STREAM FILE {prompt} ""')


def has_undecodable(value: str) -> bool:
    """True when ``value`` holds bytes that were not UTF-8 (lone surrogates)."""
    return any("\udc80" <= ch <= "\udcff" for ch in value)
