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
    # --- Mayor's weekly call list (issue 6, R5.4; services.mayor_calls) ---
    # Staff e-mails about a list, not about one ticket: no reference code in the subject.
    "mayor_weekly_list": {
        "tr": "{municipality} — Başkanlık haftalık arama listesi, {week} haftası "
        "({count} başvuru).\n\nAranacak vatandaşlar:\n\n{entries}\n\nSonuçlar konsolda "
        "«Başkanlık arama listesi» ekranından kaydedilir; yazdırılabilir PDF aynı "
        "ekrandadır. Çekiliş tohumu: {seed}.",
        "en": "{municipality} — the mayor's weekly call list, week of {week} "
        "({count} applications).\n\nCitizens to call:\n\n{entries_en}\n\nRecord the results "
        "on the «Mayor's call list» screen of the console; the printable PDF is on the "
        "same screen. Draw seed: {seed}.",
    },
    "mayor_weekly_list_subject": {
        "tr": "Başkanlık haftalık arama listesi — {week} haftası",
        "en": "The mayor's weekly call list — week of {week}",
    },
    "mayor_weekly_report_subject": {
        "tr": "Başkanlık arama listesi: {week} sonuçları ve {new_week} listesi",
        "en": "The mayor's call list: results of {week} and the list of {new_week}",
    },
    "mayor_weekly_report": {
        "tr": "{municipality} — Başkanlık arama listesi, {week} haftası sonuçları: "
        "{reached} ulaşıldı, {not_reached} ulaşılamadı, {wrong_number} yanlış numara, "
        "{pending} aranmadı; {follow_ups} takip başvurusu açıldı.\n\n{report}\n\n"
        "Yeni liste, {new_week} haftası ({count} başvuru):\n\n{entries}",
        "en": "{municipality} — the mayor's call list, results of the week of {week}: "
        "{reached} reached, {not_reached} not reached, {wrong_number} wrong number, "
        "{pending} not called; {follow_ups} follow-up applications opened.\n\n{report_en}"
        "\n\nNew list, week of {new_week} ({count} applications):\n\n{entries_en}",
    },
    # --- Satisfaction survey outcomes and SMS fallback (issue 6, R5.2) ---
    # Citizen: asked by SMS when the survey call could not reach them; the reply is a digit.
    "survey_sms_request": {
        "tr": "{municipality}: {reference_code} başvurunuz için hizmetimizi 1 (kötü) ile "
        "5 (çok iyi) arası tek rakamla yanıtlayıp puanlayın.",
        "en": "{municipality}: Please rate our service on application {reference_code} by "
        "replying with one digit from 1 (poor) to 5 (very good).",
    },
    "survey_sms_thanks": {
        "tr": "{municipality}: Teşekkürler, puanınız kaydedildi ({reference_code}).",
        "en": "{municipality}: Thank you for your rating ({reference_code}).",
    },
    # Staff: a citizen said "not solved"; the ticket was reopened and escalated one step.
    "survey_not_solved_escalation": {
        "tr": "Anket: {department} birimindeki {reference_code} ({ticket_type}) başvurusu "
        "için vatandaş sorununun çözülmediğini bildirdi. Başvuru yeniden açıldı ve {unit} "
        "bilginize sunuldu. Yeni son tarih: {due_at_local}.",
        "en": "Survey: the citizen said application {reference_code} ({ticket_type_en}) at "
        "{department_en} was not solved. It has been reopened and escalated to {unit_en}. "
        "New due date: {due_at_local}.",
    },
    # Supervisors: a low satisfaction score opened a follow-up.
    "survey_low_score_follow_up": {
        "tr": "Düşük memnuniyet puanı: {reference_code} ({ticket_type}, {department}) "
        "başvurusu için vatandaş {score}/5 puan verdi. Lütfen vatandaşla görüşüp takibi "
        "kapatın.",
        "en": "Low satisfaction score: the citizen rated application {reference_code} "
        "({ticket_type_en}, {department_en}) {score}/5. Please contact the citizen and "
        "close the follow-up.",
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
