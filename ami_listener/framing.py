"""Bounded, strict AMI framing: bytes in, header dictionaries out.

AMI frames are ``Header: value`` lines separated by CRLF and terminated by an empty line
(``\\r\\n\\r\\n``). panoramisk keeps an unbounded text buffer that it re-scans on every read and
decodes with ``errors='ignore'`` (engineering.md §2), so a caller ID ``0532\\xff\\xfe123``
silently becomes ``0532123``. :class:`FrameDecoder` fixes both:

- the input buffer never holds more than ``max_frame`` bytes: a frame that does not end
  within ``max_frame`` bytes is an *overflow*; the decoder stops (the connection must be
  dropped, because the stream position is lost) and drops what it buffered;
- every frame is decoded as strict UTF-8: a frame with invalid bytes is rejected whole and
  counted, never repaired;
- the terminator scan resumes where it stopped, so a slow frame costs O(n), not O(n²).

Fast path: everything complete in the buffer (all frames up to the last terminator) is cut
out once, decoded as one block and checked with one precompiled regular expression for
control characters; only a block that fails either test is split and checked frame by frame,
so the rejections are exactly those of the per-frame path (UTF-8 is self-synchronising and
the terminators are ASCII, so the block is valid exactly when every frame is).

Pure and synchronous: the protocol layer and the transcript replayer share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

TERMINATOR = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_FRAME = 64 * 1024

# A parsed frame: header name (as Asterisk spelled it) -> value. Repeated ``ChanVariable``
# headers (``[prefix]ChanVariable: NAME=value``) become ``[prefix]ChanVariable(NAME)`` keys;
# any other repeated header keeps its first value.
AmiEvent = Mapping[str, str]


def chanvar_key(name: str, prefix: str = "") -> str:
    """The key under which :func:`parse_frame` stores channel variable ``name``."""
    return f"{prefix}ChanVariable({name})"


@dataclass
class DecoderStats:
    """Counters kept by one decoder (one connection)."""

    frames: int = 0
    bad_encoding: int = 0  # frames rejected for invalid UTF-8
    malformed: int = 0  # frames without any ``Header: value`` line or without Event/Response
    overflows: int = 0
    bytes_in: int = 0


@dataclass
class FeedResult:
    """What one :meth:`FrameDecoder.feed` produced."""

    frames: list[dict[str, str]] = field(default_factory=list)
    overflow: bool = False  # the connection must be closed: a frame exceeded max_frame


class FrameDecoder:
    """Split a byte stream into AMI frames with a hard memory bound.

    ``len(self.buffer) <= max_frame`` holds after every call, whatever the input. After an
    overflow the decoder is *closed*: further input is ignored (a new connection gets a new
    decoder).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 64:
            raise ValueError("max_frame must be at least 64 bytes")
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.stats = DecoderStats()
        self.closed = False
        self.banner: str | None = None
        self._scan_from = 0
        self._at_start = True

    def feed(self, data: bytes) -> FeedResult:
        """Consume ``data``; return the complete, valid frames it finished."""
        result = FeedResult()
        if self.closed:
            return result
        self.stats.bytes_in += len(data)
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            room = self.max_frame - len(self.buffer)
            piece = view[pos : pos + room]
            pos += len(piece)
            self.buffer += piece
            self._extract(result)
            if len(self.buffer) >= self.max_frame:
                self._overflow(result)
                return result
        return result

    def _overflow(self, result: FeedResult) -> None:
        self.stats.overflows += 1
        self.buffer.clear()
        self._scan_from = 0
        self.closed = True
        result.overflow = True

    def _extract(self, result: FeedResult) -> None:
        if self._at_start and not self._take_banner():
            return
        buffer = self.buffer
        end = buffer.rfind(TERMINATOR, max(0, self._scan_from - 3))
        if end < 0:
            self._scan_from = len(buffer)
            return
        block = bytes(buffer[:end])  # every complete frame, the last terminator left out
        del buffer[: end + len(TERMINATOR)]
        self._scan_from = 0
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or not _clean_text(text):
            for raw in block.split(TERMINATOR):  # slow path: find and count the bad ones
                frame = self._decode(raw)
                if frame is not None:
                    result.frames.append(frame)
            return
        frames = result.frames
        stats = self.stats
        for piece in text.split("\r\n\r\n"):
            if piece[:1] in ("\r", "\n"):
                piece = piece.lstrip("\r\n")
            if not piece:
                continue
            frame = _parse_clean(piece)
            if frame is None:
                stats.malformed += 1
            else:
                stats.frames += 1
                frames.append(frame)

    def _take_banner(self) -> bool:
        """Strip the one-line greeting ``Asterisk Call Manager/x.y.z\\r\\n`` if present."""
        head = bytes(self.buffer[: len(BANNER_PREFIX)])
        if not BANNER_PREFIX.startswith(head):
            self._at_start = False
            return True
        if len(head) < len(BANNER_PREFIX):
            return False  # wait for more bytes
        eol = self.buffer.find(b"\r\n")
        if eol < 0:
            return False
        line = bytes(self.buffer[:eol])
        del self.buffer[: eol + 2]
        self._at_start = False
        try:
            self.banner = line.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.bad_encoding += 1
        return True

    def _decode(self, raw: bytes) -> dict[str, str] | None:
        raw = raw.lstrip(b"\r\n")
        if not raw:
            return None
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            self.stats.bad_encoding += 1
            return None
        frame = parse_frame(text)
        if frame is None:
            self.stats.malformed += 1
            return None
        self.stats.frames += 1
        return frame


# Control characters other than tab (a lone CR or LF inside a line included).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Control characters other than tab, CR and LF.
_CONTROL_NOT_CRLF = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(text: str) -> bool:
    """The ``_CONTROL`` test for text that keeps its CRLF line ends and terminators: no
    control character but tab, and every CR and every LF part of a CRLF pair (CRLF pairs
    cannot overlap, so equal counts prove it). C-level scans only.

    First try: with the CRLF pairs and tabs taken out, printable text has no control
    character at all (nor a lone CR or LF). Text that is not printable for another reason
    (a no-break space, a format character) gets the exact test."""
    if text.replace("\r\n", "").replace("\t", "").isprintable():
        return True
    if _CONTROL_NOT_CRLF.search(text) is not None:
        return False
    pairs = text.count("\r\n")
    return text.count("\r") == pairs and text.count("\n") == pairs


def parse_frame(text: str) -> dict[str, str] | None:
    """Parse one frame's text (without its terminator) into headers.

    Returns ``None`` when the text has no ``Event`` or ``Response`` header, or contains
    control characters other than tab (never repaired, like invalid bytes).
    """
    if _CONTROL.search(text.replace("\r\n", "")):
        return None
    return _parse_clean(text)


# Header name -> 0 (not a header: empty, padded or with a space), 1 (plain) or 2 (a
# ``[prefix]ChanVariable``). Asterisk uses a few hundred names; the cache is bounded anyway.
_KINDS: dict[str, int] = {}
_KINDS_MAX = 4096


def _kind(key: str) -> int:
    kind = _KINDS.get(key)
    if kind is None:
        if not key or key != key.strip() or " " in key:
            kind = 0
        elif key.endswith("ChanVariable"):
            kind = 2
        else:
            kind = 1
        if len(_KINDS) < _KINDS_MAX:
            _KINDS[key] = kind
    return kind


def _parse_clean(text: str) -> dict[str, str] | None:
    """:func:`parse_frame` for text already known to be free of control characters."""
    headers: dict[str, str] = {}
    kinds = _KINDS
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue  # an empty line, body text of a Response: Follows, or junk: ignored
        kind = kinds.get(key)
        if kind is None:
            kind = _kind(key)
        if kind == 1:
            if key not in headers:  # a repeated header keeps its first value
                headers[key] = value[1:] if value[:1] == " " else value
        elif kind == 2:
            name, eq, var_value = (value[1:] if value[:1] == " " else value).partition("=")
            if eq and name:
                headers.setdefault(f"{key}({name})", var_value)
    if "Event" not in headers and "Response" not in headers:
        return None
    return headers


def iter_frames(chunks: Iterable[bytes], max_frame: int = DEFAULT_MAX_FRAME) -> Iterator[AmiEvent]:
    """Decode a whole recorded stream (e.g. a transcript file) with the live decoder."""
    decoder = FrameDecoder(max_frame)
    for chunk in chunks:
        result = decoder.feed(chunk)
        yield from result.frames
        if result.overflow:
            return


def transcript_bytes(data: bytes) -> bytes:
    """Normalise a recorded transcript to CRLF line ends (files edited by hand may use LF)."""
    if b"\r\n" in data:
        return data
    return data.replace(b"\n", b"\r\n")
