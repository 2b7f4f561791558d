"""SMS encoding and segmentation: GSM-7 or UCS-2, single or concatenated (issue 5).

Pure functions, no I/O. :func:`encode_sms` picks the encoding and splits the text into the
parts a gateway submits:

- **GSM-7** (SMPP ``data_coding`` 0) when every character is in the 3GPP TS 23.038 default
  alphabet or its extension table (``^ { } \\ [ ~ ] | €`` and form feed, two septets each).
  One message holds 160 septets; a concatenated part 153 (the 6-octet UDH takes 7 septets).
- **UCS-2** (``data_coding`` 8) otherwise, as UTF-16 big-endian: one message holds 70 code
  units, a part 67. Characters outside the Basic Multilingual Plane take a surrogate pair.

Turkish: ``Ç Ö Ü ö ü`` are in the default alphabet, ``ç ğ Ğ ı İ ş Ş`` are not, so most Turkish
texts go out as UCS-2. The national language shift tables are deliberately not used
(docs/decisions/0011-sms-encoding.md).

Parts never split an escape sequence (GSM-7) or a surrogate pair (UCS-2). Concatenated parts
carry the 8-bit reference UDH ``05 00 03 <ref> <total> <n>``. GSM-7 bodies are unpacked (one
septet per octet), the form SMPP expects in ``short_message``; the SMSC packs them.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass

# 3GPP TS 23.038 §6.2.1, default alphabet, index = septet value. 0x1B is the escape to the
# extension table and never maps to a character of its own.
_GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(_GSM_DEFAULT) == 128
ESCAPE = 0x1B
# 3GPP TS 23.038 §6.2.1.1, default alphabet extension table (preceded by ESC).
_GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_GSM_BASIC = {ch: i for i, ch in enumerate(_GSM_DEFAULT) if i != ESCAPE}
_GSM_EXTENSION_REVERSE = {v: k for k, v in _GSM_EXTENSION.items()}

GSM7_SINGLE = 160  # septets in one message
GSM7_PART = 153  # septets in one concatenated part
UCS2_SINGLE = 70  # UTF-16 code units in one message
UCS2_PART = 67  # UTF-16 code units in one concatenated part
MAX_PARTS = 255  # the 8-bit concatenation header counts parts in one octet
UDH_CONCAT_LENGTH = 6  # 05 00 03 ref total seq
USER_DATA_OCTETS = 140  # one SMS carries 140 octets of user data
ESM_CLASS_UDHI = 0x40  # SMPP esm_class: short_message starts with a UDH


class SmsEncoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"

    @property
    def data_coding(self) -> int:
        """The SMPP ``data_coding`` value (0: SMSC default alphabet, 8: UCS-2)."""
        return 0 if self is SmsEncoding.GSM7 else 8


class SmsEncodingError(ValueError):
    """The text cannot be sent as SMS (empty, or more than 255 parts)."""


@dataclass(frozen=True)
class SmsPart:
    """One segment as submitted: ``payload`` goes into SMPP ``short_message``."""

    number: int  # 1-based
    text: str  # the slice of the message this part carries
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2) of the body
    udh: bytes  # b"" for a single-part message
    body: bytes  # GSM-7: one septet per octet (unpacked); UCS-2: UTF-16-BE

    @property
    def payload(self) -> bytes:
        return self.udh + self.body


@dataclass(frozen=True)
class EncodedSms:
    """The whole message: encoding, counts and parts ready for submission."""

    text: str
    encoding: SmsEncoding
    characters: int  # Unicode code points of ``text``
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text
    parts: tuple[SmsPart, ...]
    reference: int | None  # concatenation reference (None for a single-part message)

    @property
    def data_coding(self) -> int:
        return self.encoding.data_coding

    @property
    def esm_class(self) -> int:
        return ESM_CLASS_UDHI if len(self.parts) > 1 else 0


def gsm7_septets(char: str) -> int | None:
    """Septets ``char`` takes in GSM-7 (1, or 2 via the extension table), None if absent."""
    if char in _GSM_BASIC:
        return 1
    if char in _GSM_EXTENSION:
        return 2
    return None


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent in GSM-7."""
    return all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text)


def _gsm7_bytes(char: str) -> bytes:
    if char in _GSM_BASIC:
        return bytes((_GSM_BASIC[char],))
    return bytes((ESCAPE, _GSM_EXTENSION[char]))


def _ucs2_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def reference_for(key: str) -> int:
    """A stable 8-bit concatenation reference for an idempotency key.

    A resend of the same message reuses the reference, so a handset that already holds some
    parts completes the same message instead of showing a second, broken one.
    """
    return zlib.crc32(key.encode("utf-8")) & 0xFF


def encode_sms(text: str, *, reference: int = 0) -> EncodedSms:
    """Encode ``text`` for submission; see the module docstring for the rules.

    ``reference`` (0–255) is the concatenation reference used when more than one part is
    needed. Raises :class:`SmsEncodingError` for an empty text or one needing >255 parts.
    """
    if not text:
        raise SmsEncodingError("empty SMS text")
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"concatenation reference out of range: {reference}")
    if is_gsm7(text):
        encoding = SmsEncoding.GSM7
        sizes = [1 if ch in _GSM_BASIC else 2 for ch in text]
        single, per_part = GSM7_SINGLE, GSM7_PART
    else:
        encoding = SmsEncoding.UCS2
        sizes = [_ucs2_units(ch) for ch in text]
        single, per_part = UCS2_SINGLE, UCS2_PART
    total = sum(sizes)
    if total <= single:
        chunks = [(text, total)]
    else:
        chunks = []
        start, used = 0, 0
        for i, size in enumerate(sizes):
            if used + size > per_part:  # the character would be split: it opens the next part
                chunks.append((text[start:i], used))
                start, used = i, 0
            used += size
        chunks.append((text[start:], used))
    if len(chunks) > MAX_PARTS:
        raise SmsEncodingError(f"SMS text needs {len(chunks)} parts (at most {MAX_PARTS})")
    count = len(chunks)
    parts = []
    for number, (chunk, units) in enumerate(chunks, start=1):
        if encoding is SmsEncoding.GSM7:
            body = b"".join(_gsm7_bytes(ch) for ch in chunk)
        else:
            body = chunk.encode("utf-16-be")
        udh = bytes((0x05, 0x00, 0x03, reference, count, number)) if count > 1 else b""
        parts.append(SmsPart(number=number, text=chunk, units=units, udh=udh, body=body))
    return EncodedSms(
        text=text,
        encoding=encoding,
        characters=len(text),
        units=total,
        parts=tuple(parts),
        reference=reference if count > 1 else None,
    )


def user_data_bits(part: SmsPart, encoding: SmsEncoding) -> int:
    """Bits the part occupies on the air interface (at most 140 octets = 1120 bits).

    GSM-7 septets after a UDH start on a septet boundary, hence the fill bits.
    """
    udh_bits = len(part.udh) * 8
    if encoding is SmsEncoding.GSM7:
        fill = (-udh_bits) % 7
        return udh_bits + fill + len(part.body) * 7
    return udh_bits + len(part.body) * 8


# --- decoding (inbound messages, test SMSC, round-trip checks) ---


def decode_gsm7(body: bytes) -> str:
    """Unpacked GSM-7 septets (one per octet) to text; unknown escapes read as a space
    (TS 23.038: the receiving entity shows a space for an unknown extension character)."""
    out = []
    escaped = False
    for octet in body:
        septet = octet & 0x7F
        if escaped:
            out.append(_GSM_EXTENSION_REVERSE.get(septet, " "))
            escaped = False
        elif septet == ESCAPE:
            escaped = True
        else:
            out.append(_GSM_DEFAULT[septet])
    return "".join(out)


def decode_ucs2(body: bytes) -> str:
    """UTF-16-BE (UCS-2 as handsets send it) to text; a stray odd byte is an error."""
    return body.decode("utf-16-be")


@dataclass(frozen=True)
class Concatenation:
    """The concatenation information element of a UDH (8- or 16-bit reference)."""

    reference: int
    total: int
    number: int


def split_udh(payload: bytes) -> tuple[Concatenation | None, bytes]:
    """Separate the user data header from the body of a ``short_message`` with UDHI set.

    Returns the concatenation element (8-bit IE 0x00 or 16-bit IE 0x08) if present. Raises
    ``ValueError`` when the header is truncated.
    """
    if not payload:
        raise ValueError("empty user data with UDHI set")
    length = payload[0]
    header = payload[1 : 1 + length]
    if len(header) != length:
        raise ValueError("truncated user data header")
    concat = None
    i = 0
    while i + 2 <= len(header):
        iei, iel = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + iel]
        if len(value) != iel:
            raise ValueError("truncated information element in the user data header")
        if iei == 0x00 and iel == 3:
            concat = Concatenation(reference=value[0], total=value[1], number=value[2])
        elif iei == 0x08 and iel == 4:
            concat = Concatenation(
                reference=(value[0] << 8) | value[1], total=value[2], number=value[3]
            )
        i += 2 + iel
    return concat, payload[1 + length :]


def decode_body(body: bytes, data_coding: int) -> str:
    """Text of a body in SMPP ``data_coding`` 0 (GSM-7), 1 (IA5/ASCII), 3 (Latin-1) or
    8 (UCS-2). Raises ``ValueError`` for codings a phone does not send as text.
    """
    if data_coding == 0:
        return decode_gsm7(body)
    if data_coding == 1:
        return body.decode("ascii")
    if data_coding == 3:
        return body.decode("latin-1")
    if data_coding == 8:
        return decode_ucs2(body)
    raise ValueError(f"unsupported data_coding {data_coding}")
