"""The wallboard's figures (services.wallboard) on SQLite and PostgreSQL: shifts, service
level and abandon rate from call records written through services.call_records, waiting
callers and agents (records or Asterisk's live state), and the tickets past SLA."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CallOutcome, CallRecord, Channel, Role, StaffUser, Ticket, TicketStatus
from services import wallboard as wb
from services.actors import system_actor
from services.call_records import (
    Abandoned,
    AgentAnswered,
    AgentCompleted,
    CallDetails,
    CallEnded,
    CallFact,
    CallStarted,
    QueueJoined,
    apply_fact,
)
from services.intake import open_ticket
from services.ticket_workflow import change_status, resolve_ticket
from tests.conftest import ISTANBUL
from tests.factories import mobile, request

_ids = itertools.count(1)


def _local(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ISTANBUL).astimezone(UTC)


def _apply(session: Session, now: datetime, facts: list[CallFact]) -> str:
    for fact in facts:
        apply_fact(session, now, fact)
    session.flush()
    return facts[0].call_id


def _call(
    session: Session,
    now: datetime,
    joined: datetime,
    *,
    answered_after: int | None = None,
    agent: StaffUser | None = None,
    abandoned_after: int | None = None,
    callback_after: int | None = None,
    ended_after: int | None = None,
    queue: str = "cagri-merkezi",
) -> str:
    """One inbound call as the listener records it, from the facts it would apply."""
    call_id = f"1796000000.{next(_ids)}"
    facts: list[CallFact] = [
        CallStarted(call_id, joined - timedelta(seconds=8), mobile(next(_ids))),
        QueueJoined(call_id, joined, queue),
    ]
    if answered_after is not None:
        assert agent is not None and agent.sip_extension
        answered = joined + timedelta(seconds=answered_after)
        facts.append(
            AgentAnswered(call_id, answered, f"PJSIP/{agent.sip_extension}", answered_after, queue)
        )
        if ended_after is not None:
            facts.append(AgentCompleted(call_id, joined + timedelta(seconds=ended_after), 60))
    if abandoned_after is not None:
        facts.append(
            Abandoned(call_id, joined + timedelta(seconds=abandoned_after), abandoned_after)
        )
    if callback_after is not None:
        facts.append(
            CallDetails(call_id, joined + timedelta(seconds=callback_after), callback_id="77")
        )
    if ended_after is not None:
        facts.append(CallEnded(call_id, joined + timedelta(seconds=ended_after)))
    return _apply(session, now, facts)


def _agents(session: Session) -> list[StaffUser]:
    found = list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.role == Role.AGENT, StaffUser.sip_extension.is_not(None))
            .order_by(StaffUser.id)
        )
    )
    assert len(found) >= 2, "demo data has two agents with extensions"
    return found


# --- shifts ----------------------------------------------------------------------------------


def test_three_shifts_cover_the_day_in_istanbul_time() -> None:
    assert wb.shift_at(_local(7, 59)).code == "night"
    assert wb.shift_at(_local(8, 0)).code == "day"
    assert wb.shift_at(_local(15, 59)).code == "day"
    assert wb.shift_at(_local(16, 0)).code == "evening"
    assert wb.shift_at(_local(23, 59)).code == "evening"
    assert wb.shift_at(_local(0, 0)).code == "night"
    evening = wb.shift_at(_local(20, 0))
    assert evening.start == _local(16) and evening.end == _local(0, 0, day=25)
    # 03:00 on the 25th: tonight's night shift, then yesterday's evening and day shifts.
    windows = wb.recent_shifts(_local(3, 0, day=25))
    assert [w.code for w in windows] == ["night", "evening", "day"]
    assert [w.start for w in windows] == [_local(0, 0, day=25), _local(16), _local(8)]
    assert all(a.end == b.start for a, b in itertools.pairwise(windows[::-1]))  # contiguous


# --- calls per shift -------------------------------------------------------------------------


def test_service_level_and_abandon_rate_per_shift(session: Session, now: datetime) -> None:
    assert wb.shift_at(now).code == "day"  # FIXED_NOW: Tuesday 10:00 in Istanbul
    first, second = _agents(session)[:2]
    # Day shift (08-16): seven calls offered to the queue.
    _call(
        session, now, now - timedelta(minutes=50), answered_after=10, agent=first, ended_after=200
    )
    _call(
        session, now, now - timedelta(minutes=40), answered_after=20, agent=second, ended_after=90
    )
    _call(
        session, now, now - timedelta(minutes=30), answered_after=45, agent=first, ended_after=300
    )
    _call(session, now, now - timedelta(minutes=20), abandoned_after=30)
    _call(session, now, now - timedelta(minutes=15), callback_after=40, ended_after=70)
    waiting = _call(session, now, now - timedelta(seconds=90))
    stale = _call(session, now, now - timedelta(minutes=90))  # its hang-up was never seen
    # Night shift: one call answered within 5 s; and one call that never reached a queue.
    _call(session, now, _local(7, 10), answered_after=5, agent=second, ended_after=100)
    _apply(session, now, [CallStarted("1796000000.ooh", now - timedelta(minutes=5), mobile(9))])

    day, night, evening = wb.shift_stats(session, wb.recent_shifts(now), now)
    assert (day.window.code, night.window.code, evening.window.code) == ("day", "night", "evening")
    assert day.offered == 7
    assert day.answered == 3
    assert day.answered_in_sl == 2  # 10 s and exactly 20 s; 45 s is late
    assert day.abandoned == 1
    assert day.waiting == 1  # the 90 s caller; the stale record is not "waiting"
    assert day.unanswered_other == 2  # the callback request and the stale record
    assert day.decided == 6
    assert day.service_level == pytest.approx(2 / 6)
    assert day.abandon_rate == pytest.approx(1 / 6)
    assert day.average_answer_wait == pytest.approx((10 + 20 + 45) / 3)
    assert day.longest_answer_wait == 45
    assert (night.offered, night.answered, night.answered_in_sl) == (1, 1, 1)
    assert night.service_level == 1.0 and night.abandon_rate == 0.0
    assert evening.offered == 0 and evening.service_level is None  # yesterday evening: nothing
    # Waiting now, from the records: the 90 s caller only.
    board_wait = wb.waiting(session, now)
    assert (board_wait.count, board_wait.source) == (1, "records")
    assert board_wait.longest == timedelta(seconds=90)
    assert board_wait.by_queue == (("cagri-merkezi", 1),)
    # A minute later the caller is answered: nobody waits, the service level counts it as late.
    later = now + timedelta(minutes=1)
    agent = first
    apply_fact(session, later, AgentAnswered(waiting, later, f"PJSIP/{agent.sip_extension}", 150))
    session.flush()
    assert wb.waiting(session, later).count == 0
    day_later = wb.shift_stats(session, [wb.shift_at(later)], later)[0]
    assert (day_later.answered, day_later.waiting, day_later.decided) == (4, 0, 7)
    assert day_later.service_level == pytest.approx(2 / 7)
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == stale))
    assert record is not None and record.outcome is CallOutcome.IN_PROGRESS


def test_live_queue_state_wins_over_the_records(session: Session, now: datetime) -> None:
    first, second = _agents(session)[:2]
    _call(session, now, now - timedelta(seconds=30))  # the records think one caller waits
    _call(session, now, now - timedelta(minutes=3), answered_after=12, agent=first)  # in a call
    live = wb.LiveQueues(
        at=now,
        callers=(
            wb.LiveCaller("cagri-merkezi", 1, 75),
            wb.LiveCaller("cagri-merkezi-en", 1, 30),
        ),
        members=(
            wb.LiveMember(f"PJSIP/{first.sip_extension}", "x", "in_call", "", ("cagri-merkezi",)),
            wb.LiveMember(f"PJSIP/{second.sip_extension}", "y", "paused", "yemek"),
            wb.LiveMember("PJSIP/9999", "Misafir Temsilci", "ready"),
        ),
    )
    board = wb.wallboard(session, now, live)
    assert board.live is True
    assert (board.waiting.count, board.waiting.source) == (2, "pbx")
    assert board.waiting.longest == timedelta(seconds=75)
    assert board.waiting.by_queue == (("cagri-merkezi", 1), ("cagri-merkezi-en", 1))
    lines = {line.extension: line for line in board.agents}
    assert lines[first.sip_extension].name == first.full_name  # staff names, not member names
    assert lines[first.sip_extension].state == "in_call"
    assert lines[first.sip_extension].answered_this_shift == 1
    assert lines[first.sip_extension].in_call_since == now - timedelta(minutes=3, seconds=-12)
    assert (lines[second.sip_extension].state, lines[second.sip_extension].reason) == (
        "paused",
        "yemek",
    )
    assert lines["9999"].name == "Misafir Temsilci" and lines["9999"].staff_id is None
    assert [line.state for line in board.agents] == ["ready", "in_call", "paused"]
    assert board.agents_by_state == (("ready", 1), ("in_call", 1), ("paused", 1))


def test_without_the_pbx_agents_come_from_the_records(session: Session, now: datetime) -> None:
    first, second = _agents(session)[:2]
    _call(session, now, now - timedelta(minutes=2), answered_after=8, agent=second)
    board = wb.wallboard(session, now)
    assert board.live is False and board.waiting.source == "records"
    lines = {line.staff_id: line for line in board.agents}
    assert lines[second.id].state == "in_call" and lines[second.id].answered_this_shift == 1
    assert lines[first.id].state == "unknown"
    assert all(line.extension for line in board.agents)
    roles = {
        u.role for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(lines.keys())))
    }
    assert roles <= {Role.AGENT, Role.UNIT_CHIEF}
    # The call ends: the agent is no longer in a call.
    call = session.scalars(
        select(CallRecord).where(CallRecord.agent_id == second.id).order_by(CallRecord.id.desc())
    ).first()
    assert call is not None
    apply_fact(session, now, CallEnded(call.call_id, now))
    session.flush()
    again = {line.staff_id: line for line in wb.wallboard(session, now).agents}
    assert again[second.id].state == "unknown" and again[second.id].in_call_since is None


# --- tickets past SLA ------------------------------------------------------------------------


def _ticket(session: Session, now: datetime, seed: int, type_code: str = "gurultu") -> Ticket:
    result = open_ticket(
        session,
        system_actor(session, "tests", now),
        now,
        request(Channel.PHONE, phone=mobile(500 + seed), ticket_type_code=type_code),
    )
    session.flush()
    return result.ticket


def _past_sla_ids(session: Session, moment: datetime) -> list[int]:
    return [line.ticket_id for line in wb.past_sla(session, moment, limit=500).tickets]


def test_tickets_past_sla_are_the_running_clocks_past_their_deadline(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    before = set(_past_sla_ids(session, now + timedelta(days=120)))
    early = _ticket(session, now - timedelta(days=3), 1)
    late = _ticket(session, now, 2)
    paused = _ticket(session, now - timedelta(days=3), 3)
    change_status(
        session, supervisor, now - timedelta(days=2), paused, TicketStatus.WAITING_ON_CITIZEN
    )
    done = _ticket(session, now - timedelta(days=3), 4)
    resolve_ticket(session, supervisor, now - timedelta(days=2), done, "Giderildi.")
    session.flush()
    assert late.due_at > now  # not late yet
    moment = late.due_at + timedelta(hours=1)
    found = [i for i in _past_sla_ids(session, moment) if i not in before]
    assert found == [early.id, late.id]  # the most overdue first; paused and resolved absent
    sla = wb.past_sla(session, moment)
    line = next(t for t in sla.tickets if t.ticket_id == late.id)
    assert line.reference_code == late.reference_code
    assert line.overdue == timedelta(hours=1)
    assert line.type_tr and line.department_tr  # gürültü: Zabıta
    assert line.status is TicketStatus.NEW
    assert not sla.capped and sla.count >= 2
    # Before the late ticket's deadline it is not on the list.
    assert late.id not in _past_sla_ids(session, late.due_at - timedelta(seconds=1))


def test_the_past_sla_count_is_capped(
    session: Session, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed in range(3):
        _ticket(session, now - timedelta(days=3), 10 + seed)
    monkeypatch.setattr(wb, "PAST_SLA_CAP", 2)
    sla = wb.past_sla(session, now + timedelta(days=120), limit=3)
    assert sla.capped is True
    # At most the cap per running status, and the list never longer than asked.
    assert 2 <= sla.count <= 2 * len(wb.CLOCK_RUNNING_STATUSES)
    assert len(sla.tickets) == 3  # the list is not cut by the cap
    dues = [t.due_at for t in sla.tickets]
    assert dues == sorted(dues)
