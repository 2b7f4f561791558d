"""Unit tests for services.message_templates (pure logic, no database)."""

from __future__ import annotations

import string
import unicodedata

import pytest

from services.message_templates import TEMPLATES, render

LANGUAGES = ("tr", "en")
TURKISH_LETTERS = set("çğıöşüÇĞİÖŞÜ")


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _payload(fields: set[str]) -> dict[str, str]:
    """A distinctive value per field, so each can be found in the output."""
    return {field: f"<{field.upper()}-VALUE>" for field in fields}


CASES = [(name, lang) for name in sorted(TEMPLATES) for lang in LANGUAGES]


def test_every_template_has_both_languages() -> None:
    assert TEMPLATES
    for name, texts in TEMPLATES.items():
        assert set(texts) >= set(LANGUAGES), name


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_template_renders_with_all_placeholders(name: str, lang: str) -> None:
    fields = _placeholders(TEMPLATES[name][lang])
    payload = _payload(fields)
    text = render(name, lang, payload)
    for value in payload.values():
        assert value in text
    assert "{" not in text and "}" not in text
    if "reference_code" in fields:
        code = "7KMQ-4XR9"
        assert code in render(name, lang, {**payload, "reference_code": code})


# Replies to an SMS that opened no ticket (no valid TC number): there is no code to carry.
WITHOUT_TICKET = frozenset({"sms_reply_format", "sms_reply_invalid_tc"})
# Staff e-mails about the mayor's weekly list (R5.4) are about several tickets at once.
WITHOUT_TICKET |= {
    "mayor_weekly_list",
    "mayor_weekly_report",
    "mayor_weekly_list_subject",
    "mayor_weekly_report_subject",
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_citizen_and_staff_templates_carry_the_reference_code(name: str) -> None:
    for lang in LANGUAGES:
        has_code = "reference_code" in _placeholders(TEMPLATES[name][lang])
        assert has_code is (name not in WITHOUT_TICKET), (name, lang)


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_missing_placeholder_raises_key_error(name: str, lang: str) -> None:
    fields = _placeholders(TEMPLATES[name][lang])
    assert fields
    for missing in fields:
        payload = _payload(fields - {missing})
        with pytest.raises(KeyError):
            render(name, lang, payload)


def test_unknown_template_raises_key_error() -> None:
    with pytest.raises(KeyError):
        render("no_such_template", "tr", {})


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("lang", ["de", "", "EN-gb", "xx"])
def test_unknown_language_falls_back_to_turkish(name: str, lang: str) -> None:
    fields = _placeholders(TEMPLATES[name]["tr"]) | _placeholders(TEMPLATES[name]["en"])
    payload = _payload(fields)
    text = render(name, lang, payload)
    assert text == render(name, "tr", payload)
    assert text != render(name, "en", payload)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_turkish_texts_are_turkish_and_valid_utf8(name: str) -> None:
    tr = TEMPLATES[name]["tr"]
    assert set(tr) & TURKISH_LETTERS, name
    assert unicodedata.is_normalized("NFC", tr)
    assert tr.encode("utf-8").decode("utf-8") == tr
    fields = _placeholders(tr)
    rendered = render(name, "tr", _payload(fields))
    assert set(rendered) & TURKISH_LETTERS
    assert rendered.encode("utf-8").decode("utf-8") == rendered


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_english_texts_are_plain(name: str) -> None:
    en = TEMPLATES[name]["en"]
    assert not set(en) & TURKISH_LETTERS, name


def test_rendered_text_is_stripped() -> None:
    fields = _placeholders(TEMPLATES["ticket_resolved"]["tr"])
    payload = {**_payload(fields), "resolution": ""}
    text = render("ticket_resolved", "tr", payload)
    assert text == text.strip()
    assert text.endswith("sonuçlandı.")
