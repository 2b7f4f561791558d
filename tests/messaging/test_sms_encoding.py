"""SMS encoding: GSM-7 vs UCS-2, counts, concatenated parts (messaging.sms_encoding)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from messaging.sms_encoding import (
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    USER_DATA_OCTETS,
    EncodedSms,
    SmsEncoding,
    SmsEncodingError,
    decode_body,
    encode_sms,
    gsm7_septets,
    is_gsm7,
    reference_for,
    split_udh,
    user_data_bits,
)

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€\f"
TURKISH = "çğıİöşüÇĞÖŞÜ"
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=1200)
GSM_TEXT = st.text(alphabet=GSM_BASIC + GSM_EXTENDED, min_size=1, max_size=1200)
TURKISH_TEXT = st.text(alphabet=GSM_BASIC + TURKISH + " ", min_size=1, max_size=800)


def _decode(encoded: EncodedSms) -> str:
    """What a handset shows: every part decoded and joined in UDH order."""
    texts = {}
    for part in encoded.parts:
        if len(encoded.parts) > 1:
            concat, body = split_udh(part.payload)
            assert concat is not None
            assert concat.total == len(encoded.parts)
            assert concat.reference == encoded.reference
            texts[concat.number] = decode_body(body, encoded.data_coding)
        else:
            assert part.udh == b""
            texts[1] = decode_body(part.payload, encoded.data_coding)
    assert sorted(texts) == list(range(1, len(encoded.parts) + 1))
    return "".join(texts[n] for n in sorted(texts))


def _check_limits(encoded: EncodedSms) -> None:
    single = len(encoded.parts) == 1
    for part in encoded.parts:
        assert user_data_bits(part, encoded.encoding) <= USER_DATA_OCTETS * 8
        if encoded.encoding is SmsEncoding.GSM7:
            assert len(part.body) == part.units  # unpacked: one septet per octet
            assert part.units <= (GSM7_SINGLE if single else GSM7_PART)
            assert part.body[-1:] != b"\x1b"  # an escape is never cut from its character
        else:
            assert len(part.body) == 2 * part.units
            assert part.units <= (UCS2_SINGLE if single else UCS2_PART)
            assert len(part.payload) <= USER_DATA_OCTETS
    assert sum(p.units for p in encoded.parts) == encoded.units
    assert "".join(p.text for p in encoded.parts) == encoded.text


@settings(max_examples=300)
@given(ANY_TEXT, st.integers(0, 255))
@example("Açık Kapı", 0)
@example("😀" * 40, 1)  # surrogate pairs on a part boundary
def test_round_trip_and_limits_for_any_text(text: str, reference: int) -> None:
    encoded = encode_sms(text, reference=reference)
    assert _decode(encoded) == text
    _check_limits(encoded)
    assert encoded.characters == len(text)
    assert encoded.encoding is (SmsEncoding.GSM7 if is_gsm7(text) else SmsEncoding.UCS2)


@settings(max_examples=300)
@given(GSM_TEXT)
@example("€" * 77 + "a")  # escapes straddling the 153-septet boundary
@example("a" + "€" * 80)
def test_gsm7_text_stays_gsm7_and_counts_extension_characters_twice(text: str) -> None:
    encoded = encode_sms(text)
    assert encoded.encoding is SmsEncoding.GSM7
    assert encoded.data_coding == 0
    assert encoded.units == sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
    assert _decode(encoded) == text
    _check_limits(encoded)


@settings(max_examples=300)
@given(TURKISH_TEXT)
def test_turkish_letters_round_trip(text: str) -> None:
    encoded = encode_sms(text)
    needs_ucs2 = any(ch in "çğıİşĞŞ" for ch in text)
    assert encoded.encoding is (SmsEncoding.UCS2 if needs_ucs2 else SmsEncoding.GSM7)
    assert _decode(encoded) == text
    _check_limits(encoded)


@pytest.mark.parametrize("letter", list("ÇÖÜöü"))
def test_turkish_letters_in_the_default_alphabet_keep_gsm7(letter: str) -> None:
    assert gsm7_septets(letter) == 1
    assert encode_sms(f"Gül {letter}").encoding is SmsEncoding.GSM7


@pytest.mark.parametrize("letter", list("çğıİşĞŞ"))
def test_other_turkish_letters_force_ucs2(letter: str) -> None:
    assert gsm7_septets(letter) is None
    encoded = encode_sms(f"Gul {letter}")
    assert encoded.encoding is SmsEncoding.UCS2
    assert encoded.data_coding == 8


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (153 * 255, 255)],
)
def test_gsm7_part_counts_at_the_boundaries(length: int, parts: int) -> None:
    encoded = encode_sms("a" * length)
    assert len(encoded.parts) == parts
    assert encoded.esm_class == (0x40 if parts > 1 else 0)


@pytest.mark.parametrize(("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_part_counts_at_the_boundaries(length: int, parts: int) -> None:
    assert len(encode_sms("ş" * length).parts) == parts


def test_an_extension_character_on_the_single_message_limit_needs_two_parts() -> None:
    assert len(encode_sms("a" * 158 + "€").parts) == 1  # 160 septets
    encoded = encode_sms("a" * 159 + "€")  # 161 septets
    assert len(encoded.parts) == 2
    assert encoded.units == 161


def test_concatenation_header_is_the_8_bit_reference_form() -> None:
    encoded = encode_sms("ş" * 100, reference=0xA7)
    assert [p.udh for p in encoded.parts] == [
        bytes([0x05, 0x00, 0x03, 0xA7, 2, 1]),
        bytes([0x05, 0x00, 0x03, 0xA7, 2, 2]),
    ]
    assert encode_sms("kısa").reference is None


def test_too_long_and_empty_texts_are_refused() -> None:
    with pytest.raises(SmsEncodingError):
        encode_sms("a" * (153 * 255 + 1))
    with pytest.raises(SmsEncodingError):
        encode_sms("")
    with pytest.raises(ValueError):
        encode_sms("a", reference=256)


def test_reference_is_stable_per_key_and_fits_one_octet() -> None:
    assert reference_for("ack:ticket:1") == reference_for("ack:ticket:1")
    refs = {reference_for(f"ack:ticket:{n}") for n in range(2000)}
    assert refs <= set(range(256)) and len(refs) > 200


def test_acknowledgement_in_turkish_costs_two_ucs2_parts() -> None:
    text = (
        "Açık Kapı Belediyesi: Başvurunuz alındı. Başvuru kodunuz 7KMQ-4XR9. "
        "Bilgi için 4448007 numarasını arayabilirsiniz."
    )
    encoded = encode_sms(text)
    assert (encoded.encoding, encoded.units, len(encoded.parts)) == (SmsEncoding.UCS2, 114, 2)
