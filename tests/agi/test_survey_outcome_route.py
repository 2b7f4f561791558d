"""The FastAGI ``survey`` route acts on the answers once the survey is over (R5.2).

A real FastAGI server and a fake Asterisk (tests/agi/conftest.py) on the committed SQLite
database: "not solved" reopens and escalates the ticket, a low score opens a supervisor
follow-up — once, even when the same call is replayed — and the AGI dialogue is exactly
the one without outcomes (the outcome transaction sends no AGI command).
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Notification,
    SurveyFollowUp,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimelineAction,
)
from services.actors import system_actor
from services.intake import open_ticket
from services.ticket_workflow import resolve_ticket
from tests.agi.conftest import RunningServer, agi_call
from tests.conftest import FIXED_NOW
from tests.factories import request, valid_tc

PHONE = "+905320094011"


def _resolved_ticket(engine: Engine, seed: int) -> int:
    with Session(engine) as session:
        actor = system_actor(session, "test", FIXED_NOW)
        ticket = open_ticket(
            session,
            actor,
            FIXED_NOW,
            request(
                Channel.PHONE, phone=PHONE[:-2] + f"{seed % 100:02d}", tc_number=valid_tc(seed)
            ),
        ).ticket
        resolve_ticket(session, actor, FIXED_NOW, ticket, "Onarıldı.")
        session.commit()
        return ticket.id


def _state(engine: Engine, ticket_id: int) -> tuple[TicketStatus, int, int, int, int, int]:
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None

        def events(action: TimelineAction) -> int:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action)
                )
                or 0
            )

        follow_ups = (
            session.scalar(
                select(func.count())
                .select_from(SurveyFollowUp)
                .where(SurveyFollowUp.ticket_id == ticket_id, SurveyFollowUp.kind == "low_score")
            )
            or 0
        )
        notifications = (
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.ticket_id == ticket_id)
            )
            or 0
        )
        return (
            ticket.status,
            ticket.escalation_level,
            events(TimelineAction.REOPENED),
            events(TimelineAction.ESCALATED),
            follow_ups,
            notifications,
        )


def test_not_solved_and_a_low_score_act_once_per_call(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    ticket_id = _resolved_ticket(agi_engine, 94011)
    call = agi_call(
        agi_server.port,
        "survey",
        variables={"CALL_ID": "sv-out-1"},
        digits=["1", "2", "4"],
        agi_arg_1=str(ticket_id),
    )
    assert call.commands == [
        "GET VARIABLE CALL_ID",
        "GET DATA acikkapi/survey-satisfaction 5000 1",
        "GET DATA acikkapi/survey-solved 5000 1",
        "GET DATA acikkapi/survey-courtesy 5000 1",
        'SET VARIABLE AK_SURVEY_RESULT "complete"',
    ]
    status, level, reopened, escalated, follow_ups, notifications = _state(agi_engine, ticket_id)
    assert (status, level, reopened, escalated, follow_ups) == (
        TicketStatus.REOPENED,
        2,  # superior_unit: one step up from a ticket resolved in time
        1,
        1,
        1,
    )
    # The same call again (an AGI retry): answers and outcomes are already there.
    agi_call(
        agi_server.port,
        "survey",
        variables={"CALL_ID": "sv-out-1"},
        digits=["5", "1", "5"],
        agi_arg_1=str(ticket_id),
    )
    assert _state(agi_engine, ticket_id) == (status, level, 1, 1, 1, notifications)


def test_a_hangup_after_not_solved_still_reopens(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    ticket_id = _resolved_ticket(agi_engine, 94012)
    call = agi_call(
        agi_server.port,
        "survey",
        variables={"CALL_ID": "sv-out-2"},
        digits=["3", "2", "HANGUP"],
        agi_arg_1=str(ticket_id),
    )
    assert call.hung_up and "AK_SURVEY_RESULT" not in call.channel
    status, _level, reopened, escalated, follow_ups, _ = _state(agi_engine, ticket_id)
    assert (status, reopened, escalated, follow_ups) == (TicketStatus.REOPENED, 1, 1, 0)
