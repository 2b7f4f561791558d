"""The agent's side of a live call (R2.5, R4.3): which call an agent is on, and recording
what the caller asked for through the one intake path.

When a call is answered the AMI listener already opened an unclassified ticket (type
``genel``) for it through :func:`services.intake.open_ticket`, so that no answered call is
ever lost. :func:`record_call_ticket` is what the agent's ticket form submits: it opens the
real ticket through the same intake path (channel phone, or switchboard for calls that came
through the switchboard; the caller's number and citizen prefilled) and then folds that
placeholder into it, so the coordination desk never sees an empty duplicate and the call
stays linked to the ticket it produced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CallRecord, Channel, Role, StaffUser, Ticket, TicketContact, TicketStatus
from models import TicketType as TicketTypeModel
from services import outbox
from services.errors import NotPermitted, UnknownEntity
from services.intake import IntakeResult, open_ticket
from services.intake_request import DEFAULT_TICKET_TYPE, IntakeRequest
from services.ticket_workflow import merge_tickets

LIVE_WINDOW = timedelta(hours=12)  # an unfinished record older than this is not "live"
SEE_EVERY_CALL = frozenset({Role.UNIT_CHIEF, Role.SUPERVISOR})


def current_call(session: Session, agent: StaffUser, now: datetime) -> CallRecord | None:
    """The call ``agent`` answered most recently that has not ended (within
    :data:`LIVE_WINDOW`), or ``None``. Reads only."""
    return session.scalar(
        select(CallRecord)
        .where(
            CallRecord.agent_id == agent.id,
            CallRecord.answered_at.is_not(None),
            CallRecord.answered_at >= now - LIVE_WINDOW,
            CallRecord.ended_at.is_(None),
        )
        .order_by(CallRecord.answered_at.desc(), CallRecord.id.desc())
        .limit(1)
    )


def call_for(session: Session, actor: StaffUser, call_id: str) -> CallRecord:
    """Call ``call_id`` as seen by ``actor``: an agent sees the calls they answered, unit
    chiefs and supervisors every call. :class:`UnknownEntity` / :class:`NotPermitted`."""
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if record is None:
        raise UnknownEntity("Görüşme bulunamadı.", "No such call.", call_id=call_id)
    if record.agent_id != actor.id and actor.role not in SEE_EVERY_CALL:
        raise NotPermitted(
            "Bu görüşme size bağlanmadı.", "This call was not answered by you.", call_id=call_id
        )
    return record


@dataclass(frozen=True)
class CallTicket:
    """What :func:`record_call_ticket` did."""

    intake: IntakeResult
    absorbed: Ticket | None  # the call's placeholder ticket, now merged into ``ticket``

    @property
    def ticket(self) -> Ticket:
        return self.intake.ticket


def _placeholder(session: Session, record: CallRecord, keep: Ticket) -> Ticket | None:
    """The call's ticket if it is still the untouched placeholder opened at answer: type
    ``genel``, status new, and no contact other than this call's."""
    if record.ticket_id is None or record.ticket_id == keep.id:
        return None
    ticket = session.get(Ticket, record.ticket_id)
    if ticket is None or ticket.status is not TicketStatus.NEW:
        return None
    code = session.scalar(
        select(TicketTypeModel.code).where(TicketTypeModel.id == ticket.ticket_type_id)
    )
    if code != DEFAULT_TICKET_TYPE:
        return None
    others = session.scalar(
        select(func.count(TicketContact.id)).where(
            TicketContact.ticket_id == ticket.id,
            (TicketContact.external_ref.is_(None)) | (TicketContact.external_ref != record.call_id),
        )
    )
    return ticket if not others else None


def record_call_ticket(
    session: Session,
    actor: StaffUser,
    now: datetime,
    record: CallRecord,
    request: IntakeRequest,
) -> CallTicket:
    """Open the ticket the agent filled in for call ``record`` (or attach it to the open
    duplicate) through :func:`services.intake.open_ticket`, then merge the call's untouched
    placeholder ticket into it and link the call to it.

    Guarantees, within the caller's transaction: the channel is phone (switchboard for calls
    that came through the switchboard) whatever ``request`` says; the caller's number is
    used when the form left the phone empty; the request's ``external_ref`` (a per-form
    token) makes a repeated submission return the first result and change nothing; the
    placeholder is merged only while it is new, of type ``genel`` and has no other contact,
    so work someone already did on it is never folded away; the acknowledgement with the
    reference code is in the outbox (intake's guarantee) and the placeholder's own
    acknowledgement, held back since the answer, is withdrawn if it has not left yet — the
    caller gets one SMS with the code of the ticket the agent wrote.
    """
    if record.agent_id != actor.id and actor.role not in SEE_EVERY_CALL:
        raise NotPermitted(
            "Bu görüşme size bağlanmadı.",
            "This call was not answered by you.",
            call_id=record.call_id,
        )
    channel = Channel.SWITCHBOARD if record.via_switchboard else Channel.PHONE
    request = replace(
        request,
        channel=channel,
        phone=request.phone or record.caller_raw,
        language=request.language or record.language,
        place_of_application=request.place_of_application or record.queue,
    )
    result = open_ticket(session, actor, now, request)
    absorbed = None
    if not result.replayed:
        placeholder = _placeholder(session, record, result.ticket)
        if placeholder is not None:
            merge_tickets(session, actor, now, placeholder, result.ticket)
            # Its acknowledgement was held back (call_records.PLACEHOLDER_ACK_HOLD): the
            # caller is told the code of the ticket the agent wrote, not of the placeholder.
            outbox.withdraw(session, f"ack:ticket:{placeholder.id}")
            absorbed = placeholder
        record.ticket_id = result.ticket.id
        if result.ticket.citizen_id is not None:
            record.citizen_id = result.ticket.citizen_id
        session.flush()
    return CallTicket(result, absorbed)
