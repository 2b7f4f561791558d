"""The one way in: every channel opens tickets here (R1, R2, R3.1).

``open_ticket`` is the single service behind the phone, desk, web, e-mail, SMS, social
media, petition/CİMER, field team, neighbourhood meeting, mayor's office and switchboard
channels; the channel is a parameter, not a code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    ExternalInstitution,
    Language,
    Notification,
    PossibleCitizenMatch,
    StaffUser,
    Ticket,
    TicketContact,
    TicketStatus,
    TimelineAction,
)
from services import reference_code, timeline
from services.calendar_store import get_calendar
from services.citizens import CitizenResolution, resolve_citizen
from services.grouping import find_same_place, group_with
from services.intake_request import IntakeRequest, ValidIntake, validate
from services.locks import lock_keys
from services.routing import route_for
from services.sla import deadlines_for
from services.ticket_ids import allocate_ticket_id
from services.ticket_notifications import notify_citizen


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
    - the acknowledgement SMS (or e-mail) carrying the reference code is in the outbox.
    """
    valid = validate(session, now, request)
    lock_keys(session, _identity_keys(valid))
    if valid.external_ref is not None:
        seen = session.scalar(
            select(TicketContact).where(
                TicketContact.channel == valid.channel,
                TicketContact.external_ref == valid.external_ref,
            )
        )
        if seen is not None:
            return IntakeResult(
                ticket=seen.ticket,
                contact=seen,
                created=False,
                replayed=True,
                citizen_match=seen.citizen_match,
            )
    resolution = resolve_citizen(session, now, valid.identity)
    if resolution.citizen is not None:
        # Taken after the identity keys, never before them: no lock cycle is possible.
        lock_keys(session, [f"citizen:{resolution.citizen.id}"])
    existing = _open_duplicate(session, valid, resolution)
    if existing is not None:
        return _attach(session, actor, now, valid, resolution, existing)
    return _create(session, actor, now, valid, resolution)


def _identity_keys(valid: ValidIntake) -> list[str]:
    """What two concurrent contacts must not decide on at the same time."""
    identity = valid.identity
    keys = []
    if valid.external_ref is not None:
        keys.append(f"ref:{valid.channel.value}:{valid.external_ref}")
    if identity.citizen_id is not None:
        keys.append(f"citizen:{identity.citizen_id}")
    if identity.tc_number:
        keys.append(f"tc:{identity.tc_number}")
    if identity.phone is not None:
        keys.append(f"phone:{identity.phone.e164}")
    if identity.email:
        keys.append(f"email:{identity.email}")
    return keys


def _open_duplicate(
    session: Session, valid: ValidIntake, resolution: CitizenResolution
) -> Ticket | None:
    query = select(Ticket).where(
        Ticket.ticket_type_id == valid.ticket_type.id, Ticket.status.in_(OPEN_STATUSES)
    )
    if resolution.citizen is not None:
        query = query.where(Ticket.citizen_id == resolution.citizen.id)
    elif valid.identity.phone is not None:
        query = query.where(
            Ticket.citizen_id.is_(None),
            Ticket.id.in_(
                select(TicketContact.ticket_id).where(
                    TicketContact.phone_e164 == valid.identity.phone.e164
                )
            ),
        )
    else:
        return None
    return session.scalar(query.order_by(Ticket.id).limit(1))


def _new_contact(
    session: Session,
    actor: StaffUser,
    valid: ValidIntake,
    resolution: CitizenResolution,
    ticket: Ticket,
    *,
    flush: bool = True,
) -> TicketContact:
    phone = valid.identity.phone
    contact = TicketContact(
        ticket_id=ticket.id,
        original_ticket_id=ticket.id,
        channel=valid.channel,
        external_ref=valid.external_ref,
        citizen_id=resolution.citizen.id if resolution.citizen else None,
        citizen_match=resolution.match,
        contact_name=valid.contact_name,
        phone_e164=phone.e164 if phone else None,
        phone_raw=phone.raw if phone else None,
        email=valid.identity.email,
        social_handle=valid.social_handle,
        description=valid.description,
        received_at=valid.received_at,
        received_by_id=actor.id,
        place_of_application=valid.place_of_application,
    )
    session.add(contact)
    if flush:  # the caller needs contact.id
        session.flush()
    return contact


def _record_possible_matches(
    session: Session,
    actor: StaffUser,
    now: datetime,
    valid: ValidIntake,
    resolution: CitizenResolution,
    ticket: Ticket,
) -> list[int]:
    if not resolution.candidates or valid.identity.phone is None:
        return []
    ids = []
    citizen_id = resolution.citizen.id if resolution.citizen else None
    known = set(
        session.scalars(
            select(PossibleCitizenMatch.candidate_id).where(
                PossibleCitizenMatch.phone_e164 == valid.identity.phone.e164,
                PossibleCitizenMatch.citizen_id.is_(None)
                if citizen_id is None
                else PossibleCitizenMatch.citizen_id == citizen_id,
            )
        )
    )
    for candidate in resolution.candidates:
        ids.append(candidate.id)
        if candidate.id in known:  # recorded once per pair and phone, never twice
            continue
        session.add(
            PossibleCitizenMatch(
                citizen_id=resolution.citizen.id if resolution.citizen else None,
                candidate_id=candidate.id,
                phone_e164=valid.identity.phone.e164,
                ticket_id=ticket.id,
                found_at=now,
            )
        )
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.POSSIBLE_CITIZEN_MATCH,
        note="Telefon numarası başka vatandaş kayıtlarıyla eşleşiyor; inceleme bekliyor.",
        candidates=ids,
    )
    return ids


def _attach(
    session: Session,
    actor: StaffUser,
    now: datetime,
    valid: ValidIntake,
    resolution: CitizenResolution,
    ticket: Ticket,
) -> IntakeResult:
    contact = _new_contact(session, actor, valid, resolution, ticket)
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.CONTACT_ADDED,
        note=valid.description or None,
        channel=valid.channel.value,
        contact_id=contact.id,
    )
    matches = _record_possible_matches(session, actor, now, valid, resolution, ticket)
    ack = notify_citizen(
        session,
        ticket,
        actor,
        now,
        template="ticket_contact_added",
        key=f"ack:contact:{contact.id}",
        key_is_new=True,
        phone_hint=contact.phone_e164,
        email_hint=contact.email,
    )
    return IntakeResult(
        ticket=ticket,
        contact=contact,
        created=False,
        citizen_match=resolution.match,
        possible_matches=matches,
        acknowledgement=ack,
    )


def _create(
    session: Session,
    actor: StaffUser,
    now: datetime,
    valid: ValidIntake,
    resolution: CitizenResolution,
) -> IntakeResult:
    route = route_for(valid.ticket_type)
    deadlines = deadlines_for(get_calendar(session), valid.ticket_type, valid.received_at)
    citizen = resolution.citizen
    status = TicketStatus.RESOLVED if valid.resolved_at_first_contact else route.initial_status
    ticket = Ticket(
        kind=valid.kind,
        channel=valid.channel,
        status=status,
        language=valid.language or (citizen.preferred_language if citizen else Language.TR),
        citizen_id=citizen.id if citizen else None,
        ticket_type_id=valid.ticket_type.id,
        department_id=route.department_id,
        external_institution_id=route.external_institution_id,
        neighbourhood_id=valid.neighbourhood.id if valid.neighbourhood else None,
        household_id=citizen.household_id if citizen else None,
        address_text=valid.address_text,
        place_key=valid.place_key,
        latitude=valid.latitude,
        longitude=valid.longitude,
        description=valid.description,
        received_at=valid.received_at,
        received_by_id=actor.id,
        place_of_application=valid.place_of_application,
        due_at=deadlines.due_at,
        legal_due_at=deadlines.legal_due_at,
        escalation_level=0,
        resolution=valid.resolution if valid.resolved_at_first_contact else None,
        resolved_at=now if valid.resolved_at_first_contact else None,
        resolved_at_first_contact=valid.resolved_at_first_contact,
        updated_at=now,
    )
    # Looked up before the new row is added, so the query does not flush it on its own.
    other = find_same_place(session, ticket)
    ticket.id = allocate_ticket_id(session)  # type: ignore[assignment]
    session.add(ticket)
    if ticket.id is None:
        session.flush()
    ticket.reference_code = reference_code.encode(ticket.id)
    contact = _new_contact(session, actor, valid, resolution, ticket, flush=False)
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.OPENED,
        to_status=route.initial_status,
        channel=valid.channel.value,
        ticket_type=valid.ticket_type.code,
        citizen_match=resolution.match,
    )
    institution = (
        session.get(ExternalInstitution, route.external_institution_id)
        if route.external_institution_id
        else None
    )
    if institution is not None:
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.REFERRED,
            note=f"{institution.name_tr} sorumluluğunda; vatandaşa bildirildi.",
            external_institution=institution.code,
        )
    else:
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.ROUTED,
            department_id=route.department_id,
            due_at=deadlines.due_at.isoformat(),
        )
    if valid.resolved_at_first_contact:
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.RESOLVED,
            from_status=route.initial_status,
            to_status=TicketStatus.RESOLVED,
            note=valid.resolution,
            first_contact=True,
        )
    matches = _record_possible_matches(session, actor, now, valid, resolution, ticket)
    grouped_with = None
    if other is not None:
        group = group_with(session, now, ticket, other)
        grouped_with = other.id
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.GROUPED,
            note=f"Aynı yerde aynı sorun: {other.reference_code}",
            group_id=group.id,
            other_ticket=other.reference_code,
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
    ack = notify_citizen(
        session,
        ticket,
        actor,
        now,
        template=template,
        key=f"ack:ticket:{ticket.id}",
        key_is_new=True,
        phone_hint=contact.phone_e164,
        email_hint=contact.email,
        extra=extra,
    )
    session.flush()  # every row of the new ticket in one go; callers get a persistent ticket
    return IntakeResult(
        ticket=ticket,
        contact=contact,
        created=True,
        citizen_match=resolution.match,
        possible_matches=matches,
        grouped_with=grouped_with,
        acknowledgement=ack,
    )
