"""The mayor's weekly random-call list (R5.4): draw, publish, record results, report.

Every week (Monday 09:00 Europe/Istanbul by default; ``jobs.mayor``) a few tickets of the
past week are drawn at random, stratified by neighbourhood and department
(:mod:`services.mayor_draw`), and published to the mayor's office (Özel Kalem) by e-mail
through the outbox and on the console. The office records each call's result and may open
a follow-up ticket, which goes through the one intake path with channel ``mayors_office``
(and so lands on the coordination desk). The next Monday the supervisors get the completion
report of the previous list together with the new one. Decision 0022.

Services here take the session, ``now`` and the actor explicitly and never commit.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    Channel,
    Citizen,
    CitizenPhone,
    DoNotCallNumber,
    Language,
    MayorCallEntry,
    MayorCallList,
    MayorCallResult,
    NotificationChannel,
    PhoneType,
    Role,
    StaffUser,
    Ticket,
    TicketContact,
    TicketStatus,
)
from services import outbox
from services.campaign_targets import call_refusals
from services.errors import InvalidField, NotPermitted, UnknownEntity
from services.intake import open_ticket
from services.intake_request import IntakeRequest
from services.mayor_draw import RULE_VERSION, Candidate, select_entries

LOCAL_TZ = ZoneInfo("Europe/Istanbul")
READERS = frozenset({Role.MAYORS_OFFICE, Role.SUPERVISOR})  # see the lists, record results
DRAWERS = frozenset({Role.SUPERVISOR})  # draw the week's list by hand (R5.4)
MAX_NOTES = 2000
SEED_BITS = 48  # seeds stay exact in JSON, JavaScript and BIGINT


# --- weeks ---------------------------------------------------------------------------------


def week_start_of(moment: datetime, tz: ZoneInfo = LOCAL_TZ) -> date:
    """The local Monday of the week holding ``moment`` (aware)."""
    local = moment.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


def pool_window(week_start: date, tz: ZoneInfo = LOCAL_TZ) -> tuple[datetime, datetime]:
    """The past week the list of ``week_start`` draws from: the previous local Monday 00:00
    up to (not including) ``week_start`` 00:00."""
    end = datetime.combine(week_start, time(0), tzinfo=tz)
    start = datetime.combine(week_start - timedelta(days=7), time(0), tzinfo=tz)
    return start, end


# --- the pool ------------------------------------------------------------------------------


def build_candidates(
    session: Session, *, week_start: date, exclude_weeks: int, tz: ZoneInfo = LOCAL_TZ
) -> list[Candidate]:
    """Every ticket received in the past week (merged tickets left out), as draw candidates
    with the reason each one cannot be drawn, if any (R5.4, R5.6).

    The number called is the ticket's first contact's phone, else the citizen's (mobile
    first, most recently seen). Excluded: no such phone (``no_phone``); a citizen who asked
    not to be called (``do_not_call``) or gave no call consent (``no_consent``); a number on
    the do-not-call list (``do_not_call``); a citizen or number already on a list of the
    ``exclude_weeks`` weeks before (``recent_list``). Reads only.
    """
    start, end = pool_window(week_start, tz)
    tickets = session.execute(
        select(
            Ticket.id,
            Ticket.citizen_id,
            Ticket.neighbourhood_id,
            Ticket.department_id,
        )
        .where(
            Ticket.received_at >= start,
            Ticket.received_at < end,
            Ticket.merged_into_id.is_(None),
            Ticket.status != TicketStatus.MERGED,
        )
        .order_by(Ticket.id)
    ).all()
    if not tickets:
        return []
    ticket_ids = [t.id for t in tickets]
    contact_phone: dict[int, str] = {}
    for ticket_id, phone in session.execute(
        select(TicketContact.ticket_id, TicketContact.phone_e164)
        .where(TicketContact.ticket_id.in_(ticket_ids), TicketContact.phone_e164.is_not(None))
        .order_by(TicketContact.id)
    ):
        if phone:
            contact_phone.setdefault(ticket_id, phone)
    citizen_ids = sorted({t.citizen_id for t in tickets if t.citizen_id is not None})
    citizens = {
        c.id: c for c in session.scalars(select(Citizen).where(Citizen.id.in_(citizen_ids)))
    }
    citizen_phone: dict[int, str] = {}
    phones = session.scalars(
        select(CitizenPhone)
        .where(CitizenPhone.citizen_id.in_(citizen_ids))
        .order_by(
            CitizenPhone.citizen_id,
            (CitizenPhone.phone_type != PhoneType.MOBILE),
            CitizenPhone.last_seen_at.desc(),
            CitizenPhone.id,
        )
    )
    for phone_row in phones:
        citizen_phone.setdefault(phone_row.citizen_id, phone_row.e164)
    chosen = {
        t.id: contact_phone.get(t.id)
        or (citizen_phone.get(t.citizen_id) if t.citizen_id is not None else None)
        for t in tickets
    }
    numbers = sorted({p for p in chosen.values() if p})
    blocked = set(
        session.scalars(
            select(DoNotCallNumber.phone_e164).where(DoNotCallNumber.phone_e164.in_(numbers))
        )
    )
    # A ticket with no citizen: anyone holding its number who opted out is enough (R5.6),
    # as for campaign targets.
    anonymous = sorted({phone for t in tickets if t.citizen_id is None and (phone := chosen[t.id])})
    opted_out = {
        e164
        for e164, note in zip(
            anonymous, call_refusals(session, [(e164, None) for e164 in anonymous]), strict=True
        )
        if note is not None
    }
    recent_citizens, recent_phones = _recently_listed(session, week_start, exclude_weeks)
    result = []
    for t in tickets:
        phone = chosen[t.id]
        citizen = citizens.get(t.citizen_id) if t.citizen_id is not None else None
        reason: str | None = None
        if not phone:
            reason = "no_phone"
        elif (citizen is not None and citizen.do_not_call) or phone in blocked | opted_out:
            reason = "do_not_call"
        elif citizen is not None and not citizen.consent_calls:
            reason = "no_consent"
        elif t.citizen_id in recent_citizens or phone in recent_phones:
            reason = "recent_list"
        result.append(
            Candidate(
                ticket_id=t.id,
                person=f"c:{t.citizen_id}" if t.citizen_id is not None else f"p:{phone}",
                phone_e164=phone or "",
                neighbourhood_id=t.neighbourhood_id,
                department_id=t.department_id,
                citizen_id=t.citizen_id,
                excluded=reason,
            )
        )
    return result


def _recently_listed(
    session: Session, week_start: date, exclude_weeks: int
) -> tuple[set[int], set[str]]:
    """Citizens and numbers on a list of the ``exclude_weeks`` weeks before ``week_start``."""
    if exclude_weeks <= 0:
        return set(), set()
    since = week_start - timedelta(weeks=exclude_weeks)
    rows = session.execute(
        select(MayorCallEntry.citizen_id, MayorCallEntry.phone_e164)
        .join(MayorCallList, MayorCallList.id == MayorCallEntry.list_id)
        .where(MayorCallList.week_start >= since, MayorCallList.week_start < week_start)
    ).all()
    return {r.citizen_id for r in rows if r.citizen_id is not None}, {r.phone_e164 for r in rows}


def _pool_record(candidates: list[Candidate]) -> list[list[Any]]:
    """The eligible pool as stored in the list's criteria, enough to redraw it."""
    return [
        [c.ticket_id, c.person, c.phone_e164, c.neighbourhood_id, c.department_id, c.citizen_id]
        for c in candidates
        if c.excluded is None
    ]


def recorded_pool(call_list: MayorCallList) -> list[Candidate]:
    """The eligible pool the list was drawn from, as recorded at the draw."""
    return [
        Candidate(
            ticket_id=int(row[0]),
            person=str(row[1]),
            phone_e164=str(row[2]),
            neighbourhood_id=row[3],
            department_id=row[4],
            citizen_id=row[5],
        )
        for row in call_list.criteria.get("pool", [])
    ]


def redraw(call_list: MayorCallList) -> list[int]:
    """The ticket ids the recorded seed draws from the recorded pool: equal to the list's
    entries (in order) for every list drawn by :func:`draw_weekly_list`."""
    picks = select_entries(recorded_pool(call_list), size=call_list.size, seed=call_list.seed)
    return [c.ticket_id for c in picks]


# --- draw ----------------------------------------------------------------------------------


def list_for_week(session: Session, week_start: date) -> MayorCallList | None:
    return session.scalars(
        select(MayorCallList).where(MayorCallList.week_start == week_start)
    ).first()


def draw_weekly_list(
    session: Session,
    *,
    now: datetime,
    actor: StaffUser | None,
    size: int,
    exclude_weeks: int,
    seed: int | None = None,
    tz: ZoneInfo = LOCAL_TZ,
) -> MayorCallList:
    """Draw the list of the week holding ``now`` (R5.4), or return the one already drawn.

    Guarantees: at most one list per local week (``week_start`` is unique; a concurrent
    second draw loses on the constraint and gets the first list back); ``size`` entries at
    most, from the past week's tickets, by the stratified rule of
    :mod:`services.mayor_draw`, never a citizen or number that opted out, has no reachable
    phone or was on a list in the ``exclude_weeks`` weeks before; the ``seed`` (random
    when not given) and the eligible pool are recorded, so :func:`redraw` gives the same
    entries. ``actor`` None means the scheduler. A person drawing must be a supervisor.
    Written in the caller's transaction (a savepoint), never committed.
    """
    if actor is not None and actor.role not in DRAWERS:
        raise NotPermitted(
            "Haftalık listeyi yalnızca süpervizör çekebilir.",
            "Only a supervisor may draw the weekly list.",
        )
    if size < 1:
        raise InvalidField("Liste boyu en az 1 olmalı.", "The list size must be at least 1.")
    week_start = week_start_of(now, tz)
    existing = list_for_week(session, week_start)
    if existing is not None:
        return existing
    candidates = build_candidates(
        session, week_start=week_start, exclude_weeks=exclude_weeks, tz=tz
    )
    if seed is None:
        seed = secrets.randbits(SEED_BITS)
    picks = select_entries(candidates, size=size, seed=seed)
    start, end = pool_window(week_start, tz)
    excluded = Counter(c.excluded for c in candidates if c.excluded is not None)
    call_list = MayorCallList(
        week_start=week_start,
        seed=seed,
        size=size,
        drawn_at=now,
        drawn_by_id=actor.id if actor is not None else None,
        pool_size=sum(1 for c in candidates if c.excluded is None),
        criteria={
            "rule": RULE_VERSION,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "exclude_weeks": exclude_weeks,
            "tickets_in_window": len(candidates),
            "excluded": dict(sorted(excluded.items())),
            "pool": _pool_record(candidates),
        },
    )
    call_list.entries = [
        MayorCallEntry(
            position=position,
            ticket_id=c.ticket_id,
            citizen_id=c.citizen_id,
            phone_e164=c.phone_e164,
            neighbourhood_id=c.neighbourhood_id,
            department_id=c.department_id,
            result=MayorCallResult.PENDING,
        )
        for position, c in enumerate(picks, start=1)
    ]
    try:
        with session.begin_nested():
            session.add(call_list)
            session.flush()
    except IntegrityError:
        winner = list_for_week(session, week_start)
        if winner is None:
            raise
        return winner
    return call_list


# --- reading -------------------------------------------------------------------------------


def require_reader(actor: StaffUser) -> None:
    """The mayor's office and supervisors see the lists and record results."""
    if actor.role not in READERS:
        raise NotPermitted(
            "Başkanlık arama listesini yalnızca Özel Kalem ve süpervizörler görebilir.",
            "Only the mayor's office and supervisors may see the mayor's call list.",
        )


def get_list(session: Session, list_id: int) -> MayorCallList:
    call_list = session.get(MayorCallList, list_id)
    if call_list is None:
        raise UnknownEntity("Liste bulunamadı.", "No such list.", list_id=list_id)
    return call_list


def latest_list(session: Session) -> MayorCallList | None:
    return session.scalars(select(MayorCallList).order_by(MayorCallList.week_start.desc())).first()


def recent_lists(session: Session, limit: int = 12) -> list[MayorCallList]:
    return list(
        session.scalars(
            select(MayorCallList).order_by(MayorCallList.week_start.desc()).limit(limit)
        )
    )


def previous_list(session: Session, call_list: MayorCallList) -> MayorCallList | None:
    """The list of the latest week before ``call_list``'s."""
    return session.scalars(
        select(MayorCallList)
        .where(MayorCallList.week_start < call_list.week_start)
        .order_by(MayorCallList.week_start.desc())
    ).first()


@dataclass(frozen=True)
class EntryRow:
    """One entry as the console, the PDF and the e-mails show it."""

    entry_id: int
    position: int
    reference_code: str
    ticket_id: int
    citizen_name: str
    phone_e164: str
    neighbourhood: str
    department_tr: str
    department_en: str
    ticket_type_tr: str
    ticket_type_en: str
    summary: str
    result: MayorCallResult
    notes: str
    called_at: datetime | None
    recorded_by: str
    follow_up_code: str | None
    follow_up_ticket_id: int | None


def entry_rows(session: Session, call_list: MayorCallList) -> list[EntryRow]:
    """The list's entries in draw order, with the names needed to call and to report."""
    rows = []
    for entry in call_list.entries:
        ticket = entry.ticket
        follow = entry.follow_up_ticket
        citizen = entry.citizen
        contact_name = ticket.contacts[0].contact_name if ticket.contacts else None
        summary = " ".join(ticket.description.split())
        rows.append(
            EntryRow(
                entry_id=entry.id,
                position=entry.position,
                reference_code=ticket.reference_code or str(ticket.id),
                ticket_id=ticket.id,
                citizen_name=(citizen.display_name if citizen else "") or contact_name or "—",
                phone_e164=entry.phone_e164,
                neighbourhood=entry.neighbourhood.name if entry.neighbourhood else "—",
                department_tr=entry.department.name_tr if entry.department else "—",
                department_en=entry.department.name_en if entry.department else "—",
                ticket_type_tr=ticket.ticket_type.name_tr,
                ticket_type_en=ticket.ticket_type.name_en,
                summary=summary if len(summary) <= 160 else summary[:157] + "…",
                result=entry.result,
                notes=entry.notes or "",
                called_at=entry.called_at,
                recorded_by=entry.recorded_by.full_name if entry.recorded_by else "",
                follow_up_code=(follow.reference_code or str(follow.id)) if follow else None,
                follow_up_ticket_id=entry.follow_up_ticket_id,
            )
        )
    return rows


# --- results -------------------------------------------------------------------------------

RECORDABLE = frozenset(
    {MayorCallResult.REACHED, MayorCallResult.NOT_REACHED, MayorCallResult.WRONG_NUMBER}
)


def record_call_result(
    session: Session,
    *,
    actor: StaffUser,
    now: datetime,
    entry_id: int,
    result: MayorCallResult | str,
    notes: str | None,
    follow_up_text: str | None = None,
    called_at: datetime | None = None,
) -> MayorCallEntry:
    """Record how the call of one entry went (R5.4): result, notes, when and by whom.

    Guarantees: only the mayor's office or a supervisor may record; the result is one of
    reached / not reached / wrong number (a later recording corrects an earlier one);
    ``follow_up_text`` opens a follow-up through :func:`services.intake.open_ticket` with
    channel ``mayors_office`` for the entry's citizen and number (external reference
    ``mayor-entry:<id>``: replay-safe), linked from the entry — at most one per entry; if
    the citizen already has an open unclassified ticket, intake attaches the contact to it
    and that ticket is linked. Invalid input raises before any write. Never commits.
    """
    require_reader(actor)
    try:
        outcome = MayorCallResult(result)
    except ValueError:
        outcome = MayorCallResult.PENDING
    if outcome not in RECORDABLE:
        raise InvalidField(
            "Arama sonucu geçersiz.", "The call result is not valid.", field="result"
        )
    clean_notes = (notes or "").strip()
    if len(clean_notes) > MAX_NOTES:
        raise InvalidField(
            f"Not çok uzun (en fazla {MAX_NOTES} karakter).",
            f"The notes are too long (at most {MAX_NOTES} characters).",
            field="notes",
        )
    follow_text = (follow_up_text or "").strip()
    entry = session.get(MayorCallEntry, entry_id)
    if entry is None:
        raise UnknownEntity("Liste kaydı bulunamadı.", "No such list entry.", entry_id=entry_id)
    if follow_text and entry.follow_up_ticket_id is not None:
        raise InvalidField(
            "Bu kayıt için takip başvurusu zaten açılmış.",
            "A follow-up has already been opened for this entry.",
            field="follow_up",
        )
    if follow_text and len(follow_text) > MAX_NOTES:
        raise InvalidField(
            f"Takip metni çok uzun (en fazla {MAX_NOTES} karakter).",
            f"The follow-up text is too long (at most {MAX_NOTES} characters).",
            field="follow_up",
        )
    if follow_text:
        ticket = entry.ticket
        code = ticket.reference_code or str(ticket.id)
        week = entry.call_list.week_start.strftime("%d.%m.%Y")
        opened = open_ticket(
            session,
            actor,
            now,
            IntakeRequest(
                channel=Channel.MAYORS_OFFICE,
                description=f"{follow_text}\n\n(Başkanlık araması, {week} haftası, {code})",
                citizen_id=entry.citizen_id,
                phone=entry.phone_e164,
                language=ticket.language,
                neighbourhood=entry.neighbourhood.name if entry.neighbourhood else None,
                external_ref=f"mayor-entry:{entry.id}",
                received_at=now,
            ),
        )
        entry.follow_up_ticket_id = opened.ticket.id
    entry.result = outcome
    entry.notes = clean_notes or None
    entry.called_at = called_at or now
    entry.recorded_by_id = actor.id
    session.flush()
    return entry


# --- report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionReport:
    """How a week's list went: the counts per result and every entry (R5.4)."""

    list_id: int
    week_start: date
    total: int
    counts: dict[MayorCallResult, int]
    follow_ups: int
    rows: list[EntryRow] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.total - self.counts[MayorCallResult.PENDING]


def completion_report(session: Session, list_id: int) -> CompletionReport:
    """The completion report of list ``list_id``. Reads only."""
    call_list = get_list(session, list_id)
    rows = entry_rows(session, call_list)
    counts = {result: 0 for result in MayorCallResult}
    for row in rows:
        counts[row.result] += 1
    return CompletionReport(
        list_id=call_list.id,
        week_start=call_list.week_start,
        total=len(rows),
        counts=counts,
        follow_ups=sum(1 for r in rows if r.follow_up_ticket_id is not None),
        rows=rows,
    )


# --- publishing ----------------------------------------------------------------------------

RESULT_TEXT = {
    MayorCallResult.PENDING: ("aranmadı", "not called"),
    MayorCallResult.REACHED: ("ulaşıldı", "reached"),
    MayorCallResult.NOT_REACHED: ("ulaşılamadı", "not reached"),
    MayorCallResult.WRONG_NUMBER: ("yanlış numara", "wrong number"),
}


def _list_lines(rows: list[EntryRow], english: bool) -> str:
    if not rows:
        return "(boş liste)" if not english else "(empty list)"
    lines = []
    for r in rows:
        dept = r.department_en if english else r.department_tr
        kind = r.ticket_type_en if english else r.ticket_type_tr
        lines.append(
            f"{r.position}. {r.reference_code} — {r.citizen_name}, {r.phone_e164} — "
            f"{r.neighbourhood} — {dept} — {kind}"
        )
    return "\n".join(lines)


def _report_lines(report: CompletionReport, english: bool) -> str:
    lines = []
    for r in report.rows:
        text = RESULT_TEXT[r.result][1 if english else 0]
        line = f"{r.position}. {r.reference_code} — {r.citizen_name}: {text}"
        if r.notes:
            line += f" — {r.notes}"
        if r.follow_up_code:
            line += f" — {'follow-up' if english else 'takip'} {r.follow_up_code}"
        lines.append(line)
    return "\n".join(lines) or ("(empty list)" if english else "(boş liste)")


def _recipients(session: Session, role: Role) -> list[StaffUser]:
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.role == role, StaffUser.is_active, StaffUser.email.is_not(None))
            .order_by(StaffUser.id)
        )
    )


def _language(staff: StaffUser) -> Language:
    return Language.EN if staff.ui_language == "en" else Language.TR


def publish_list(session: Session, *, now: datetime, call_list: MayorCallList) -> int:
    """Publish the list (R5.4): mark it published and queue, in the caller's transaction,
    an e-mail with the list to every active mayor's office user with an address, and to
    every active supervisor the completion report of the previous list together with the
    new list (just the list when there is no previous one).

    Idempotent: ``published_at`` is set once and every e-mail has the idempotency key
    ``mayor-list:<list id>:<staff id>`` / ``mayor-report:<list id>:<staff id>``, so
    publishing again queues nothing new. Returns the number of e-mails in the outbox for it.
    """
    if call_list.published_at is None:
        call_list.published_at = now
    rows = entry_rows(session, call_list)
    week = call_list.week_start.strftime("%d.%m.%Y")
    list_payload: dict[str, Any] = {
        "week": week,
        "count": len(rows),
        "seed": call_list.seed,
        "entries": _list_lines(rows, english=False),
        "entries_en": _list_lines(rows, english=True),
        "list_id": call_list.id,
    }
    queued = 0
    for staff in _recipients(session, Role.MAYORS_OFFICE):
        assert staff.email is not None
        outbox.enqueue(
            session,
            now,
            key=f"mayor-list:{call_list.id}:{staff.id}",
            channel=NotificationChannel.EMAIL,
            recipient=staff.email,
            template="mayor_weekly_list",
            language=_language(staff),
            payload=list_payload,
        )
        queued += 1
    previous = previous_list(session, call_list)
    template, payload = "mayor_weekly_list", list_payload
    if previous is not None:
        report = completion_report(session, previous.id)
        template = "mayor_weekly_report"
        payload = {
            **list_payload,
            "week": previous.week_start.strftime("%d.%m.%Y"),
            "new_week": week,
            "reached": report.counts[MayorCallResult.REACHED],
            "not_reached": report.counts[MayorCallResult.NOT_REACHED],
            "wrong_number": report.counts[MayorCallResult.WRONG_NUMBER],
            "pending": report.counts[MayorCallResult.PENDING],
            "follow_ups": report.follow_ups,
            "report": _report_lines(report, english=False),
            "report_en": _report_lines(report, english=True),
            "previous_list_id": previous.id,
        }
    for staff in _recipients(session, Role.SUPERVISOR):
        assert staff.email is not None
        outbox.enqueue(
            session,
            now,
            key=f"mayor-report:{call_list.id}:{staff.id}",
            channel=NotificationChannel.EMAIL,
            recipient=staff.email,
            template=template,
            language=_language(staff),
            payload=payload,
        )
        queued += 1
    session.flush()
    return queued
