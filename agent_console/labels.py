"""Screen names of the domain's closed vocabularies (translated with Flask-Babel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l

from models import (
    AuditAction,
    CallOutcome,
    Channel,
    NotificationChannel,
    PhoneType,
    Role,
    TicketStatus,
    TimelineAction,
)

TICKET_STATUS = {
    TicketStatus.NEW: _l("yeni"),
    TicketStatus.FORWARDED: _l("müdürlüğe iletildi"),
    TicketStatus.IN_PROGRESS: _l("işlemde"),
    TicketStatus.WAITING_ON_CITIZEN: _l("vatandaştan bilgi bekleniyor"),
    TicketStatus.REFERRED_EXTERNALLY: _l("ilgili kuruma yönlendirildi"),
    TicketStatus.RESOLVED: _l("çözüldü"),
    TicketStatus.CLOSED: _l("kapatıldı"),
    TicketStatus.REOPENED: _l("yeniden açıldı"),
    TicketStatus.MERGED: _l("birleştirildi"),
}

CALL_OUTCOME = {
    CallOutcome.IN_PROGRESS: _l("sürüyor"),
    CallOutcome.ANSWERED: _l("yanıtlandı"),
    CallOutcome.ABANDONED: _l("beklerken kapattı"),
    CallOutcome.OVERFLOW: _l("kuyruktan düştü"),
    CallOutcome.TRANSFERRED: _l("aktarıldı"),
    CallOutcome.OUT_OF_HOURS: _l("mesai dışı"),
    CallOutcome.CALLBACK_REQUESTED: _l("geri arama istedi"),
    CallOutcome.VOICEMAIL: _l("sesli mesaj bıraktı"),
}

CHANNEL = {
    Channel.PHONE: _l("telefon"),
    Channel.DESK: _l("başvuru masası"),
    Channel.WEB: _l("web"),
    Channel.EMAIL: _l("e-posta"),
    Channel.SMS: _l("SMS"),
    Channel.SOCIAL_MEDIA: _l("sosyal medya"),
    Channel.PETITION: _l("dilekçe / CİMER"),
    Channel.FIELD_TEAM: _l("gezici ekip"),
    Channel.NEIGHBOURHOOD_MEETING: _l("mahalle toplantısı"),
    Channel.MAYORS_OFFICE: _l("Özel Kalem"),
    Channel.SWITCHBOARD: _l("santral"),
}

PHONE_TYPE = {
    PhoneType.MOBILE: _l("cep"),
    PhoneType.HOME: _l("ev"),
    PhoneType.WORK: _l("iş"),
    PhoneType.OTHER: _l("diğer"),
}

ROLE = {
    Role.AGENT: _l("çağrı merkezi temsilcisi"),
    Role.SWITCHBOARD_OPERATOR: _l("santral operatörü"),
    Role.DESK_STAFF: _l("başvuru masası görevlisi"),
    Role.FIELD_TEAM: _l("gezici ekip"),
    Role.SOCIAL_MEDIA: _l("sosyal medya ekibi"),
    Role.UNIT_CHIEF: _l("birim amiri"),
    Role.DEPARTMENT_LIAISON: _l("müdürlük Açık Kapı görevlisi"),
    Role.SUPERVISOR: _l("süpervizör"),
    Role.ADVISOR: _l("danışman"),
    Role.MAYORS_OFFICE: _l("Özel Kalem"),
    Role.ADMINISTRATOR: _l("sistem yöneticisi"),
    Role.SYSTEM: _l("sistem"),
}

AUDIT_ACTION = {
    AuditAction.CITIZEN_OPENED: _l("vatandaş kaydı açıldı"),
    AuditAction.TC_REVEALED: _l("TC kimlik no gösterildi"),
    AuditAction.RECORDING_PLAYED: _l("ses kaydı dinlendi"),
    AuditAction.SIGN_IN: _l("giriş"),
    AuditAction.SIGN_IN_FAILED: _l("hatalı giriş"),
    AuditAction.ACCOUNT_LOCKED: _l("hesap kilitlendi"),
    AuditAction.SIGN_OUT: _l("çıkış"),
    AuditAction.CAMPAIGN_CHANGED: _l("arama kampanyası değişti"),
    AuditAction.DO_NOT_CALL_CHANGED: _l("aranmayacak numaralar değişti"),
}

AGENT_STATE = {
    "ready": _l("Hazır"),
    "in_call": _l("Görüşmede"),
    "paused": _l("Molada"),
    "wrap_up": _l("Son işlem"),
    "signed_out": _l("Kuyruk dışı"),
    "phone_offline": _l("Telefon bağlı değil"),
    "no_queue": _l("Kuyrukta değil"),
    "unknown": _l("Bilinmiyor"),
}

SPECIAL_GROUP = {
    "elderly": _l("yaşlı"),
    "disabled": _l("engelli"),
    "lives_alone": _l("yalnız yaşıyor"),
    "patient": _l("hasta"),
    "youth": _l("genç"),
    "home_maker": _l("ev hanımı"),
}

NOTIFICATION_CHANNEL = {
    NotificationChannel.SMS: _l("SMS"),
    NotificationChannel.EMAIL: _l("e-posta"),
    NotificationChannel.CONSOLE: _l("konsol bildirimi"),
}

TIMELINE_ACTION = {
    TimelineAction.OPENED: _l("açıldı"),
    TimelineAction.CONTACT_ADDED: _l("yeni temas eklendi"),
    TimelineAction.ROUTED: _l("türü / birimi belirlendi"),
    TimelineAction.REFERRED: _l("dış kuruma yönlendirildi"),
    TimelineAction.FORWARDED: _l("birime iletildi"),
    TimelineAction.ASSIGNED: _l("görevlendirildi"),
    TimelineAction.STATUS_CHANGED: _l("durum değişti"),
    TimelineAction.NOTE: _l("not"),
    TimelineAction.ATTACHMENT_ADDED: _l("dosya eklendi"),
    TimelineAction.RESOLVED: _l("çözüldü"),
    TimelineAction.REOPENED: _l("yeniden açıldı"),
    TimelineAction.MERGED: _l("birleştirildi"),
    TimelineAction.GROUPED: _l("gruplandı"),
    TimelineAction.NOTIFICATION_QUEUED: _l("bildirim sıraya alındı"),
    TimelineAction.POSSIBLE_CITIZEN_MATCH: _l("olası kişi eşleşmesi"),
    TimelineAction.SLA_PAUSED: _l("SLA durdu"),
    TimelineAction.SLA_RESUMED: _l("SLA yeniden işliyor"),
    TimelineAction.ESCALATED: _l("üst birime bildirildi"),
    TimelineAction.SPLIT: _l("bölündü"),
    TimelineAction.DEADLINE_EXTENDED: _l("ek süre verildi"),
}

LABELS: dict[str, Mapping[Any, Any]] = {
    "ticket_status": TICKET_STATUS,
    "call_outcome": CALL_OUTCOME,
    "channel": CHANNEL,
    "phone_type": PHONE_TYPE,
    "role": ROLE,
    "audit_action": AUDIT_ACTION,
    "agent_state": AGENT_STATE,
    "special_group": SPECIAL_GROUP,
    "notification_channel": NOTIFICATION_CHANNEL,
    "timeline_action": TIMELINE_ACTION,
}


def label(kind: str, value: object) -> str:
    """The screen name of ``value`` in vocabulary ``kind`` (the raw value if unknown)."""
    table: Mapping[Any, Any] = LABELS.get(kind, {})
    found = table.get(value)
    if found is None and hasattr(value, "value"):
        found = table.get(value.value)
    return str(found) if found is not None else str(getattr(value, "value", value))
