"""The final text of an outbox row, rendered at send time (R2.2, R3.4).

Pure: the outbox keeps the template name and payload; the dispatcher passes the
installation's context (municipality name, call-centre number) and gets the SMS text or the
e-mail subject and body in the recipient's language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.message_templates import TEMPLATES, render

if TYPE_CHECKING:
    from acikkapi.settings import Settings


@dataclass(frozen=True)
class ComposedMessage:
    subject: str  # e-mail only ("" for SMS and console)
    text: str


def template_context(settings: Settings) -> dict[str, str]:
    """The installation's values every template may use besides the row's payload."""
    return {"municipality": settings.municipality_name, "call_centre": settings.call_centre_number}


class TemplateProblem(Exception):
    """The row names an unknown template or lacks a placeholder: retrying cannot help."""


def compose(
    *,
    template: str,
    language: str,
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
    email_subject: Callable[[str | None, str], str] | None = None,
) -> ComposedMessage:
    """Render ``template`` with ``payload`` over ``context`` (payload wins on a clash).

    ``email_subject(reference_code, language)`` builds the subject for e-mail rows; replies
    to that subject carry the reference code back into the e-mail channel. A message about
    no single ticket (no code) whose template has a ``<template>_subject`` companion takes
    its subject from that (e.g. the mayor's weekly list).
    Raises :class:`TemplateProblem` instead of sending a message with a hole in it.
    """
    values = {**context, **payload}
    try:
        text = render(template, language, values)
    except KeyError as exc:
        raise TemplateProblem(f"template {template!r}: missing {exc}") from exc
    subject = ""
    if email_subject is not None:
        code = values.get("reference_code")
        own_subject = f"{template}_subject"
        if not code and own_subject in TEMPLATES:
            subject = render(own_subject, language, values)
        else:
            subject = email_subject(code, language)
        if code:  # replies keep the code in the subject and land on the same ticket
            text = f"{text}\n\n{render('email_reply_hint', language, values)}"
    return ComposedMessage(subject=subject, text=text)
