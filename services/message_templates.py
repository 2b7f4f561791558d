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
    # Citizen told of more time asked by the unit (R3.4; services.deadline_extension).
    "ticket_deadline_extended": {
        "tr": "{municipality}: {reference_code} kodlu başvurunuz için ilgili birim ek süre "
        "istedi. Yeni tahmini sonuç tarihi: {due_at_local}. Bilgi için {call_centre} "
        "numarasını arayabilirsiniz.",
        "en": "{municipality}: The unit handling your application {reference_code} needs "
        "more time. New expected date: {due_at_local}. Call {call_centre} for information.",
    },
    # --- SMS channel (issue 5): replies to inbound SMS ---
    # sms_reply_format / sms_reply_invalid_tc answer messages that opened no ticket, so they
    # have no reference code to carry; every other reply names the code the citizen sent.
    "sms_reply_format": {
        "tr": "{municipality}: Başvurunuzu alabilmemiz için TC kimlik numaranızı ve ardından "
        "mesajınızı yazın. Örnek: 12345678901 Sokak lambası yanmıyor. Başvuru durumunu "
        "öğrenmek için başvuru kodunu gönderin.",
        "en": "{municipality}: To receive your application, please write your TC identity "
        "number followed by your message, e.g. 12345678901 The street light is broken. "
        "To check an application, send its reference code.",
    },
    "sms_reply_invalid_tc": {
        "tr": "{municipality}: Mesajınızdaki TC kimlik numarası geçersiz görünüyor. Lütfen 11 "
        "haneli TC kimlik numaranızı ve ardından mesajınızı yazın. "
        "Örnek: 12345678901 Sokak lambası yanmıyor.",
        "en": "{municipality}: The TC identity number in your message does not look valid. "
        "Please write your 11-digit TC identity number followed by your message, "
        "e.g. 12345678901 The street light is broken.",
    },
    "sms_reply_status": {
        "tr": "{municipality}: {reference_code} kodlu başvurunuzun durumu: {status}. "
        "Bilgi için {call_centre} numarasını arayabilirsiniz.",
        "en": "{municipality}: Your application {reference_code} is {status_en}. "
        "Call {call_centre} for information.",
    },
    "sms_reply_status_merged": {
        "tr": "{municipality}: {reference_code} kodlu başvurunuz {merged_into} kodlu başvuruyla "
        "birleştirildi. Güncel durum: {status}.",
        "en": "{municipality}: Your application {reference_code} has been merged into "
        "{merged_into}, which is {status_en}.",
    },
    "sms_reply_code_unknown": {
        "tr": "{municipality}: {reference_code} kodlu, bu telefon numarasıyla yapılmış bir "
        "başvuru bulunamadı. Kodu kontrol edin ya da {call_centre} numarasını arayın.",
        "en": "{municipality}: No application {reference_code} made from this phone number "
        "was found. Please check the code or call {call_centre}.",
    },
    # --- E-mail channel (issue 5) ---
    # Subject of every e-mail about a ticket (services.email_channel.ticket_email_subject);
    # reference_code_in_subject finds the code again in replies ("YNT: Re: Fwd: ...").
    "email_subject": {
        "tr": "[Başvuru {reference_code}] {municipality}",
        "en": "[Application {reference_code}] {municipality}",
    },
    # A line the dispatcher may append to ticket e-mail bodies.
    "email_reply_hint": {
        "tr": "Yanıtlarken konu satırındaki başvuru kodunu ({reference_code}) silmeyiniz; "
        "yanıtınız başvurunuza eklenir.",
        "en": "When replying, keep the reference code ({reference_code}) in the subject; "
        "your reply will be added to your application.",
    },
    # --- SLA and escalation (issue 5) ---
    # Staff (services.escalation): console, e-mail and SMS; payload carries the local dates.
    "sla_reminder": {
        "tr": "Hatırlatma: {reference_code} ({ticket_type}) başvurusunun çözüm süresinin "
        "%{percent} kadarı doldu. Son tarih: {due_at_local}. "
        "Yasal süre sonu: {legal_due_at_local}.",
        "en": "Reminder: {percent}% of the resolution time of application {reference_code} "
        "({ticket_type_en}) has passed. Due: {due_at_local}. "
        "Legal deadline: {legal_due_at_local}.",
    },
    "sla_breached": {
        "tr": "Süre aşımı: {department} birimindeki {reference_code} ({ticket_type}) "
        "başvurusu {due_at_local} tarihine kadar çözülmedi; üst birim olarak bilginize "
        "sunulur. Yasal süre sonu: {legal_due_at_local}.",
        "en": "Overdue: application {reference_code} ({ticket_type_en}) at {department_en} "
        "was not resolved by {due_at_local}; escalated to you as the superior unit. "
        "Legal deadline: {legal_due_at_local}.",
    },
    "sla_escalated": {
        "tr": "Gecikmiş başvuru {reference_code} ({ticket_type}, {department}) "
        "{due_at_local} tarihinden beri çözüm bekliyor; {unit} makamının bilgisine sunulur. "
        "Yasal süre sonu: {legal_due_at_local}.",
        "en": "Overdue application {reference_code} ({ticket_type_en}, {department_en}) has "
        "been waiting since {due_at_local}; escalated to {unit_en}. "
        "Legal deadline: {legal_due_at_local}.",
    },
    # Citizen delay notice at the breach (R3.4).
    "sla_delay_notice": {
        "tr": "{municipality}: {reference_code} kodlu başvurunuz planlanan sürede "
        "sonuçlanamadı. Başvurunuz üst birime iletildi ve takip ediliyor. "
        "Bilgi için {call_centre} numarasını arayabilirsiniz.",
        "en": "{municipality}: Your application {reference_code} could not be completed in "
        "the planned time. It has been escalated and is being followed up. "
        "Call {call_centre} for information.",
    },
}


def render(template: str, language: str, payload: Mapping[str, Any]) -> str:
    """The text of ``template`` in ``language`` (Turkish when the language is unknown).

    Raises ``KeyError`` for an unknown template or a payload missing a placeholder: a
    notification is never sent with a hole in it.
    """
    texts = TEMPLATES[template]
    text = texts.get(language) or texts["tr"]
    return text.format_map(dict(payload)).strip()
