"""The supervisor's wallboard: the call centre now, per shift, and the tickets past SLA (R4.6).

Read-only queries with ``(session, now)``; nothing is written, nothing committed. Live queue
state (callers waiting, agents ready / paused / in a call) belongs to Asterisk: the console
reads it with ``QueueStatus`` and passes it in as :class:`LiveQueues`. Without it (PBX down
or not asked) the board falls back on the call records the AMI listener writes, and says so
(``Wallboard.live`` is false).

Definitions (docs/decisions/0020-wallboard.md):

- **Shifts** (:data:`SHIFTS`, Europe/Istanbul wall-clock): night 00–08, day 08–16, evening
  16–24 (R9.3: three shifts). A call belongs to the shift in which it joined a queue.
- **Offered**: the call joined a queue in the shift (``CallRecord.entered_at``); calls that
  never reached a queue (out of hours, IVR only) are not offered to agents.
- **Answered within the service level**: answered after at most
  :data:`SERVICE_LEVEL_SECONDS` (20 s, as ``servicelevel`` in asterisk-conf/queues.conf.in)
  in the queue. **Service level** = answered within 20 s ÷ offered calls that have left the
  queue (answered, abandoned, or gone to a callback / voicemail / overflow); callers still
  waiting are not counted yet.
- **Abandoned**: the caller hung up while queued (``CallOutcome.ABANDONED``).
  **Abandon rate** = abandoned ÷ offered calls that have left the queue.
- **Waiting** (records): joined a queue, not answered, not ended, no other outcome, for
  less than :data:`STALE_AFTER` (the queues hold a caller at most 6 minutes, so an older
  "waiting" record is a hang-up the listener never saw).
- **Past SLA**: an open ticket whose SLA clock runs (``CLOCK_RUNNING_STATUSES``) and whose
  ``due_at`` has passed; paused tickets (waiting on the citizen or an institution) are not
  late while paused. The count is exact up to :data:`PAST_SLA_CAP` and shown as "N+" above.

Cost, whatever the size of the tables: the call queries scan only the window's rows through
``ix_call_records_outcome (outcome, entered_at)`` (every outcome is named, so the index
applies); the SLA queries read at most :data:`PAST_SLA_CAP` index entries per running status
through ``ix_tickets_status_due`` plus :data:`PAST_SLA_LIST` rows.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from models import (
    CallOutcome,
    CallRecord,
    Department,
    Role,
    StaffUser,
    Ticket,
    TicketStatus,
    TicketType,
)
from models.ticket import CLOCK_RUNNING_STATUSES

__all__ = [
    "AGENT_STATES",
    "LOCAL_TZ",
    "PAST_SLA_CAP",
    "PAST_SLA_LIST",
    "SERVICE_LEVEL_SECONDS",
    "SHIFTS",
    "STALE_AFTER",
    "AgentLine",
    "LiveCaller",
    "LiveMember",
    "LiveQueues",
    "PastSla",
    "PastSlaLine",
    "Shift",
    "ShiftStats",
    "ShiftWindow",
    "Waiting",
    "Wallboard",
    "agent_lines",
    "past_sla",
    "recent_shifts",
    "shift_at",
    "shift_stats",
    "waiting",
    "wallboard",
]

LOCAL_TZ = ZoneInfo("Europe/Istanbul")
SERVICE_LEVEL_SECONDS = 20
STALE_AFTER = timedelta(hours=1)
IN_CALL_LOOKBACK = timedelta(hours=4)  # an answered call older than this is not "now"
PAST_SLA_CAP = 500
PAST_SLA_LIST = 20  # rows on the board: the most overdue (a wall screen shows no more)
# Agent states in display order (the agent screen's codes, agent_console.blueprints.agent).
AGENT_STATES = (
    "ready",
    "in_call",
    "wrap_up",
    "paused",
    "signed_out",
    "phone_offline",
    "no_queue",
    "unknown",
)
CALL_TAKING_ROLES = frozenset({Role.AGENT, Role.UNIT_CHIEF})
_ALL_OUTCOMES = tuple(CallOutcome)


# --- shifts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """One of the three daily shifts, in local hours ``[start_hour, end_hour)``."""

    code: str
    start_hour: int
    end_hour: int


SHIFTS: tuple[Shift, ...] = (
    Shift("night", 0, 8),
    Shift("day", 8, 16),
    Shift("evening", 16, 24),
)


@dataclass(frozen=True)
class ShiftWindow:
    """One shift on one day: ``[start, end)`` as aware datetimes (local time zone)."""

    shift: Shift
    day: datetime  # local midnight of the shift's day
    start: datetime
    end: datetime

    @property
    def code(self) -> str:
        return self.shift.code


def _window(shift: Shift, local_midnight: datetime) -> ShiftWindow:
    day = local_midnight.date()
    start = datetime.combine(day, time(shift.start_hour), LOCAL_TZ)
    end = (
        datetime.combine(day + timedelta(days=1), time(0), LOCAL_TZ)
        if shift.end_hour == 24
        else datetime.combine(day, time(shift.end_hour), LOCAL_TZ)
    )
    return ShiftWindow(shift, local_midnight, start, end)


def shift_at(moment: datetime) -> ShiftWindow:
    """The shift running at ``moment`` (aware)."""
    local = moment.astimezone(LOCAL_TZ)
    midnight = datetime.combine(local.date(), time(0), LOCAL_TZ)
    for shift in SHIFTS:
        if shift.start_hour <= local.hour < shift.end_hour:
            return _window(shift, midnight)
    raise AssertionError("SHIFTS cover the whole day")  # pragma: no cover


def recent_shifts(now: datetime, count: int = 3) -> list[ShiftWindow]:
    """The current shift and the ``count - 1`` before it, newest first."""
    windows = [shift_at(now)]
    while len(windows) < count:
        before = windows[-1].start - timedelta(seconds=1)
        windows.append(shift_at(before))
    return windows


# --- calls per shift -------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftStats:
    """Queue figures of the calls offered in one shift (see the module doc)."""

    window: ShiftWindow
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    unanswered_other: int = 0  # left the queue without an agent: callback, voicemail, overflow
    waiting: int = 0  # still in the queue (not decided yet)
    wait_seconds_total: int = 0  # of the answered calls
    longest_answer_wait: int | None = None
    talk_seconds_total: int = 0
    talked: int = 0  # answered calls with a known talk time

    @property
    def decided(self) -> int:
        """Offered calls that have left the queue (the denominator of both rates)."""
        return self.offered - self.waiting

    @property
    def service_level(self) -> float | None:
        """Answered within :data:`SERVICE_LEVEL_SECONDS` ÷ decided calls (0–1)."""
        return self.answered_in_sl / self.decided if self.decided else None

    @property
    def abandon_rate(self) -> float | None:
        """Abandoned ÷ decided calls (0–1)."""
        return self.abandoned / self.decided if self.decided else None

    @property
    def average_answer_wait(self) -> float | None:
        return self.wait_seconds_total / self.answered if self.answered else None

    @property
    def average_talk(self) -> float | None:
        return self.talk_seconds_total / self.talked if self.talked else None


def _in_window(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    # Every outcome named: the (outcome, entered_at) index serves the range.
    return [
        CallRecord.outcome.in_(_ALL_OUTCOMES),
        CallRecord.entered_at >= start,
        CallRecord.entered_at < end,
    ]


def _waiting_clause(now: datetime) -> list[ColumnElement[bool]]:
    return [
        CallRecord.outcome == CallOutcome.IN_PROGRESS,
        CallRecord.entered_at > now - STALE_AFTER,
        CallRecord.entered_at <= now,
        CallRecord.answered_at.is_(None),
        CallRecord.ended_at.is_(None),
    ]


def shift_stats(
    session: Session, windows: Sequence[ShiftWindow], now: datetime
) -> list[ShiftStats]:
    """Figures of each window in ``windows`` (same order), counting what happened until
    ``now``. One grouped query over the windows' calls."""
    if not windows:
        return []
    start = min(w.start for w in windows)
    end = max(w.end for w in windows)
    bucket = case(
        *[
            (and_(CallRecord.entered_at >= w.start, CallRecord.entered_at < w.end), i)
            for i, w in enumerate(windows)
        ],
        else_=-1,
    )
    answered = CallRecord.answered_at.is_not(None)
    waiting_now = and_(*_waiting_clause(now))

    def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, 1), else_=0))

    query = (
        select(
            bucket.label("bucket"),
            func.count(),
            flag(answered),
            flag(and_(answered, CallRecord.wait_seconds <= SERVICE_LEVEL_SECONDS)),
            flag(CallRecord.outcome == CallOutcome.ABANDONED),
            flag(waiting_now),
            func.sum(case((answered, func.coalesce(CallRecord.wait_seconds, 0)), else_=0)),
            func.max(case((answered, CallRecord.wait_seconds), else_=None)),
            func.sum(case((answered, func.coalesce(CallRecord.talk_seconds, 0)), else_=0)),
            flag(and_(answered, CallRecord.talk_seconds.is_not(None))),
        )
        .where(*_in_window(start, min(end, now + timedelta(microseconds=1))))
        .group_by(bucket)
    )
    found: dict[int, ShiftStats] = {}
    for row in session.execute(query):
        index = int(row[0])
        if index < 0:
            continue
        offered, n_answered, in_sl, abandoned, n_waiting = (int(v or 0) for v in row[1:6])
        found[index] = ShiftStats(
            window=windows[index],
            offered=offered,
            answered=n_answered,
            answered_in_sl=in_sl,
            abandoned=abandoned,
            unanswered_other=offered - n_answered - abandoned - n_waiting,
            waiting=n_waiting,
            wait_seconds_total=int(row[6] or 0),
            longest_answer_wait=int(row[7]) if row[7] is not None else None,
            talk_seconds_total=int(row[8] or 0),
            talked=int(row[9] or 0),
        )
    return [found.get(i, ShiftStats(window=w)) for i, w in enumerate(windows)]


# --- live queue state (from Asterisk, passed in by the console) -----------------------------


@dataclass(frozen=True)
class LiveCaller:
    """A caller waiting in a queue (``QueueEntry``): no caller ID on the wallboard."""

    queue: str
    position: int
    wait_seconds: int


@dataclass(frozen=True)
class LiveMember:
    """A queue member (one interface, all its queues) with the agent screen's state code."""

    interface: str
    name: str
    state: str
    reason: str = ""
    queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveQueues:
    """What ``QueueStatus`` said at :attr:`at`."""

    at: datetime
    callers: tuple[LiveCaller, ...] = ()
    members: tuple[LiveMember, ...] = ()


# --- waiting callers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    count: int
    longest: timedelta | None
    by_queue: tuple[tuple[str, int], ...]  # (queue, callers), queue name order
    source: str  # "pbx" | "records"


def waiting(session: Session, now: datetime, live: LiveQueues | None = None) -> Waiting:
    """Callers waiting now: Asterisk's ``QueueEntry`` list when ``live`` is given, else the
    call records that joined a queue and have no answer, end or other outcome yet."""
    if live is not None:
        per_queue = Counter(c.queue for c in live.callers)
        longest = max((c.wait_seconds for c in live.callers), default=None)
        return Waiting(
            count=len(live.callers),
            longest=timedelta(seconds=longest) if longest is not None else None,
            by_queue=tuple(sorted(per_queue.items())),
            source="pbx",
        )
    rows = session.execute(
        select(CallRecord.queue, func.count(), func.min(CallRecord.entered_at))
        .where(*_waiting_clause(now))
        .group_by(CallRecord.queue)
    ).all()
    count = sum(int(n) for _q, n, _first in rows)
    firsts = [first for _q, _n, first in rows if first is not None]
    return Waiting(
        count=count,
        longest=max(now - min(firsts), timedelta(0)) if firsts else None,
        by_queue=tuple(sorted((q or "—", int(n)) for q, n, _first in rows)),
        source="records",
    )


# --- agents ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentLine:
    """One agent on the board."""

    name: str
    extension: str | None
    staff_id: int | None
    state: str  # AGENT_STATES
    reason: str
    answered_this_shift: int
    in_call_since: datetime | None  # answer time of the agent's current call (records)
    queues: tuple[str, ...] = ()


def _extension(interface: str) -> str | None:
    if "/" not in interface:
        return None
    return interface.split("/", 1)[1].split("-", 1)[0].split("@", 1)[0] or None


def agent_lines(
    session: Session, now: datetime, shift: ShiftWindow, live: LiveQueues | None = None
) -> list[AgentLine]:
    """Every agent with a state: the queue members Asterisk reported (``live``), or, without
    it, every active call-taker with an extension — "in a call" when the call records say
    so, otherwise "unknown". Ordered by state (:data:`AGENT_STATES`), then name."""
    answered: dict[int, int] = {
        agent_id: int(n)
        for agent_id, n in session.execute(
            select(CallRecord.agent_id, func.count())
            .where(
                *_in_window(shift.start, shift.end),
                CallRecord.answered_at.is_not(None),
                CallRecord.agent_id.is_not(None),
            )
            .group_by(CallRecord.agent_id)
        )
        if agent_id is not None
    }
    in_call: dict[int, datetime] = {}
    for agent_id, since in session.execute(
        select(CallRecord.agent_id, CallRecord.answered_at).where(
            CallRecord.outcome == CallOutcome.ANSWERED,
            CallRecord.entered_at > now - IN_CALL_LOOKBACK,
            CallRecord.entered_at <= now,
            CallRecord.ended_at.is_(None),
            CallRecord.agent_id.is_not(None),
        )
    ):
        if agent_id is None or since is None:
            continue
        if agent_id not in in_call or since > in_call[agent_id]:
            in_call[agent_id] = since
    staff = list(
        session.scalars(
            select(StaffUser).where(StaffUser.is_active, StaffUser.sip_extension.is_not(None))
        )
    )
    by_extension = {u.sip_extension: u for u in staff}
    lines: list[AgentLine] = []
    if live is not None:
        for member in live.members:
            ext = _extension(member.interface)
            user = by_extension.get(ext) if ext else None
            lines.append(
                AgentLine(
                    name=user.full_name if user else member.name or member.interface,
                    extension=ext,
                    staff_id=user.id if user else None,
                    state=member.state if member.state in AGENT_STATES else "unknown",
                    reason=member.reason,
                    answered_this_shift=answered.get(user.id, 0) if user else 0,
                    in_call_since=in_call.get(user.id) if user else None,
                    queues=member.queues,
                )
            )
    else:
        for user in staff:
            if user.role not in CALL_TAKING_ROLES:
                continue
            since = in_call.get(user.id)
            lines.append(
                AgentLine(
                    name=user.full_name,
                    extension=user.sip_extension,
                    staff_id=user.id,
                    state="in_call" if since is not None else "unknown",
                    reason="",
                    answered_this_shift=answered.get(user.id, 0),
                    in_call_since=since,
                )
            )
    order = {state: i for i, state in enumerate(AGENT_STATES)}
    lines.sort(key=lambda line: (order[line.state], line.name))
    return lines


# --- tickets past SLA ------------------------------------------------------------------------


@dataclass(frozen=True)
class PastSlaLine:
    ticket_id: int
    reference_code: str | None
    type_tr: str
    type_en: str
    department_tr: str | None
    department_en: str | None
    status: TicketStatus
    due_at: datetime
    overdue: timedelta  # elapsed time since due_at (calendar time)
    escalation_level: int


@dataclass(frozen=True)
class PastSla:
    count: int  # exact when not capped
    capped: bool  # more than PAST_SLA_CAP: show "count+"
    tickets: tuple[PastSlaLine, ...]  # the most overdue first


def past_sla(session: Session, now: datetime, *, limit: int = PAST_SLA_LIST) -> PastSla:
    """Open tickets with a running SLA clock whose deadline has passed, most overdue first.

    Per running status, two bounded reads of ``ix_tickets_status_due``: the count of at most
    :data:`PAST_SLA_CAP` + 1 entries (counted in the database) and the ``limit`` most
    overdue; so the cost does not grow with the backlog, and above the cap the count is
    "at least :data:`PAST_SLA_CAP`" (``capped``)."""
    per_status: list[list[tuple[datetime, int]]] = []
    count = 0
    capped = False
    for status in sorted(CLOCK_RUNNING_STATUSES):
        late = (Ticket.status == status, Ticket.due_at <= now)
        bounded = select(Ticket.id).where(*late).order_by(Ticket.due_at).limit(PAST_SLA_CAP + 1)
        found = int(session.scalar(select(func.count()).select_from(bounded.subquery())) or 0)
        capped = capped or found > PAST_SLA_CAP
        count += min(found, PAST_SLA_CAP)
        if found and limit:
            per_status.append(
                [
                    (due, ticket_id)
                    for ticket_id, due in session.execute(
                        select(Ticket.id, Ticket.due_at)
                        .where(*late)
                        .order_by(Ticket.due_at, Ticket.id)
                        .limit(limit)
                    )
                ]
            )
    top = [ticket_id for _due, ticket_id in heapq.merge(*per_status)][:limit]
    return PastSla(count=count, capped=capped, tickets=tuple(_sla_lines(session, now, top)))


def _sla_lines(session: Session, now: datetime, ids: Iterable[int]) -> list[PastSlaLine]:
    wanted = list(ids)
    if not wanted:
        return []
    rows = session.execute(
        select(
            Ticket.id,
            Ticket.reference_code,
            TicketType.name_tr,
            TicketType.name_en,
            Department.name_tr,
            Department.name_en,
            Ticket.status,
            Ticket.due_at,
            Ticket.escalation_level,
        )
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .outerjoin(Department, Department.id == Ticket.department_id)
        .where(Ticket.id.in_(wanted))
    ).all()
    by_id = {
        int(r[0]): PastSlaLine(
            ticket_id=int(r[0]),
            reference_code=r[1],
            type_tr=r[2],
            type_en=r[3],
            department_tr=r[4],
            department_en=r[5],
            status=TicketStatus(r[6]),
            due_at=r[7],
            overdue=max(now - r[7], timedelta(0)),
            escalation_level=int(r[8] or 0),
        )
        for r in rows
    }
    return [by_id[i] for i in wanted if i in by_id]


# --- the board -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wallboard:
    """Everything the wallboard shows at :attr:`at`."""

    at: datetime
    live: bool  # queue state from Asterisk (else from the call records)
    waiting: Waiting
    agents: tuple[AgentLine, ...]
    shifts: tuple[ShiftStats, ...]  # the current shift first, then the two before it
    past_sla: PastSla
    agents_by_state: tuple[tuple[str, int], ...] = field(default=())

    @property
    def current(self) -> ShiftStats:
        return self.shifts[0]


def wallboard(session: Session, now: datetime, live: LiveQueues | None = None) -> Wallboard:
    """The whole board at ``now``: waiting callers and longest wait, agents by state, the
    current and two previous shifts (offered, answered, service level, abandon rate), and the
    tickets past SLA. Pure reads; ``live`` is Asterisk's queue state when the console has it.
    """
    windows = recent_shifts(now, 3)
    agents = agent_lines(session, now, windows[0], live)
    counts = Counter(a.state for a in agents)
    return Wallboard(
        at=now,
        live=live is not None,
        waiting=waiting(session, now, live),
        agents=tuple(agents),
        shifts=tuple(shift_stats(session, windows, now)),
        past_sla=past_sla(session, now),
        agents_by_state=tuple((s, counts[s]) for s in AGENT_STATES if counts[s]),
    )
