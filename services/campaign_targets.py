"""Who a campaign calls: target lists, exclusions and import (R5.1–R5.6; decision 0021).

Targets come from resolved tickets (R5.1, R5.2), a special group of citizens (R5.5), a CSV
file, or callback tasks (R5.3). :func:`add_targets` is the one way in: it normalises every
number, drops duplicates (``dedupe_key = "<e164>:<ticket id or ''>"``, unique per campaign),
and stores excluded people as SKIPPED rows with a note, so the campaign page can say why
someone was not called: numbers on the do-not-call list, citizens who asked not to be
called (``do_not_call``) or who gave no call consent (``consent_calls``). A number with no
citizen given is checked against every citizen known by that number: one opt-out is enough.
Nothing here commits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from models import (
    Campaign,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetStatus,
    Citizen,
    CitizenPhone,
    Household,
    Language,
    PhoneType,
    Ticket,
    TicketContact,
    TicketStatus,
)
from services.do_not_call import blocked_numbers
from services.errors import InvalidPhoneNumber, InvalidTransition, UnknownEntity
from services.identity import NormalisedPhone, normalise_phone
from services.ticket_ids import insert_rows

__all__ = [
    "NOTE_CITIZEN_DO_NOT_CALL",
    "NOTE_DO_NOT_CALL",
    "NOTE_NO_CONSENT",
    "TargetImport",
    "TargetRow",
    "add_targets",
    "parse_targets_csv",
    "targets_from_citizen_group",
    "targets_from_resolved_tickets",
]

NOTE_DO_NOT_CALL = "Numara aranmayacaklar listesinde."
NOTE_CITIZEN_DO_NOT_CALL = "Vatandaş aranmak istemediğini bildirdi."
NOTE_NO_CONSENT = "Vatandaşın aranma izni yok."
_CHUNK = 500  # ids per IN (...) list
_BATCH = 2000  # rows per insert statement


@dataclass(frozen=True)
class TargetRow:
    """One number to call, as a source gives it (the phone in any usual written form)."""

    phone: str
    name: str | None = None
    language: Language | None = None
    citizen_id: int | None = None
    ticket_id: int | None = None
    callback_task_id: int | None = None
    # Line of the uploaded file (set by parse_targets_csv): error messages cite it.
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TargetImport:
    """What :func:`add_targets` did with the rows it was given."""

    added: int  # new PENDING targets
    skipped: int  # excluded (do-not-call, no consent): stored as SKIPPED with a note
    duplicates: int  # already in the campaign, or repeated in the rows
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, Turkish text)


@lru_cache(maxsize=65536)
def _normalise(raw: str) -> NormalisedPhone:
    return normalise_phone(raw)


def _chunks(values: Sequence[int] | Sequence[str]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


@dataclass(frozen=True)
class _Person:
    do_not_call: bool
    consent_calls: bool
    language: Language


def _people_by_id(session: Session, ids: set[int]) -> dict[int, _Person]:
    found: dict[int, _Person] = {}
    for chunk in _chunks(sorted(ids)):
        for cid, dnc, consent, lang in session.execute(
            select(
                Citizen.id, Citizen.do_not_call, Citizen.consent_calls, Citizen.preferred_language
            ).where(Citizen.id.in_(chunk))
        ):
            found[cid] = _Person(dnc, consent, lang)
    return found


def _opt_outs_by_phone(session: Session, phones: set[str]) -> dict[str, str]:
    """E.164 → skip note for numbers of citizens who opted out of calls."""
    notes: dict[str, str] = {}
    for chunk in _chunks(sorted(phones)):
        for e164, dnc in session.execute(
            select(CitizenPhone.e164, Citizen.do_not_call)
            .join(Citizen, Citizen.id == CitizenPhone.citizen_id)
            .where(CitizenPhone.e164.in_(chunk), (Citizen.do_not_call) | (~Citizen.consent_calls))
        ):
            notes.setdefault(e164, NOTE_CITIZEN_DO_NOT_CALL if dnc else NOTE_NO_CONSENT)
    return notes


def call_refusals(
    session: Session,
    numbers: Sequence[tuple[str, int | None]],
    *,
    people: Mapping[int, _Person] | None = None,
) -> list[str | None]:
    """Why each ``(e164, citizen id)`` may not be called now (R5.6), or None when it may.

    Guarantees, in this order: a number on the do-not-call list; the citizen's own
    ``do_not_call``; no ``consent_calls``; for a number with no citizen, any citizen holding
    that number who opted out. Checked when targets are added **and** again when the dialer
    claims them, so an opt-out recorded mid-campaign is honoured. Reads only.
    """
    if not numbers:
        return []
    blocked = blocked_numbers(session, {e164 for e164, _ in numbers})
    if people is None:
        people = _people_by_id(session, {cid for _, cid in numbers if cid is not None})
    unowned = {e164 for e164, cid in numbers if cid is None}
    opt_outs = _opt_outs_by_phone(session, unowned) if unowned else {}
    notes: list[str | None] = []
    for e164, citizen_id in numbers:
        person = people.get(citizen_id) if citizen_id is not None else None
        if e164 in blocked:
            notes.append(NOTE_DO_NOT_CALL)
        elif person is not None and person.do_not_call:
            notes.append(NOTE_CITIZEN_DO_NOT_CALL)
        elif person is not None and not person.consent_calls:
            notes.append(NOTE_NO_CONSENT)
        elif citizen_id is None:
            notes.append(opt_outs.get(e164))
        else:
            notes.append(None)
    return notes


def add_targets(
    session: Session, *, now: datetime, campaign_id: int, rows: Iterable[TargetRow]
) -> TargetImport:
    """Add ``rows`` to the campaign (R5.6 exclusions; decision 0021).

    Guarantees: every number is normalised to E.164 (a number that cannot be read is refused
    with :func:`services.identity.normalise_phone`'s Turkish message and its line: the
    row's ``line``, else its 1-based position); a ``dedupe_key`` already in the campaign or
    repeated in ``rows`` counts as a duplicate and is not written; do-not-call numbers and
    citizens without call consent are written as SKIPPED with a note; the others are
    PENDING with ``next_attempt_at = now``.
    Language: the row's, else the citizen's preferred one, else the campaign default.
    Inserted in batches (:func:`services.ticket_ids.insert_rows`); flushed, not committed.
    A STOPPED or FINISHED campaign takes no more targets (:class:`InvalidTransition`).
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise UnknownEntity(
            f"Kampanya bulunamadı: {campaign_id}",
            f"No such campaign: {campaign_id}",
            campaign_id=campaign_id,
        )
    if campaign.status in (CampaignStatus.STOPPED, CampaignStatus.FINISHED):
        raise InvalidTransition(
            "Durdurulmuş ya da bitmiş bir kampanyaya hedef eklenemez.",
            "Targets cannot be added to a stopped or finished campaign.",
            campaign_id=campaign_id,
            status=campaign.status.value,
        )
    session.flush()
    existing = set(
        session.scalars(
            select(CampaignTarget.dedupe_key).where(CampaignTarget.campaign_id == campaign_id)
        )
    )
    errors: list[tuple[int, str]] = []
    accepted: list[tuple[TargetRow, str, str]] = []  # row, e164, dedupe key
    duplicates = 0
    for position, row in enumerate(rows, start=1):
        try:
            e164 = _normalise(row.phone or "").e164
        except InvalidPhoneNumber as exc:
            line = row.line if row.line is not None else position
            errors.append((line, f"Satır {line}: {exc.message_tr}"))
            continue
        key = f"{e164}:{row.ticket_id if row.ticket_id is not None else ''}"
        if key in existing:
            duplicates += 1
            continue
        existing.add(key)
        accepted.append((row, e164, key))
    if not accepted:
        return TargetImport(added=0, skipped=0, duplicates=duplicates, errors=errors)

    people = _people_by_id(session, {r.citizen_id for r, _, _ in accepted if r.citizen_id})
    notes = call_refusals(
        session, [(e164, row.citizen_id) for row, e164, _ in accepted], people=people
    )

    records: list[dict[str, Any]] = []
    added = skipped = 0
    for (row, e164, key), note in zip(accepted, notes, strict=True):
        person = people.get(row.citizen_id) if row.citizen_id is not None else None
        language = row.language or (person.language if person else campaign.default_language)
        status = CampaignTargetStatus.SKIPPED if note else CampaignTargetStatus.PENDING
        if note:
            skipped += 1
        else:
            added += 1
        name = " ".join(row.name.split())[:160] if row.name else None
        records.append(
            {
                "campaign_id": campaign_id,
                "dedupe_key": key,
                "phone_e164": e164,
                "citizen_id": row.citizen_id,
                "ticket_id": row.ticket_id,
                "callback_task_id": row.callback_task_id,
                "display_name": name or None,
                "language": Language(language).value,
                "status": status.value,
                "attempts": 0,
                "next_attempt_at": None if note else now,
                "note": note,
                "created_at": now,
                "completed_at": now if note else None,
            }
        )
    table = CampaignTarget.__table__
    for i in range(0, len(records), _BATCH):
        insert_rows(session, table, records[i : i + _BATCH])  # type: ignore[arg-type]
    return TargetImport(added=added, skipped=skipped, duplicates=duplicates, errors=errors)


def _names(session: Session, citizen_ids: set[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for chunk in _chunks(sorted(citizen_ids)):
        for cid, first, last in session.execute(
            select(Citizen.id, Citizen.first_name, Citizen.last_name).where(Citizen.id.in_(chunk))
        ):
            text = " ".join(p for p in (first, last) if p)
            if text:
                names[cid] = text
    return names


def _best_phones(session: Session, citizen_ids: set[int]) -> dict[int, str]:
    """Citizen → the number to call: a mobile first, then the most recently seen number."""
    best: dict[int, tuple[tuple[int, float, int], str]] = {}
    for chunk in _chunks(sorted(citizen_ids)):
        for cid, e164, kind, seen, pid in session.execute(
            select(
                CitizenPhone.citizen_id,
                CitizenPhone.e164,
                CitizenPhone.phone_type,
                CitizenPhone.last_seen_at,
                CitizenPhone.id,
            ).where(CitizenPhone.citizen_id.in_(chunk))
        ):
            rank = (0 if kind == PhoneType.MOBILE else 1, -seen.timestamp(), pid)
            if cid not in best or rank < best[cid][0]:
                best[cid] = (rank, e164)
    return {cid: e164 for cid, (_, e164) in best.items()}


def targets_from_resolved_tickets(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    department_id: int | None = None,
    neighbourhood_id: int | None = None,
) -> list[TargetRow]:
    """One row per ticket resolved or closed with ``start <= resolved_at < end`` (R5.1, R5.2).

    The number is the first contact's phone on the ticket (the one who reported it), else
    the citizen's best number (a mobile first); tickets with no number are left out. Name:
    the contact's, else the citizen's; language: the ticket's. Ordered by ticket id.
    """
    stmt = (
        select(Ticket.id, Ticket.citizen_id, Ticket.language)
        .where(
            Ticket.status.in_((TicketStatus.RESOLVED, TicketStatus.CLOSED)),
            Ticket.resolved_at >= start,
            Ticket.resolved_at < end,
        )
        .order_by(Ticket.id)
    )
    if department_id is not None:
        stmt = stmt.where(Ticket.department_id == department_id)
    if neighbourhood_id is not None:
        stmt = stmt.where(Ticket.neighbourhood_id == neighbourhood_id)
    tickets = session.execute(stmt).all()
    contact: dict[int, tuple[str | None, str | None]] = {}
    for chunk in _chunks([t[0] for t in tickets]):
        for tid, e164, name in session.execute(
            select(TicketContact.ticket_id, TicketContact.phone_e164, TicketContact.contact_name)
            .where(TicketContact.ticket_id.in_(chunk), TicketContact.phone_e164.is_not(None))
            .order_by(TicketContact.received_at, TicketContact.id)
        ):
            contact.setdefault(tid, (e164, name))
    citizens = {cid for _, cid, _ in tickets if cid is not None}
    phones = _best_phones(session, {c for t, c, _ in tickets if c and t not in contact})
    names = _names(session, citizens)
    rows: list[TargetRow] = []
    for tid, cid, language in tickets:
        phone, name = contact.get(tid, (None, None))
        if phone is None and cid is not None:
            phone = phones.get(cid)
        if phone is None:
            continue
        rows.append(
            TargetRow(
                phone=phone,
                name=name or (names.get(cid) if cid else None),
                language=language,
                citizen_id=cid,
                ticket_id=tid,
            )
        )
    return rows


def targets_from_citizen_group(
    session: Session, *, group: str, neighbourhood_id: int | None = None
) -> list[TargetRow]:
    """One row per citizen whose ``special_groups`` lists ``group`` (R5.5), with a number.

    The number is the citizen's first mobile, else the most recently seen one. With
    ``neighbourhood_id``, only citizens whose household is in that neighbourhood. Works on
    SQLite and PostgreSQL alike: the JSON text is pre-filtered with LIKE and the list is
    checked exactly in Python. Ordered by citizen id.
    """
    wanted = group.strip()
    if not wanted:
        return []
    pattern = '%"' + wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
    stmt = (
        select(
            Citizen.id,
            Citizen.first_name,
            Citizen.last_name,
            Citizen.preferred_language,
            Citizen.special_groups,
        )
        .where(cast(Citizen.special_groups, String).like(pattern, escape="\\"))
        .order_by(Citizen.id)
    )
    if neighbourhood_id is not None:
        stmt = stmt.join(Household, Household.id == Citizen.household_id).where(
            Household.neighbourhood_id == neighbourhood_id
        )
    members = [
        (cid, first, last, lang)
        for cid, first, last, lang, groups in session.execute(stmt)
        if isinstance(groups, list) and wanted in groups
    ]
    phones = _best_phones(session, {m[0] for m in members})
    rows: list[TargetRow] = []
    for cid, first, last, lang in members:
        phone = phones.get(cid)
        if phone is None:
            continue
        name = " ".join(p for p in (first, last) if p) or None
        rows.append(TargetRow(phone=phone, name=name, language=lang, citizen_id=cid))
    return rows


_HEADER_WORDS = {"phone", "telefon", "tel", "numara", "telefon numarası", "gsm", "cep"}
_LANGUAGES = {
    "tr": Language.TR,
    "türkçe": Language.TR,
    "turkce": Language.TR,
    "turkish": Language.TR,
    "en": Language.EN,
    "ingilizce": Language.EN,
    "english": Language.EN,
}


def parse_targets_csv(text: str) -> tuple[list[TargetRow], list[tuple[int, str]]]:
    """Read an uploaded list: ``phone[,name[,language]]`` per line (R5.6).

    ``;`` or ``,`` separated (whichever the first line uses most), UTF-8 with or without BOM,
    optional header row (first cell ``telefon``/``phone``/...), blank lines ignored. Returns
    the rows and the refused lines as ``(line number, Turkish message)``; phone numbers are
    checked later by :func:`add_targets`, only an empty phone or unknown language is refused
    here.
    """
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = ";" if first.count(";") >= first.count(",") and ";" in first else ","
    rows: list[TargetRow] = []
    errors: list[tuple[int, str]] = []
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    seen_content = False
    for number, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if not seen_content:
            seen_content = True
            if cells[0].casefold() in _HEADER_WORDS:
                continue
        if len(cells) > 3:
            errors.append((number, f"Satır {number}: en fazla 3 sütun olmalı (telefon, ad, dil)."))
            continue
        phone = cells[0]
        if not phone:
            errors.append((number, f"Satır {number}: telefon numarası boş."))
            continue
        name = cells[1] if len(cells) > 1 and cells[1] else None
        language: Language | None = None
        if len(cells) > 2 and cells[2]:
            language = _LANGUAGES.get(cells[2].casefold())
            if language is None:
                errors.append(
                    (number, f"Satır {number}: dil anlaşılamadı: {cells[2]} (tr veya en yazın).")
                )
                continue
        rows.append(TargetRow(phone=phone, name=name, language=language, line=number))
    return rows, errors


def target_page(
    session: Session, campaign_id: int, *, offset: int, limit: int
) -> list[tuple[CampaignTarget, str | None]]:
    """One page of a campaign's targets in id order, each with its ticket's reference code
    (None without a ticket). Reads only."""
    rows = session.execute(
        select(CampaignTarget, Ticket.reference_code)
        .outerjoin(Ticket, Ticket.id == CampaignTarget.ticket_id)
        .where(CampaignTarget.campaign_id == campaign_id)
        .order_by(CampaignTarget.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [(target, code) for target, code in rows]
