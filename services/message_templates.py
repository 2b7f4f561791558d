"""Turkish and English texts of citizen and staff notifications.

The outbox stores the template name and its payload; the dispatcher renders the text with
:func:`render` in the recipient's language at send time. Every SMS carries the reference
code (R2.2) and is public information about the citizen's own application (not commercial).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEMPLATES: dict[str, dict[str, str]] = {
    "ticket_opened": {
        "tr": "{municipality}: Başvurunuz alındı. Başvuru kodunuz {reference_code}. "
        "Bilgi için {call_centre} numarasını arayabilirsiniz.",
        "en": "{municipality}: Your application has been received. Your reference code is "
        "{reference_code}. Call {call_centre} for information.",
    },
    "ticket_contact_added": {
        "tr": "{municipality}: Bu konudaki başvurunuz zaten kayıtlı ({reference_code}). "
        "Yeni bildiriminiz başvurunuza eklendi.",
        "en": "{municipality}: Your application on this matter is already recorded "
        "({reference_code}). Your new report has been added to it.",
    },
    "ticket_referred": {
        "tr": "{municipality}: Başvurunuz ({reference_code}) {institution} sorumluluğundadır "
        "ve ilgili kuruma iletilmiştir. {institution} iletişim: {institution_phone}.",
        "en": "{municipality}: Your application ({reference_code}) falls under "
        "{institution_en} and has been referred to it. Contact: {institution_phone}.",
    },
    "ticket_resolved": {
        "tr": "{municipality}: {reference_code} kodlu başvurunuz sonuçlandı. {resolution}",
        "en": "{municipality}: Your application {reference_code} has been resolved. {resolution}",
    },
    "ticket_reopened": {
        "tr": "{municipality}: {reference_code} kodlu başvurunuz yeniden incelemeye alındı.",
        "en": "{municipality}: Your application {reference_code} has been reopened.",
    },
    "ticket_forwarded_to_liaison": {
        "tr": "Yeni başvuru {reference_code} ({ticket_type}) müdürlüğünüze iletildi. "
        "Son tarih: {due_at_local}.",
        "en": "New application {reference_code} ({ticket_type_en}) was forwarded to your "
        "department. Due: {due_at_local}.",
    },
    # --- SMS channel (issue 5): replies to inbound SMS ---
    # --- E-mail channel (issue 5) ---
    # --- SLA and escalation (issue 5) ---
}


def render(template: str, language: str, payload: Mapping[str, Any]) -> str:
    """The text of ``template`` in ``language`` (Turkish when the language is unknown).

    Raises ``KeyError`` for an unknown template or a payload missing a placeholder: a
    notification is never sent with a hole in it.
    """
    texts = TEMPLATES[template]
    text = texts.get(language) or texts["tr"]
    return text.format_map(dict(payload)).strip()
