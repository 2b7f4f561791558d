"""The one way in: every channel opens tickets here (R1, R2, R3.1).

``open_ticket`` is the single service behind the phone, desk, web, e-mail, SMS, social
media, petition/CİMER, field team, neighbourhood meeting, mayor's office and switchboard
channels; the channel is a parameter, not a code path.

How it stays cheap (issue 2, ≥ 200 tickets/s on 2 cores; docs/benchmarks.md and decision
0009): every statement is a Core construct built once per process and executed with
parameters (building and hashing SQLAlchemy statements costs more than running them); the
rows are written with Core ``INSERT``/``UPDATE`` statements, never by a unit-of-work flush,
and the objects handed back (ticket, contact, acknowledgement) are made persistent in the
session from the values written, without reading them back. The first statement takes the
advisory locks and reads the catalogue row and the holidays the SLA needs; the second looks
the citizen up by id, TC number and phone, locks the citizens found and looks for a replayed
external reference; the third finds the open duplicate and the ticket to group with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    Select,
    bindparam,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import (
    Language,
    Notification,
    PhoneType,
    PossibleCitizenMatch,
    StaffUser,
    Ticket,
    TicketContact,
    TicketStatus,
    TimelineAction,
)
from services import reference_code, timeline
from services.calendar_store import (
    HolidayWindow,
    get_calendar,
    holidays_in_window,
    window_calendar,
)
from services.citizens import CitizenResolution, look_up, settle
from services.grouping import COLUMNS, IS_OPEN, group_of, same_address_query, same_place
from services.intake_request import (
    CheckedRequest,
    IntakeRequest,
    ValidIntake,
    catalogue_params,
    catalogue_query,
    check,
    complete,
)
from services.locks import LOCK_COLUMN, lock_params
from services.routing import route_for
from services.sla import Deadlines, deadlines_for
from services.ticket_ids import adopt_loaded, adopt_written, allocate_ticket_id
from services.ticket_notifications import queue_notice


@dataclass
class IntakeResult:
    """What happened to one contact."""

    ticket: Ticket
    contact: TicketContact
    created: bool  # False: attached to an existing open ticket (duplicate) or replayed
    replayed: bool = False  # the same (channel, external_ref) was seen before
    citizen_match: str = "none"
    possible_matches: list[int] = field(default_factory=list)
    grouped_with: int | None = None  # id of the ticket this one was grouped with
    acknowledgement: Notification | None = None


def open_ticket(
    session: Session, actor: StaffUser, now: datetime, request: IntakeRequest
) -> IntakeResult:
    """Open a ticket for ``request`` or attach the contact to the ticket it duplicates.

    Guarantees, all within the caller's transaction (nothing is committed here):
    - invalid input raises a typed :class:`~services.errors.DomainError` before any write;
    - a repeated ``(channel, external_ref)`` returns the earlier result and writes nothing;
    - the citizen is found or created by TC number, else by phone (never merging two TC
      numbers; phone-only matches recorded as possible matches);
    - an open ticket of the same type for the same citizen (or, without a citizen, the same
      phone) receives the contact instead of a second ticket being opened;
    - a new ticket is routed by its type (or referred to the external institution), gets
      ``due_at`` from the working calendar, a unique reference code with a check
      character, a timeline, and is grouped with other citizens' reports of the same place;
    - the acknowledgement SMS (or e-mail) carrying the reference code is in the outbox;
    - the rows are written when this returns (pending changes of the session are flushed
      first) and the returned objects are persistent in ``session``; a rollback (of a
      savepoint too) removes them with their rows.
    """
    checked = check(now, request)
    window = HolidayWindow.starting(_start_hint(request, now))
    locks = lock_params(session, _identity_keys(checked))
    params = {**catalogue_params(checked), **window.params(), **(locks or {})}
    session.flush()  # the statements below read and refer to what the caller has pending
    conn = session.connection()
    # One round trip: the identity locks, the catalogue row and the holidays of the SLA.
    statement = _first_statement(
        conn.dialect.name, checked.neighbourhood_name is not None, locks is not None
    )
    row = conn.execute(statement, params).one()
    valid = complete(checked, now, row)
    # One round trip: the citizens the contact may be (locked, after the identity keys: no
    # lock cycle is possible) and an earlier contact with the same external reference.
    ref = valid.external_ref
    lookup = look_up(
        session,
        valid.identity,
        also=_CONTACT_BY_REF if ref is not None else None,
        also_params={"channel": valid.channel, "external_ref": ref},
    )
    if lookup.also is not None:
        seen = session.get(TicketContact, lookup.also)
        assert seen is not None
        return IntakeResult(
            ticket=seen.ticket,
            contact=seen,
            created=False,
            replayed=True,
            citizen_match=seen.citizen_match,
        )
    resolution = settle(session, now, valid.identity, lookup)
    duplicate, same_address = _duplicate_or_same_address(conn, valid, resolution)
    if duplicate is not None:
        ticket = adopt_loaded(session, Ticket, _ticket_values(duplicate))
        return _attach(session, conn, actor, now, valid, resolution, ticket)
    return _create(session, conn, actor, now, valid, resolution, window, row.holidays, same_address)


@cache
def _first_statement(dialect_name: str, neighbourhood: bool, locking: bool) -> Select[Any]:
    holidays = holidays_in_window(dialect_name).label("holidays")
    also = (holidays,) + ((LOCK_COLUMN,) if locking else ())
    return catalogue_query(neighbourhood=neighbourhood, also=also)


def _start_hint(request: IntakeRequest, now: datetime) -> datetime:
    """Where the SLA clock will start, as far as can be told before validation."""
    received = request.received_at
    return received if received is not None and received.tzinfo is not None else now


def _identity_keys(checked: CheckedRequest) -> list[str]:
    """What two concurrent contacts must not decide on at the same time."""
    identity = checked.identity
    keys = []
    if checked.external_ref is not None:
        keys.append(f"ref:{checked.channel.value}:{checked.external_ref}")
    if identity.citizen_id is not None:
        keys.append(f"citizen:{identity.citizen_id}")
    if identity.tc_number:
        keys.append(f"tc:{identity.tc_number}")
    if identity.phone is not None:
        keys.append(f"phone:{identity.phone.e164}")
    if identity.email:
        keys.append(f"email:{identity.email}")
    return keys


# Statements built once per process: executing a prepared construct with parameters costs
# no statement building or cache-key work. INSERTs list only the columns given, so columns
# added to the tables later take their defaults.
_CONTACT_BY_REF = (
    select(TicketContact.id)
    .where(
        TicketContact.channel == bindparam("channel"),
        TicketContact.external_ref == bindparam("external_ref"),
    )
    .scalar_subquery()
)
# What the attach path and grouping read of an existing ticket (the ticket returned for a
# duplicate loads any other column when it is first used).
_FOUND_AS = "found_as"
_DUPLICATE, _SAME_ADDRESS = 0, 1
_TICKET_COLUMNS: tuple[Any, ...] = (*COLUMNS, Ticket.citizen_id, Ticket.language, Ticket.status)
_TICKET_FIELDS = tuple(column.key for column in _TICKET_COLUMNS)


def _found_as(kind: int) -> tuple[Any, ...]:
    return (literal_column(str(kind), Integer).label(_FOUND_AS), *_TICKET_COLUMNS)


@cache
def _duplicate_or_same_address_query(
    duplicate_by: str | None, address: bool, has_citizen: bool, has_neighbourhood: bool
) -> Select[*tuple[Any, ...]]:
    """The open duplicate (``duplicate_by`` citizen or phone) and the first open ticket of
    another citizen at the same address, in one statement of at most two rows."""
    parts: list[Select[*tuple[Any, ...]]] = []
    if duplicate_by is not None:
        duplicate = select(*_found_as(_DUPLICATE)).where(
            Ticket.ticket_type_id == bindparam("ticket_type_id"),
            IS_OPEN,
        )
        if duplicate_by == "citizen":
            duplicate = duplicate.where(Ticket.citizen_id == bindparam("citizen_id"))
        else:  # no citizen: a ticket opened for the same phone, without a citizen
            by_phone = TicketContact.phone_e164 == bindparam("e164")
            duplicate = duplicate.where(
                Ticket.citizen_id.is_(None),
                Ticket.id.in_(select(TicketContact.ticket_id).where(by_phone)),
            )
        parts.append(duplicate.order_by(Ticket.id).limit(1))
    if address:
        parts.append(
            same_address_query(has_citizen, False, has_neighbourhood, _found_as(_SAME_ADDRESS))
        )
    if len(parts) == 1:
        return parts[0]
    # Each part keeps its own ORDER BY … LIMIT 1 inside a subquery (SQLite needs that).
    subqueries = [part.subquery() for part in parts]
    union = union_all(*(select(*sub.c) for sub in subqueries))
    return select(*union.subquery().c)


def _duplicate_or_same_address(
    conn: Connection, valid: ValidIntake, resolution: CitizenResolution
) -> tuple[RowMapping | None, RowMapping | None]:
    """The open ticket this contact duplicates, and (to group a new ticket with) another
    citizen's open ticket of the same type at the same address: one round trip."""
    citizen, phone = resolution.citizen, valid.identity.phone
    duplicate_by = "citizen" if citizen is not None else "phone" if phone is not None else None
    address = valid.place_key is not None
    if duplicate_by is None and not address:
        return None, None
    params: dict[str, Any] = {
        "ticket_type_id": valid.ticket_type.id,
        "place_key": valid.place_key,
        "neighbourhood_id": valid.neighbourhood_id,
    }
    if citizen is not None:
        params["citizen_id"] = citizen.id
    elif phone is not None:
        params["e164"] = phone.e164
    query = _duplicate_or_same_address_query(
        duplicate_by, address, citizen is not None, valid.neighbourhood_id is not None
    )
    found = {row._mapping[_FOUND_AS]: row._mapping for row in conn.execute(query, params)}
    return found.get(_DUPLICATE), found.get(_SAME_ADDRESS)


def _ticket_values(found: RowMapping) -> dict[str, Any]:
    return {name: found[name] for name in _TICKET_FIELDS}


_INSERT_TICKET = insert(Ticket)
_INSERT_TICKET_RETURNING_ID = insert(Ticket).returning(Ticket.id)
_SET_REFERENCE_CODE = (
    update(Ticket).where(Ticket.id == bindparam("b_id")).values(reference_code=bindparam("b_code"))
)
_TOUCH_TICKET = (
    update(Ticket).where(Ticket.id == bindparam("b_id")).values(updated_at=bindparam("b_now"))
)
_INSERT_CONTACT = insert(TicketContact).returning(TicketContact.id)
_KNOWN_MATCHES = select(PossibleCitizenMatch.candidate_id).where(
    PossibleCitizenMatch.phone_e164 == bindparam("e164"),
    PossibleCitizenMatch.citizen_id == bindparam("citizen_id"),
)
_KNOWN_MATCHES_NOBODY = select(PossibleCitizenMatch.candidate_id).where(
    PossibleCitizenMatch.phone_e164 == bindparam("e164"),
    PossibleCitizenMatch.citizen_id.is_(None),
)
_INSERT_MATCH = insert(PossibleCitizenMatch)


def _new_contact(
    session: Session,
    conn: Connection,
    actor: StaffUser,
    valid: ValidIntake,
    resolution: CitizenResolution,
    ticket_id: int,
) -> TicketContact:
    phone = valid.identity.phone
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "original_ticket_id": ticket_id,
        "channel": valid.channel,
        "external_ref": valid.external_ref,
        "citizen_id": resolution.citizen.id if resolution.citizen else None,
        "citizen_match": resolution.match,
        "contact_name": valid.contact_name,
        "phone_e164": phone.e164 if phone else None,
        "phone_raw": phone.raw if phone else None,
        "email": valid.identity.email,
        "social_handle": valid.social_handle,
        "description": valid.description,
        "received_at": valid.received_at,
        "received_by_id": actor.id,
        "place_of_application": valid.place_of_application,
    }
    values["id"] = conn.execute(_INSERT_CONTACT, values).scalar_one()
    return adopt_written(session, TicketContact, values)


def _possible_matches(
    conn: Connection,
    actor: StaffUser,
    now: datetime,
    valid: ValidIntake,
    resolution: CitizenResolution,
    ticket_id: int,
    entries: list[dict[str, Any]],
) -> list[int]:
    if not resolution.candidates or valid.identity.phone is None:
        return []
    e164 = valid.identity.phone.e164
    citizen_id = resolution.citizen.id if resolution.citizen else None
    if citizen_id is None:
        known = set(conn.scalars(_KNOWN_MATCHES_NOBODY, {"e164": e164}))
    else:
        known = set(conn.scalars(_KNOWN_MATCHES, {"e164": e164, "citizen_id": citizen_id}))
    ids = [candidate.id for candidate in resolution.candidates]
    new = [
        {
            "citizen_id": citizen_id,
            "candidate_id": candidate_id,
            "phone_e164": e164,
            "ticket_id": ticket_id,
            "found_at": now,
            "reviewed": False,
        }
        for candidate_id in ids
        if candidate_id not in known  # recorded once per pair and phone, never twice
    ]
    if new:
        conn.execute(_INSERT_MATCH, new)
    entries.append(
        timeline.entry(
            ticket_id,
            actor.id,
            now,
            TimelineAction.POSSIBLE_CITIZEN_MATCH,
            note="Telefon numarası başka vatandaş kayıtlarıyla eşleşiyor; inceleme bekliyor.",
            candidates=ids,
        )
    )
    return ids


def _attach(
    session: Session,
    conn: Connection,
    actor: StaffUser,
    now: datetime,
    valid: ValidIntake,
    resolution: CitizenResolution,
    ticket: Ticket,
) -> IntakeResult:
    contact = _new_contact(session, conn, actor, valid, resolution, ticket.id)
    conn.execute(_TOUCH_TICKET, {"b_id": ticket.id, "b_now": now})
    set_committed_value(ticket, "updated_at", now)  # the session's object follows its row
    entries = [
        timeline.entry(
            ticket.id,
            actor.id,
            now,
            TimelineAction.CONTACT_ADDED,
            note=valid.description or None,
            channel=valid.channel.value,
            contact_id=contact.id,
        )
    ]
    matches = _possible_matches(conn, actor, now, valid, resolution, ticket.id, entries)
    notice = queue_notice(
        session,
        ticket,
        actor,
        now,
        citizen=resolution.citizen,
        template="ticket_contact_added",
        key=f"ack:contact:{contact.id}",
        key_is_new=True,
        phone_hint=contact.phone_e164,
        phone_hint_is_mobile=_is_mobile(valid),
        email_hint=contact.email,
        available_at=valid.acknowledge_at,
    )
    if notice.timeline_entry is not None:
        entries.append(notice.timeline_entry)
    timeline.write(session, entries)
    return IntakeResult(
        ticket=ticket,
        contact=contact,
        created=False,
        citizen_match=resolution.match,
        possible_matches=matches,
        acknowledgement=notice.notification,
    )


def _is_mobile(valid: ValidIntake) -> bool:
    """The contact's phone is a mobile number (as classified when it was validated)."""
    phone = valid.identity.phone
    return phone is not None and phone.phone_type is PhoneType.MOBILE


def _deadlines(
    session: Session, valid: ValidIntake, window: HolidayWindow, holidays: str | None
) -> Deadlines:
    """SLA and legal deadlines on the holidays read with the first statement; the whole
    calendar is read only when a deadline falls outside that window."""
    calendar = window_calendar(holidays)
    if calendar is not None:
        deadlines = deadlines_for(calendar, valid.ticket_type, valid.received_at)
        if window.covers(valid.received_at, deadlines.due_at, deadlines.legal_due_at):
            return deadlines
    return deadlines_for(get_calendar(session), valid.ticket_type, valid.received_at)


def _create(
    session: Session,
    conn: Connection,
    actor: StaffUser,
    now: datetime,
    valid: ValidIntake,
    resolution: CitizenResolution,
    window: HolidayWindow,
    holidays: str | None,
    same_address: RowMapping | None,
) -> IntakeResult:
    route = route_for(valid.ticket_type)
    deadlines = _deadlines(session, valid, window, holidays)
    citizen = resolution.citizen
    status = TicketStatus.RESOLVED if valid.resolved_at_first_contact else route.initial_status
    # Looked up before the new row is written, so that it cannot find itself.
    other = same_address or same_place(
        conn,
        ticket_type_id=valid.ticket_type.id,
        citizen_id=citizen.id if citizen else None,
        neighbourhood_id=valid.neighbourhood_id,
        place_key=valid.place_key,
        latitude=valid.latitude,
        longitude=valid.longitude,
        by_address=False,  # read with the duplicate check
    )
    group_id = group_of(session, now, other) if other is not None else None
    values: dict[str, Any] = {
        "kind": valid.kind,
        "channel": valid.channel,
        "status": status,
        "language": valid.language or (citizen.preferred_language if citizen else Language.TR),
        "citizen_id": citizen.id if citizen else None,
        "ticket_type_id": valid.ticket_type.id,
        "department_id": route.department_id,
        "external_institution_id": route.external_institution_id,
        "assigned_to_id": None,
        "neighbourhood_id": valid.neighbourhood_id,
        "household_id": citizen.household_id if citizen else None,
        "address_text": valid.address_text,
        "place_key": valid.place_key,
        "latitude": valid.latitude,
        "longitude": valid.longitude,
        "description": valid.description,
        "received_at": valid.received_at,
        "received_by_id": actor.id,
        "place_of_application": valid.place_of_application,
        "due_at": deadlines.due_at,
        "legal_due_at": deadlines.legal_due_at,
        "escalation_level": 0,
        "resolution": valid.resolution if valid.resolved_at_first_contact else None,
        "resolved_at": now if valid.resolved_at_first_contact else None,
        "resolved_at_first_contact": valid.resolved_at_first_contact,
        "merged_into_id": None,
        "group_id": group_id,
        "updated_at": now,
    }
    ticket_id = allocate_ticket_id(session)
    if ticket_id is not None:  # PostgreSQL: id and reference code in the INSERT
        values["id"] = ticket_id
        values["reference_code"] = reference_code.encode(ticket_id)
        conn.execute(_INSERT_TICKET, values)
    else:  # SQLite: writers are serialised; the code follows the id
        ticket_id = conn.execute(_INSERT_TICKET_RETURNING_ID, values).scalar_one()
        values["id"] = ticket_id
        values["reference_code"] = reference_code.encode(ticket_id)
        conn.execute(_SET_REFERENCE_CODE, {"b_id": ticket_id, "b_code": values["reference_code"]})
    ticket = adopt_written(session, Ticket, values)
    contact = _new_contact(session, conn, actor, valid, resolution, ticket_id)
    entries = [
        timeline.entry(
            ticket_id,
            actor.id,
            now,
            TimelineAction.OPENED,
            to_status=route.initial_status,
            channel=valid.channel.value,
            ticket_type=valid.ticket_type.code,
            citizen_match=resolution.match,
        )
    ]
    institution = valid.institution if route.external_institution_id else None
    if institution is not None:
        entries.append(
            timeline.entry(
                ticket_id,
                actor.id,
                now,
                TimelineAction.REFERRED,
                note=f"{institution.name_tr} sorumluluğunda; vatandaşa bildirildi.",
                external_institution=institution.code,
            )
        )
    else:
        entries.append(
            timeline.entry(
                ticket_id,
                actor.id,
                now,
                TimelineAction.ROUTED,
                department_id=route.department_id,
                due_at=deadlines.due_at.isoformat(),
            )
        )
    if valid.resolved_at_first_contact:
        entries.append(
            timeline.entry(
                ticket_id,
                actor.id,
                now,
                TimelineAction.RESOLVED,
                from_status=route.initial_status,
                to_status=TicketStatus.RESOLVED,
                note=valid.resolution,
                first_contact=True,
            )
        )
    matches = _possible_matches(conn, actor, now, valid, resolution, ticket_id, entries)
    if other is not None:
        entries.append(
            timeline.entry(
                ticket_id,
                actor.id,
                now,
                TimelineAction.GROUPED,
                note=f"Aynı yerde aynı sorun: {other['reference_code']}",
                group_id=group_id,
                other_ticket=other["reference_code"],
            )
        )
    if institution is not None:
        template = "ticket_referred"
        extra = {
            "institution": institution.name_tr,
            "institution_en": institution.name_en,
            "institution_phone": institution.phone or "-",
        }
    else:
        template, extra = "ticket_opened", {}
    notice = queue_notice(
        session,
        ticket,
        actor,
        now,
        citizen=citizen,
        template=template,
        key=f"ack:ticket:{ticket_id}",
        key_is_new=True,
        phone_hint=contact.phone_e164,
        phone_hint_is_mobile=_is_mobile(valid),
        email_hint=contact.email,
        available_at=valid.acknowledge_at,
        extra=extra,
    )
    if notice.timeline_entry is not None:
        entries.append(notice.timeline_entry)
    timeline.write(session, entries)
    return IntakeResult(
        ticket=ticket,
        contact=contact,
        created=True,
        citizen_match=resolution.match,
        possible_matches=matches,
        grouped_with=other["id"] if other is not None else None,
        acknowledgement=notice.notification,
    )
