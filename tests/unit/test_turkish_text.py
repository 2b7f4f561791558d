"""Unit tests for services.turkish_text (pure logic, no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.turkish_text import fold_key, tr_lower, tr_title, tr_upper

TURKISH = "abcçdefgğhıijklmnoöprsştuüvyz ABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZ"
turkish_text = st.text(alphabet=TURKISH, max_size=40)


def test_tr_upper() -> None:
    assert tr_upper("istanbul ılık") == "İSTANBUL ILIK"
    assert tr_upper("çiğdem şükür") == "ÇİĞDEM ŞÜKÜR"


def test_tr_lower() -> None:
    assert tr_lower("IŞIK İNCİ") == "ışık inci"
    assert tr_lower("İ") == "i"  # one character, unlike str.lower (i + combining dot)
    assert tr_lower("ÇAĞRI ÖZGÜR") == "çağrı özgür"


def test_tr_title() -> None:
    assert tr_title("iNCİ ışık") == "İnci Işık"
    assert tr_title("  ışıl  IRMAK ") == "Işıl  Irmak"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ayşe-gül yılmaz", "Ayşe-Gül Yılmaz"),
        ("İLKE-IŞIL", "İlke-Işıl"),
        ("ali ihsan öz-ışık", "Ali İhsan Öz-Işık"),
    ],
)
def test_tr_title_hyphenated(raw: str, expected: str) -> None:
    assert tr_title(raw) == expected


def test_fold_key_street_forms() -> None:
    assert fold_key("Atatürk Cad. No:5") == fold_key("ATATÜRK CAD NO 5") == "ataturk cad no 5"


def test_fold_key_dotted_and_dotless_i() -> None:
    assert fold_key("İnönü") == fold_key("INÖNÜ") == fold_key("inonu") == "inonu"
    assert fold_key("Işık") == fold_key("IŞIK") == "isik"


def test_fold_key_decomposed_input() -> None:
    decomposed = "I\u0307no\u0308nu\u0308"  # İnönü written with combining marks
    assert fold_key(decomposed) == "inonu"


def test_fold_key_collapses_punctuation_and_whitespace() -> None:
    assert fold_key("  Cumhuriyet   Mah. / 12. Sk. ") == "cumhuriyet mah 12 sk"


def test_fold_key_distinguishes_different_words() -> None:
    assert fold_key("Atatürk Cad.") != fold_key("Atatürk Sk.")


@given(turkish_text)
def test_lower_of_upper_is_lower(s: str) -> None:
    assert tr_lower(tr_upper(s)) == tr_lower(s)


@given(turkish_text)
def test_upper_of_lower_is_upper(s: str) -> None:
    assert tr_upper(tr_lower(s)) == tr_upper(s)


@given(turkish_text)
def test_case_mapping_keeps_length_and_alphabet(s: str) -> None:
    upper, lower = tr_upper(s), tr_lower(s)
    assert len(upper) == len(lower) == len(s)
    assert set(upper) <= set(TURKISH)
    assert set(lower) <= set(TURKISH)
    assert "i" not in upper and "ı" not in upper
    assert "I" not in lower and "İ" not in lower


@given(turkish_text)
def test_fold_key_is_case_insensitive_and_ascii(s: str) -> None:
    key = fold_key(s)
    assert key == fold_key(tr_upper(s)) == fold_key(tr_lower(s))
    assert key.isascii()
    assert key == key.strip()
