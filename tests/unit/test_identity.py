"""Unit tests for services.identity: TC numbers, phone numbers, e-mail addresses (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.enums import PhoneType
from services.errors import DomainError, InvalidEmail, InvalidPhoneNumber, InvalidTcNumber
from services.identity import is_mobile, normalise_email, normalise_phone, normalise_tc_number

# ------------------------------------------------------------------------------- TC numbers


def _tc_from_nine(first_nine: list[int]) -> str:
    """Complete nine digits to a TC number with the published check-digit rule."""
    d = first_nine
    odd = d[0] + d[2] + d[4] + d[6] + d[8]
    even = d[1] + d[3] + d[5] + d[7]
    d10 = (7 * odd - even) % 10
    d11 = (sum(d) + d10) % 10
    return "".join(str(x) for x in [*d, d10, d11])


valid_tc_numbers = st.builds(
    lambda first, rest: _tc_from_nine([first, *rest]),
    st.integers(min_value=1, max_value=9),
    st.lists(st.integers(min_value=0, max_value=9), min_size=8, max_size=8),
)


def test_known_valid_tc_number_is_accepted() -> None:
    # 1,0,0,0,0,0,0,0,1 -> d10 = 7*2 - 0 = 14 -> 4; d11 = (2 + 4) = 6.
    assert normalise_tc_number("10000000146") == "10000000146"


@given(valid_tc_numbers)
def test_valid_tc_number_is_returned_unchanged(tc: str) -> None:
    assert len(tc) == 11
    assert normalise_tc_number(tc) == tc


@given(valid_tc_numbers, st.data())
def test_valid_tc_number_with_spaces_between_digits_is_accepted(
    tc: str, data: st.DataObject
) -> None:
    gaps = data.draw(st.lists(st.sampled_from(["", " ", "  ", "\u00a0"]), min_size=10, max_size=10))
    spaced = tc[0] + "".join(gap + digit for gap, digit in zip(gaps, tc[1:], strict=True))
    assert normalise_tc_number(f" {spaced} ") == tc


@given(valid_tc_numbers, st.integers(min_value=0, max_value=10), st.integers(1, 9))
def test_changing_one_digit_of_a_tc_number_is_rejected(tc: str, position: int, shift: int) -> None:
    # Every position is covered by a check digit with a multiplier coprime to 10
    # (odd positions x7, even positions x-1, d10 and d11 directly), so any single change
    # breaks a check digit; a leading zero is refused anyway.
    new_digit = (int(tc[position]) + shift) % 10
    mutated = tc[:position] + str(new_digit) + tc[position + 1 :]
    assert mutated != tc
    with pytest.raises(InvalidTcNumber):
        normalise_tc_number(mutated)


INVALID_TC_INPUTS = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("1000000014", id="ten-digits"),
    pytest.param("100000001460", id="twelve-digits"),
    pytest.param("1000000014A", id="letter"),
    pytest.param("10000-000146", id="dash"),
    pytest.param("10000000147", id="bad-checksum"),
    pytest.param("00000000000", id="leading-zero"),
    pytest.param("1000000014٦", id="arabic-indic-digit"),
    pytest.param("١٠٠٠٠٠٠٠١٤٦", id="all-arabic-indic"),
    pytest.param("１0000000146", id="full-width-digit"),
    pytest.param("１００００００００１４６", id="all-full-width"),
    pytest.param("1000000014²", id="superscript-digit"),
]


@pytest.mark.parametrize("raw", INVALID_TC_INPUTS)
def test_invalid_tc_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidTcNumber) as info:
        normalise_tc_number(raw)
    _assert_bilingual(info.value)


def _assert_bilingual(error: DomainError) -> None:
    assert error.message_tr.strip()
    assert error.message_en.strip()
    assert error.message_tr != error.message_en
    assert error.message("en") == error.message_en
    assert error.message("tr") == error.message_tr
    assert error.message() == error.message_tr


# ----------------------------------------------------------------------------------- phones

MOBILE_PREFIXES = [
    *range(530, 540),
    *range(541, 550),
    501,
    505,
    506,
    507,
    *range(551, 556),
    559,
]


def _forms(prefix: str, sub: str) -> list[str]:
    return [
        f"0{prefix}{sub}",
        f"0{prefix} {sub[:3]} {sub[3:5]} {sub[5:]}",
        f"({prefix}) {sub[:3]} {sub[3:5]} {sub[5:]}",
        f"+90 {prefix} {sub[:3]} {sub[3:]}",
        f"90{prefix}{sub}",
        f"0090 {prefix} {sub[:3]} {sub[3:5]} {sub[5:]}",
        f"{prefix}-{sub[:3]}-{sub[3:5]}-{sub[5:]}",
    ]


mobile_numbers = st.tuples(
    st.sampled_from(MOBILE_PREFIXES).map(str),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
)


@given(mobile_numbers, st.sampled_from(["", " ", "  ", "\t"]), st.sampled_from(["", " ", "\n"]))
def test_all_written_forms_of_a_mobile_give_the_same_e164(
    number: tuple[str, str], before: str, after: str
) -> None:
    prefix, sub = number
    expected = "+90" + prefix + sub
    for form in _forms(prefix, sub):
        result = normalise_phone(before + form + after)
        assert result.e164 == expected, form
        assert result.phone_type is PhoneType.MOBILE, form
        assert result.raw == form
        assert is_mobile(result.e164)


def test_example_mobile_forms() -> None:
    for form in [
        "05321234567",
        "0532 123 45 67",
        "(532) 123 45 67",
        "+90 532 123 4567",
        "905321234567",
        "0090 532 123 45 67",
        "532-123-45-67",
    ]:
        assert normalise_phone(form).e164 == "+905321234567", form


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("0216 123 45 67", "+902161234567"), ("0212 123 45 67", "+902121234567")],
)
def test_istanbul_landline_is_home(raw: str, e164: str) -> None:
    result = normalise_phone(raw)
    assert result.e164 == e164
    assert result.phone_type is PhoneType.HOME
    assert not is_mobile(result.e164)


@pytest.mark.parametrize("raw", ["444 80 07", "4448007"])
def test_uan_number_is_valid_but_other(raw: str) -> None:
    result = normalise_phone(raw)
    assert result.e164 == "+904448007"
    assert result.phone_type is PhoneType.OTHER
    assert not is_mobile(result.e164)


def test_foreign_mobile_is_mobile() -> None:
    result = normalise_phone("+44 7911 123456")
    assert result.e164 == "+447911123456"
    assert result.phone_type is PhoneType.MOBILE
    assert is_mobile(result.e164)


@pytest.mark.parametrize("raw", ["anonymous", "", "Unknown", "  ANONYMOUS ", "gizli", "Private"])
def test_withheld_caller_ids_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise_phone(raw)
    _assert_bilingual(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("abc", id="letters"),
        pytest.param("0532\ufffd123", id="replacement-char"),
        pytest.param("0532\x00123", id="nul"),
        pytest.param("0532 123 45 67" * 7 + "12", id="100-chars"),
        pytest.param("5" * 100, id="100-digits"),
        pytest.param("0532 123 45", id="too-short"),
        pytest.param("0000 000 00 00", id="zeros"),
    ],
)
def test_garbage_phone_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalise_phone(raw)
    _assert_bilingual(info.value)


# ---------------------------------------------------------------------------------- e-mail


def test_email_domain_is_lower_cased_and_local_part_kept() -> None:
    assert normalise_email(" Ayşe.Yılmaz@Example.COM.TR ") == "Ayşe.Yılmaz@example.com.tr"
    assert normalise_email("info@belediye.gov.tr") == "info@belediye.gov.tr"


_local = st.text(alphabet="abcXYZ019._+-", min_size=1, max_size=20)
_label = st.text(alphabet="abcdefXYZ0129-", min_size=1, max_size=10)


@given(_local, st.lists(_label, min_size=2, max_size=4))
def test_email_property(local: str, labels: list[str]) -> None:
    domain = ".".join(labels)
    result = normalise_email(f"{local}@{domain}")
    got_local, got_domain = result.rsplit("@", 1)
    assert got_local == local
    assert got_domain == domain.lower()
    assert not any(c.isupper() for c in got_domain)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plain",
        "a@b",
        "a b@c.com",
        "@example.com",
        "a@@example.com",
        "a@example.",
        "x" * 250 + "@example.com",
    ],
)
def test_invalid_emails_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        normalise_email(raw)
    _assert_bilingual(info.value)


@given(st.text(alphabet="abc.@ ", max_size=12))
def test_email_result_always_has_exactly_the_input_local_part(raw: str) -> None:
    try:
        result = normalise_email(raw)
    except InvalidEmail:
        return
    assert result.count("@") == 1
    assert result.split("@")[0] == raw.strip().split("@")[0]
