"""Turkish-aware casing and folding (İ/i and I/ı are different letters in Turkish).

Python's ``str.upper``/``lower`` follow the default Unicode mapping (``"i".upper() == "I"``),
which is wrong for Turkish names. Use these helpers wherever case matters.
"""

from __future__ import annotations

import re
import unicodedata

_TO_UPPER = str.maketrans({"i": "İ", "ı": "I"})
_TO_LOWER = str.maketrans({"İ": "i", "I": "ı"})
_ASCII_FOLD = str.maketrans(
    {"ç": "c", "ğ": "g", "ı": "i", "ö": "o", "ş": "s", "ü": "u", "â": "a", "î": "i", "û": "u"}
)
_NON_WORD = re.compile(r"[^\w]+")


def tr_upper(text: str) -> str:
    """Upper-case with Turkish rules: ``"istanbul ılık" -> "İSTANBUL ILIK"``."""
    return text.translate(_TO_UPPER).upper()


def tr_lower(text: str) -> str:
    """Lower-case with Turkish rules: ``"IŞIK İNCİ" -> "ışık inci"``."""
    return text.translate(_TO_LOWER).lower()


def tr_title(text: str) -> str:
    """Capitalise each word with Turkish rules: ``"iNCİ ışık" -> "İnci Işık"``."""
    words = re.split(r"(\s+|-)", text.strip())
    return "".join(tr_upper(w[:1]) + tr_lower(w[1:]) if w.strip(" -") else w for w in words)


def fold_key(text: str) -> str:
    """A comparison key: Turkish lower-case, letters folded to ASCII, punctuation collapsed.

    ``"Atatürk Cad. No:5"`` and ``"ATATÜRK CAD NO 5"`` give the same key. Used to recognise
    the same place written differently; never shown to people.
    """
    lowered = tr_lower(unicodedata.normalize("NFC", text)).translate(_ASCII_FOLD)
    decomposed = unicodedata.normalize("NFKD", lowered)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped).strip()
