"""Who is calling? The caller lookup behind the FastAGI ``caller_lookup`` route (R4.1, R5.5).

Read-only and fast: one indexed round trip (``citizen_phones.e164`` → citizens, with the
count of open tickets as a correlated sub-query on ``ix_tickets_dedup``), whatever the size
of the citizen table. Nothing is written: the caller's phone is attached to their record
later, through the one intake path, when an agent answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Citizen, CitizenPhone, Language, Ticket
from services.errors import InvalidPhoneNumber
from services.identity import normalise_phone

DISPLAY_NAME_MAX = 40
"""Longest display name handed to ``CALLERID(name)`` (characters, UTF-8 Turkish allowed)."""

PRIORITY_BY_GROUP: dict[str, int] = {
    "elderly": 10,
    "disabled": 10,
    "lives_alone": 5,
    "patient": 5,
}
"""Queue priority of the special groups of R5.5; a caller gets the highest of theirs."""


@dataclass(frozen=True)
class CallerInfo:
    """What the dialplan learns about a caller. Every field has a safe value for unknowns."""

    e164: str | None  # None: withheld or unusable caller ID
    citizen_id: int | None  # None: unknown, withheld, or the phone is shared (ambiguous)
    display_name: str | None  # for CALLERID(name), at most DISPLAY_NAME_MAX characters
    language: Language
    open_tickets: int
    priority: int
    ambiguous: bool  # the phone belongs to several citizens: nobody is identified

    @property
    def known(self) -> bool:
        return self.citizen_id is not None


def priority_for(special_groups: object) -> int:
    """Queue priority for a citizen's ``special_groups`` (unknown or malformed values: 0)."""
    if not isinstance(special_groups, list):
        return 0
    return max(
        (PRIORITY_BY_GROUP.get(g, 0) for g in special_groups if isinstance(g, str)), default=0
    )


def open_ticket_count() -> ScalarSelect[int]:
    """Column expression: how many open tickets the ``Citizen`` of the enclosing ``SELECT``
    has (a correlated sub-query on ``ix_tickets_dedup``)."""
    return (
        select(func.count(Ticket.id))
        .where(Ticket.citizen_id == Citizen.id, Ticket.status.in_(OPEN_STATUSES))
        .correlate(Citizen)
        .scalar_subquery()
    )


def _display_name(first: str | None, last: str | None) -> str | None:
    name = " ".join(p.strip() for p in (first, last) if p and p.strip())
    # Control characters would break the AGI line; the route quotes the rest.
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:DISPLAY_NAME_MAX].rstrip() or None


def lookup_caller(
    session: Session,
    now: datetime,
    raw_caller_id: str | None,
    default_language: Language = Language.TR,
) -> CallerInfo:
    """Identify the caller behind ``raw_caller_id`` (any written form, withheld, or garbage).

    Guarantees:
    - never raises for bad input: a withheld, invalid or unreadable caller ID (including one
      with undecodable bytes, passed as lone surrogates) gives ``e164=None`` and an unknown
      caller; the raw caller ID is kept by the caller of this service;
    - a phone held by exactly one citizen identifies them (id, display name, preferred
      language, open tickets, priority from special groups);
    - a phone held by several citizens identifies nobody (``ambiguous=True``, language
      ``default_language``), exactly as the intake path does;
    - one database round trip, read-only; nothing is written or flushed.

    ``now`` is accepted for symmetry with the other services (and future time-dependent
    rules such as recent-call priority); the lookup itself does not depend on it.
    """
    del now
    unknown = CallerInfo(
        e164=None,
        citizen_id=None,
        display_name=None,
        language=default_language,
        open_tickets=0,
        priority=0,
        ambiguous=False,
    )
    try:
        e164 = normalise_phone(raw_caller_id or "").e164
    except InvalidPhoneNumber:
        return unknown
    rows: list[Any] = list(
        session.execute(
            select(
                Citizen.id,
                Citizen.first_name,
                Citizen.last_name,
                Citizen.preferred_language,
                Citizen.special_groups,
                open_ticket_count(),
            )
            .join(CitizenPhone, CitizenPhone.citizen_id == Citizen.id)
            .where(CitizenPhone.e164 == e164)
            .order_by(Citizen.id)
            .limit(2)
        )
    )
    if not rows:
        return CallerInfo(e164, None, None, default_language, 0, 0, ambiguous=False)
    if len(rows) > 1:
        return CallerInfo(e164, None, None, default_language, 0, 0, ambiguous=True)
    citizen_id, first, last, language, groups, open_tickets = rows[0]
    return CallerInfo(
        e164=e164,
        citizen_id=int(citizen_id),
        display_name=_display_name(first, last),
        language=Language(language) if language else default_language,
        open_tickets=int(open_tickets or 0),
        priority=priority_for(groups),
        ambiguous=False,
    )
