"""Unit tests for services.reference_code (pure logic, no database)."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.errors import InvalidReferenceCode
from services.reference_code import ALPHABET, SPACE, decode, encode, is_valid, normalise

ids = st.integers(min_value=1, max_value=10**10)
CODE_FORMAT = re.compile(rf"^[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


def _compact(code: str) -> str:
    return code.replace("-", "")


def _dashed(compact: str) -> str:
    return f"{compact[:4]}-{compact[4:]}"


def test_alphabet_has_no_look_alikes() -> None:
    assert len(ALPHABET) == 31
    assert len(set(ALPHABET)) == 31
    assert not set(ALPHABET) & set("01OIL")


@given(ids)
def test_decode_inverts_encode(ticket_id: int) -> None:
    assert decode(encode(ticket_id)) == ticket_id


@given(ids)
def test_code_format(ticket_id: int) -> None:
    code = encode(ticket_id)
    assert CODE_FORMAT.match(code), code
    assert normalise(code) == code
    assert is_valid(code)


@given(st.sets(ids, min_size=2, max_size=50))
def test_distinct_ids_give_distinct_codes(ticket_ids: set[int]) -> None:
    assert len({encode(i) for i in ticket_ids}) == len(ticket_ids)


def test_first_ten_thousand_codes_are_distinct() -> None:
    assert len({encode(i) for i in range(1, 10_001)}) == 10_000


def test_consecutive_ids_do_not_give_similar_codes() -> None:
    a, b = _compact(encode(1)), _compact(encode(2))
    assert sum(x != y for x, y in zip(a, b, strict=True)) >= 2


@pytest.mark.parametrize("bad_id", [0, -1, SPACE, SPACE + 1])
def test_out_of_range_ids_are_refused(bad_id: int) -> None:
    with pytest.raises(ValueError):
        encode(bad_id)


@given(ids, st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=30))
def test_single_substitution_is_detected(ticket_id: int, position: int, shift: int) -> None:
    compact = _compact(encode(ticket_id))
    replacement = ALPHABET[(ALPHABET.index(compact[position]) + shift) % len(ALPHABET)]
    mutated = compact[:position] + replacement + compact[position + 1 :]
    assert mutated != compact
    with pytest.raises(InvalidReferenceCode):
        normalise(_dashed(mutated))
    assert not is_valid(mutated)


@given(ids, st.integers(min_value=0, max_value=6))
def test_adjacent_swap_is_detected(ticket_id: int, position: int) -> None:
    compact = _compact(encode(ticket_id))
    assume(compact[position] != compact[position + 1])
    chars = list(compact)
    chars[position], chars[position + 1] = chars[position + 1], chars[position]
    with pytest.raises(InvalidReferenceCode):
        normalise(_dashed("".join(chars)))


@given(ids, st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=7))
def test_any_swap_of_different_characters_is_detected(ticket_id: int, i: int, j: int) -> None:
    compact = _compact(encode(ticket_id))
    assume(compact[i] != compact[j])
    chars = list(compact)
    chars[i], chars[j] = chars[j], chars[i]
    assert not is_valid("".join(chars))


def test_lower_case_spaces_and_missing_dash_are_accepted() -> None:
    code = encode(1)
    compact = _compact(code)
    spaced = f"{compact[:4].lower()} {compact[4:].lower()}"
    assert normalise(spaced) == code
    assert normalise(compact) == code
    assert normalise(compact.lower()) == code
    assert normalise(f"  {code.lower()}\t") == code
    assert normalise(" ".join(compact)) == code
    assert decode(spaced) == 1


@given(ids)
def test_typed_variants_decode_to_the_same_id(ticket_id: int) -> None:
    code = encode(ticket_id)
    assert decode(code.lower().replace("-", " ")) == ticket_id


@pytest.mark.parametrize("foreign", ["O", "I", "L", "0", "1", "Ş", "İ", "ı", "Ç", "Ğ", "Ö", "Ü"])
def test_characters_outside_the_alphabet_are_rejected(foreign: str) -> None:
    compact = _compact(encode(12345))
    for position in range(8):
        mutated = compact[:position] + foreign + compact[position + 1 :]
        with pytest.raises(InvalidReferenceCode) as info:
            normalise(mutated)
        assert info.value.message_tr != info.value.message_en
        assert not is_valid(mutated)


@pytest.mark.parametrize(
    "text", ["", "   ", "-", "ABC", "ABCD-EFGH-J", encode(1) + "2", encode(1)[:-1]]
)
def test_wrong_length_is_rejected(text: str) -> None:
    assert not is_valid(text)
    with pytest.raises(InvalidReferenceCode):
        decode(text)


def _first_code_containing(pair: str) -> str:
    return next(code for code in (encode(i) for i in range(1, 100_000)) if pair in _compact(code))


@pytest.mark.parametrize(("pair", "ligature"), [("SS", "ß"), ("ST", "ﬆ")])
def test_unicode_case_expansion_is_not_accepted(pair: str, ligature: str) -> None:
    compact = _compact(_first_code_containing(pair))
    typed = compact.replace(pair, ligature, 1)
    assert len(typed) == 7
    assert not is_valid(typed)
