"""The main menu: (endpoint, label) in display order. An entry is shown only to roles the
permission matrix allows (:func:`agent_console.permissions.can`). New areas add a line."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

NAV: list[tuple[str, object]] = [
    ("agent.screen", _l("Çağrı ekranı")),
    ("callbacks.index", _l("Geri aramalar")),
    ("switchboard.index", _l("Santral")),
    ("desk.index", _l("Başvuru masası")),
    ("coordination.index", _l("Koordinasyon masası")),
    ("department.index", _l("Birim gelen kutusu")),
    ("search.index", _l("Arama")),
    ("wallboard.index", _l("Pano")),
    ("audit.index", _l("Erişim kaydı")),
    ("outbox.dead", _l("Gönderilemeyen bildirimler")),
    ("mayor_office.index", _l("Başkanlık arama listesi")),
    ("campaigns.index", _l("Kampanyalar")),
    ("campaigns.survey_results", _l("Anket sonuçları")),
    ("follow_ups.index", _l("Anket takipleri")),
]


def nav_items() -> list[tuple[str, str]]:
    return [(endpoint, str(text)) for endpoint, text in NAV]
