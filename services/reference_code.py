"""Human-friendly ticket reference codes with a check character (R2.2).

A code is 7 body characters and 1 check character from a 31-letter alphabet without look-
alikes (no 0/O, 1/I/L), shown as ``XXXX-XXXX``. The body is a bijection of the ticket id,
so two tickets can never share a code and no database round trip is needed to find a free
one. The check character makes the weighted sum ``sum(w_i * v_i)`` divisible by 31 with
distinct non-zero weights; because 31 is prime this detects every single-character error
and every swap of two different characters (adjacent or not).
"""

from __future__ import annotations

from services.errors import InvalidReferenceCode

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BASE = len(ALPHABET)  # 31, a prime
BODY_LENGTH = 7
SPACE = BASE**BODY_LENGTH  # 27,512,614,111 distinct bodies
_MULTIPLIER = 7_919_849_041  # coprime with 31: makes consecutive ids look unrelated
_OFFSET = 3_141_592_653
_INVERSE = pow(_MULTIPLIER, -1, SPACE)
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Weights: check character 1, body characters 2..8 (all distinct, non-zero mod 31).
_WEIGHTS = tuple(range(2, BODY_LENGTH + 2))

assert BASE == 31


def _check_char(body: str) -> str:
    total = sum(w * _VALUE[c] for w, c in zip(_WEIGHTS, body, strict=True))
    return ALPHABET[(-total) % BASE]


def encode(ticket_id: int) -> str:
    """The reference code of ticket ``ticket_id`` (1 <= id < 27.5 billion)."""
    if not 0 < ticket_id < SPACE:
        raise ValueError(f"ticket id out of range: {ticket_id}")
    n = (ticket_id * _MULTIPLIER + _OFFSET) % SPACE
    chars = []
    for _ in range(BODY_LENGTH):
        n, digit = divmod(n, BASE)
        chars.append(ALPHABET[digit])
    body = "".join(reversed(chars))
    code = body + _check_char(body)
    return f"{code[:4]}-{code[4:]}"


def normalise(text: str) -> str:
    """Canonical ``XXXX-XXXX`` form of a typed code, or :class:`InvalidReferenceCode`.

    Accepts lower case, spaces and dashes anywhere. Turkish dotted/dotless i never occur in
    codes, so plain ASCII upper-casing is safe here.
    """
    raw = "".join(ch for ch in (text or "") if ch not in " -\t")
    # Upper-case ASCII letters only: str.upper() would expand "ß" to "SS" and accept it.
    compact = "".join(chr(ord(ch) - 32) if "a" <= ch <= "z" else ch for ch in raw)
    if len(compact) != BODY_LENGTH + 1 or any(ch not in _VALUE for ch in compact):
        raise InvalidReferenceCode(
            f"Başvuru kodu geçersiz: {text!r}. Kod 8 karakterdir, örneğin 7KMQ-4XR9.",
            f"Invalid reference code: {text!r}. A code has 8 characters, e.g. 7KMQ-4XR9.",
            value=text,
        )
    if _check_char(compact[:BODY_LENGTH]) != compact[BODY_LENGTH]:
        raise InvalidReferenceCode(
            f"Başvuru kodu hatalı yazılmış olabilir: {text!r} (kontrol karakteri tutmuyor).",
            f"The reference code may be mistyped: {text!r} (check character does not match).",
            value=text,
        )
    return f"{compact[:4]}-{compact[4:]}"


def decode(text: str) -> int:
    """The ticket id behind a valid code (raises :class:`InvalidReferenceCode`)."""
    body = normalise(text).replace("-", "")[:BODY_LENGTH]
    n = 0
    for ch in body:
        n = n * BASE + _VALUE[ch]
    ticket_id: int = ((n - _OFFSET) * _INVERSE) % SPACE
    return ticket_id


def is_valid(text: str) -> bool:
    try:
        normalise(text)
    except InvalidReferenceCode:
        return False
    return True
