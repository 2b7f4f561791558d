"""Rendering outbox rows at send time (issue 5 item 3)."""

from __future__ import annotations

import pytest

from services.notification_text import TemplateProblem, compose

CONTEXT = {"municipality": "Açık Kapı Belediyesi", "call_centre": "444 80 07"}


def test_sms_text_in_the_citizens_language_with_the_reference_code() -> None:
    tr = compose(
        template="ticket_opened",
        language="tr",
        payload={"reference_code": "K7M-4QX"},
        context=CONTEXT,
    )
    en = compose(
        template="ticket_opened",
        language="en",
        payload={"reference_code": "K7M-4QX"},
        context=CONTEXT,
    )
    assert "K7M-4QX" in tr.text and "Başvurunuz alındı" in tr.text and tr.subject == ""
    assert "K7M-4QX" in en.text and "received" in en.text


def test_email_gets_a_subject_and_the_reply_hint() -> None:
    seen: list[tuple[str | None, str]] = []

    def subject(code: str | None, language: str) -> str:
        seen.append((code, language))
        return f"[Başvuru {code}]"

    message = compose(
        template="ticket_opened",
        language="tr",
        payload={"reference_code": "K7M-4QX"},
        context=CONTEXT,
        email_subject=subject,
    )
    assert seen == [("K7M-4QX", "tr")]
    assert message.subject == "[Başvuru K7M-4QX]"
    assert message.text.startswith("Açık Kapı Belediyesi: Başvurunuz alındı")
    assert "konu satırındaki başvuru kodunu (K7M-4QX) silmeyiniz" in message.text


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("tr", "Başkanlık haftalık arama listesi — 30.11.2026 haftası"),
        ("en", "The mayor's weekly call list — week of 30.11.2026"),
    ],
)
def test_a_list_email_takes_its_own_subject_and_no_reply_hint(language: str, expected: str) -> None:
    """E-mails about no single ticket (the mayor's weekly list, R5.4) have a subject of
    their own, not the municipality's name that a ticket e-mail without a code gets."""
    message = compose(
        template="mayor_weekly_list",
        language=language,
        payload={"week": "30.11.2026", "count": 4, "seed": 7, "entries": "-", "entries_en": "-"},
        context=CONTEXT,
        email_subject=lambda code, lang: "should not be used",
    )
    assert message.subject == expected
    assert "30.11.2026" in message.text
    assert "silmeyiniz" not in message.text and "keep the reference code" not in message.text


def test_missing_placeholder_or_unknown_template_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match="reference_code"):
        compose(template="ticket_opened", language="tr", payload={}, context=CONTEXT)
    with pytest.raises(TemplateProblem, match="no_such"):
        compose(template="no_such", language="tr", payload={}, context=CONTEXT)
