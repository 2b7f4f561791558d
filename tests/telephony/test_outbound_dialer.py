"""The outbound dialer against a real Asterisk and sipp (issue 6 items 2, 3, 6; R5.2, R5.6).

The call stack (conftest ``call_stack``) runs Asterisk with our configuration, the FastAGI
server (the survey) and the AMI listener (which records the outcomes) as subprocesses on a
seeded SQLite database. One sipp UAS on the trunk port plays the citizens: it answers and
presses RFC 2833 digits, reports busy (486) or never answers. The dial tick
(:func:`outbound.jobs.dial_once`) is called in-process with a ``now`` the test controls
(time travel for the calling window and the retry spacing); one test goes through a real
RQ worker (``acikkapi worker run --burst -q outbound``).

Nothing here asserts durations: waits are bounds on polling, and concurrency is checked
from the order of AMI events (never more than ``max_concurrent`` attempt channels alive).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    Channel,
    Role,
    StaffUser,
    SurveyAnswer,
)
from outbound.ami_client import DialerSession, originate
from outbound.dial import build_request
from outbound.jobs import dial_once, recover_once
from services import dialer
from services.campaign_targets import TargetRow, add_targets
from services.campaigns import CampaignSettings, create_campaign, start_campaign, stop_campaign
from services.intake import open_ticket
from services.surveys import ensure_default_questions
from tests.factories import mobile, mobile_e164, request, valid_tc
from tests.telephony import sipp_tools
from tests.telephony.ami_tools import Ami, first
from tests.telephony.conftest import TRUNK_PORT, CallStack

T = TypeVar("T")
ISTANBUL = ZoneInfo("Europe/Istanbul")
ALWAYS = {"window_days": "1234567", "window_start": dtime(0), "window_end": dtime(23, 59, 59)}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SCENARIOS = Path(__file__).resolve().parent / "sipp"
TRANSCRIPTS = Path(__file__).resolve().parents[1] / "ami_listener" / "transcripts" / "outbound"
_media = itertools.count(21000, 10)
_numbers = itertools.count(7_100_000)


# --- helpers --------------------------------------------------------------------------------


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 90) -> T:
    """Poll ``probe`` until it returns something truthy (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Uas:
    """One sipp UAS on the trunk port serving ``calls`` calls."""

    proc: subprocess.Popen[str]
    scenario: Path

    def invites(self) -> int:
        """Distinct calls (Call-IDs) whose INVITE sipp received, from its message trace."""
        ids: set[str] = set()
        for log in self.scenario.parent.glob(f"{self.scenario.stem}_*_messages.log"):
            text = log.read_text(errors="replace")
            for block in re.split(r"\n-{10,}", text):
                if re.search(r"message received \[\d+\] bytes :\s*\n+\s*INVITE ", block):
                    found = re.search(r"^\s*Call-ID:\s*(\S+)", block, re.M | re.I)
                    if found:
                        ids.add(found.group(1))
        return len(ids)

    def finish(self, timeout: float = 150) -> None:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            rc = -9
        out = self.proc.stdout.read() if self.proc.stdout else ""
        assert rc == 0, f"sipp UAS {self.scenario.name} ended with {rc}:\n{out[-3000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start_uas(
    workdir: Path,
    name: str,
    calls: int,
    *,
    steps: list[sipp_tools.Step] | None = None,
    ring_ms: int = 200,
    hang_up_after_ms: int | None = None,
    timeout_s: int = 150,
) -> Uas:
    """sipp as the trunk (port ``TRUNK_PORT``) for ``calls`` calls of scenario ``name``."""
    text = (SCENARIOS / f"{name}.xml").read_text(encoding="utf-8")
    if name == "outbound_answer_uas":
        if hang_up_after_ms is None:
            ending = (
                '  <recv request="BYE" timeout="120000"/>\n'
                "  <send>\n    <![CDATA[\n      SIP/2.0 200 OK\n      [last_Via:]\n"
                "      [last_From:]\n      [last_To:]\n      [last_Call-ID:]\n"
                "      [last_CSeq:]\n      Content-Length: 0\n\n    ]]>\n  </send>"
            )
        else:
            ending = (
                f'  <pause milliseconds="{hang_up_after_ms}"/>\n'
                '  <send retrans="500">\n    <![CDATA[\n'
                "      BYE [next_url] SIP/2.0\n"
                "      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
                "      From: [$local_to];tag=[pid]SIPpTag31[call_number]\n"
                "      To: [$remote_from]\n      [last_Call-ID:]\n      CSeq: 2 BYE\n"
                "      Max-Forwards: 70\n"
                "      Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n"
                "      Content-Length: 0\n\n    ]]>\n  </send>\n"
                '  <recv response="200" timeout="5000"/>'
            )
        text = string.Template(text).substitute(
            ring_ms=str(ring_ms),
            steps=sipp_tools._dtmf_steps(steps or [], workdir),
            ending=ending,
        )
    scenario = workdir / f"{name}-{time.monotonic_ns()}.xml"
    scenario.write_text(text, encoding="utf-8")
    cmd = [
        "sipp",
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(TRUNK_PORT),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(next(_media)),
        "-m",
        str(calls),
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-trace_msg",
        "-trace_err",
        "-nostdin",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    time.sleep(0.5)  # bind the port before the first INVITE
    return Uas(proc, scenario)


@contextmanager
def uas(workdir: Path, name: str, calls: int, **kwargs: object) -> Iterator[Uas]:
    server = start_uas(workdir, name, calls, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def ami_events(stack: CallStack, name: str) -> Iterator[Ami]:
    """The raw AMI stream as the listener sees it while the block runs, kept as ``name``
    in the sipp work folder (and, with ``ACIKKAPI_RECORD_TRANSCRIPTS=1``, as a recorded
    transcript for tests/ami_listener/test_outbound_events.py)."""
    ami = stack.pbx.ami("listener")
    try:
        yield ami
    finally:
        data = ami.transcript()
        ami.close()
        (stack.pbx.workdir / name).write_bytes(data)
        if os.environ.get("ACIKKAPI_RECORD_TRANSCRIPTS") == "1":
            (TRANSCRIPTS / name).write_bytes(trimmed(data, attempts=6))


def trimmed(data: bytes, attempts: int) -> bytes:
    """The banner and login reply, then only the frames that mention one of the first
    ``attempts`` attempt ids (``VarSet`` and RTCP left out): a recording small enough to
    keep in the repository, every frame verbatim."""
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    frames = data.decode("utf-8").split("\r\n\r\n")
    keep, seen = [frames[0]], []
    for frame in frames[1:]:
        ids = set(uuid.findall(frame))
        seen += sorted(ids - set(seen))
        if ids & set(seen[:attempts]) and "Event: VarSet" not in frame:
            keep.append(frame)
    return ("\r\n\r\n".join(keep) + "\r\n\r\n").encode("utf-8")


def max_simultaneous(ami: Ami) -> int:
    """Most attempt channels (Uniqueid = a UUID) alive at once, from the order of events."""
    alive: set[str] = set()
    most = 0
    for event in list(ami.events):
        uid = first(event, "Uniqueid")
        if not UUID_RE.match(uid):
            continue
        if first(event, "Event") == "Newchannel":
            alive.add(uid)
            most = max(most, len(alive))
        elif first(event, "Event") == "Hangup":
            alive.discard(uid)
    return most


def sessions(stack: CallStack) -> sessionmaker[Session]:
    return sessionmaker(stack.engine, expire_on_commit=False)


def connect(stack: CallStack) -> Callable[[], DialerSession]:
    pbx = stack.pbx
    secret = pbx.secrets.ami_password("dialer")
    return lambda: DialerSession(pbx.settings.ami_host, pbx.settings.ami_port, "dialer", secret)


def new_campaign(
    stack: CallStack, kind: CampaignKind, rows: list[TargetRow], **settings: object
) -> int:
    now = datetime.now(UTC)
    values: dict[str, object] = {**ALWAYS, "skip_holidays": False, **settings}
    with stack.session() as session:
        campaign = create_campaign(
            session,
            actor=None,
            now=now,
            settings=CampaignSettings(name=f"test {kind} {time.time_ns()}", kind=kind, **values),  # type: ignore[arg-type]
            target_source=CampaignTargetSource.CSV,
            target_criteria={"test": "outbound dialer"},
        )
        imported = add_targets(session, now=now, campaign_id=campaign.id, rows=rows)
        assert imported.added == len(rows), imported
        start_campaign(session, actor=None, now=now, campaign_id=campaign.id)
        session.commit()
        return campaign.id


def fresh_phone() -> str:
    return mobile_e164(next(_numbers))


def targets(stack: CallStack, campaign_id: int) -> list[CampaignTarget]:
    with stack.session() as session:
        return list(
            session.scalars(
                select(CampaignTarget)
                .where(CampaignTarget.campaign_id == campaign_id)
                .order_by(CampaignTarget.id)
            )
        )


def attempts(stack: CallStack, campaign_id: int) -> list[CallAttempt]:
    with stack.session() as session:
        return list(
            session.scalars(
                select(CallAttempt)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(CallAttempt.target_id, CallAttempt.number)
            )
        )


def campaign_status(stack: CallStack, campaign_id: int) -> CampaignStatus:
    with stack.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status


def none_in_flight(stack: CallStack, campaign_id: int) -> bool:
    return all(
        a.status not in (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)
        for a in attempts(stack, campaign_id)
    )


def stop(stack: CallStack, campaign_id: int) -> None:
    with stack.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is not None and campaign.status in (
            CampaignStatus.RUNNING,
            CampaignStatus.PAUSED,
        ):
            stop_campaign(session, actor=None, now=datetime.now(UTC), campaign_id=campaign_id)
            session.commit()


def survey_first_digit_ms(stack: CallStack) -> int:
    """When to press the first key: the survey route may play an intro before question 1."""
    route = (Path(__file__).resolve().parents[2] / "agi" / "routes" / "survey.py").read_text()
    intro = stack.pbx.prompt_ms("tr", "survey-intro") if "survey-intro" in route else 0
    return intro + 1500


# --- (a) a survey campaign of 20 citizens -------------------------------------------------------


def test_a_survey_campaign_of_20_answered_by_keypad(call_stack: CallStack) -> None:
    """R5.2/R5.6: 20 citizens answer and press 4, 1, 5 (RFC 2833); every answer is stored per
    ticket with its attempt, every target DONE, the campaign FINISHED, and never more than
    ``max_concurrent`` attempt channels were alive at once (AMI event order)."""
    stack = call_stack
    now = datetime.now(UTC)
    with stack.session() as session:
        ensure_default_questions(session)
        agent = session.scalars(select(StaffUser).where(StaffUser.role == Role.AGENT)).first()
        assert agent is not None
        rows = []
        base = random.randrange(100_000, 9_000_000)
        for i in range(20):
            seed = base + i
            ticket = open_ticket(
                session,
                agent,
                now,
                request(Channel.DESK, tc_number=valid_tc(seed), phone=mobile(seed)),
            ).ticket
            rows.append(
                TargetRow(phone=mobile(seed), citizen_id=ticket.citizen_id, ticket_id=ticket.id)
            )
        session.commit()
    campaign_id = new_campaign(
        stack, CampaignKind.SURVEY, rows, max_concurrent=5, calls_per_second=5.0
    )
    d1 = survey_first_digit_ms(stack)
    steps: list[sipp_tools.Step] = [(d1, "4"), (2500, "1"), (2500, "5")]
    try:
        with (
            ami_events(stack, "survey.txt") as ami,
            uas(stack.pbx.workdir, "outbound_answer_uas", 20, steps=steps) as citizens,
        ):
            factory = sessions(stack)
            deadline = time.monotonic() + 110
            while campaign_status(stack, campaign_id) != CampaignStatus.FINISHED:
                assert time.monotonic() < deadline, [t.status for t in targets(stack, campaign_id)]
                dial_once(factory, connect(stack))
                time.sleep(0.3)
            citizens.finish()
            assert citizens.invites() == 20
            assert 1 <= max_simultaneous(ami) <= 5
    finally:
        stop(stack, campaign_id)

    done = targets(stack, campaign_id)
    assert [t.status for t in done] == [CampaignTargetStatus.DONE] * 20
    assert all(t.last_outcome == AttemptStatus.ANSWERED for t in done)
    assert all(t.result == "complete" for t in done), [t.result for t in done]
    tries = attempts(stack, campaign_id)
    assert len(tries) == 20 and all(a.number == 1 for a in tries)
    assert all(a.answered_at is not None and a.ended_at is not None for a in tries)
    with stack.session() as session:
        for target, attempt in zip(done, tries, strict=True):
            answers = session.scalars(
                select(SurveyAnswer)
                .where(SurveyAnswer.call_id == attempt.id)
                .order_by(SurveyAnswer.question_id)
            ).all()
            assert [a.answer for a in answers] == [4, 1, 5]
            assert {a.ticket_id for a in answers} == {target.ticket_id}
            assert {a.citizen_id for a in answers} == {target.citizen_id}
            assert {a.channel for a in answers} == {"ivr"}
            assert {a.attempt_id for a in answers} == {attempt.id}


# --- (b) busy and unanswered targets are retried, then exhausted --------------------------------


class VirtualClock:
    """Real time plus an offset that only grows: the retry spacing passes at once."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def skip(self, delta: timedelta) -> None:
        self.offset += delta


def run_rounds(
    stack: CallStack, campaign_id: int, clock: VirtualClock, rounds: int, **dial: object
) -> None:
    """Dial what is due, wait for every outcome, jump past the retry spacing; ``rounds``
    times."""
    factory = sessions(stack)
    for _ in range(rounds):
        report = dial_once(factory, connect(stack), now=clock.now(), **dial)  # type: ignore[arg-type]
        assert report.originated >= 1, report
        wait_for(lambda: none_in_flight(stack, campaign_id), "the outcomes of the round")
        clock.skip(timedelta(minutes=1, seconds=5))


def test_b_busy_and_unanswered_are_retried_then_exhausted(call_stack: CallStack) -> None:
    """R5.6: a busy (486) and an unanswered (ringing until the Originate gives up) target are
    each dialled ``max_attempts`` times, spaced by the policy, and end EXHAUSTED with the right
    last outcome; no attempt is dialled twice."""
    stack = call_stack
    clock = VirtualClock()
    busy_rows = [TargetRow(phone=fresh_phone()) for _ in range(2)]
    busy = new_campaign(
        stack,
        CampaignKind.RESOLUTION_INFO,
        busy_rows,
        max_attempts=3,
        retry_spacing_minutes=1,
        max_concurrent=2,
        calls_per_second=5.0,
    )
    try:
        with (
            ami_events(stack, "busy.txt"),
            uas(stack.pbx.workdir, "outbound_busy_uas", 6) as trunk,
        ):
            run_rounds(stack, busy, clock, 3)
            # one more tick at a later time: nothing left to dial
            assert dial_once(sessions(stack), connect(stack), now=clock.now()).claimed == 0
            trunk.finish()
            assert trunk.invites() == 6
    finally:
        stop(stack, busy)
    for target in targets(stack, busy):
        assert target.status == CampaignTargetStatus.EXHAUSTED
        assert target.last_outcome == AttemptStatus.BUSY
        assert target.attempts == 3
    tries = attempts(stack, busy)
    assert [a.number for a in tries] == [1, 2, 3, 1, 2, 3]
    assert {a.status for a in tries} == {AttemptStatus.BUSY}, [(a.status, a.reason) for a in tries]
    for earlier, later in itertools.pairwise(tries):
        if earlier.target_id == later.target_id:
            assert earlier.ended_at is not None
            assert later.created_at >= earlier.ended_at + timedelta(minutes=1)
    assert campaign_status(stack, busy) == CampaignStatus.FINISHED

    silent = new_campaign(
        stack,
        CampaignKind.DELAY_NOTICE,
        [TargetRow(phone=fresh_phone())],
        max_attempts=2,
        retry_spacing_minutes=1,
        calls_per_second=5.0,
    )
    try:
        with (
            ami_events(stack, "no_answer.txt"),
            uas(stack.pbx.workdir, "outbound_noanswer_uas", 2) as trunk,
        ):
            run_rounds(stack, silent, clock, 2, ring_timeout_ms=3000)
            trunk.finish()
            assert trunk.invites() == 2
    finally:
        stop(stack, silent)
    (target,) = targets(stack, silent)
    assert target.status == CampaignTargetStatus.EXHAUSTED
    assert target.last_outcome == AttemptStatus.NO_ANSWER
    assert [a.status for a in attempts(stack, silent)] == [AttemptStatus.NO_ANSWER] * 2

    # 480 Temporarily Unavailable (phone off, out of coverage): not reached, i.e. no answer
    unreachable = new_campaign(
        stack, CampaignKind.DELAY_NOTICE, [TargetRow(phone=fresh_phone())], max_attempts=1
    )
    try:
        with uas(stack.pbx.workdir, "outbound_unavailable_uas", 1) as trunk:
            run_rounds(stack, unreachable, clock, 1)
            trunk.finish()
            assert trunk.invites() == 1
    finally:
        stop(stack, unreachable)
    (target,) = targets(stack, unreachable)
    (attempt,) = attempts(stack, unreachable)
    assert target.status == CampaignTargetStatus.EXHAUSTED
    assert (attempt.status, target.result) == (AttemptStatus.NO_ANSWER, None), attempt.reason


# --- (c) the calling window ---------------------------------------------------------------------


def test_c_calling_window_is_respected(call_stack: CallStack) -> None:
    """R5.6: a tick at 08:00 (window 10:00–11:00, Istanbul) originates nothing and sipp sees
    no INVITE; a tick at 10:30 the same day originates, and the message call is answered."""
    stack = call_stack
    campaign_id = new_campaign(
        stack,
        CampaignKind.EVENT_INVITATION,
        [TargetRow(phone=fresh_phone())],
        window_days="1234567",
        window_start=dtime(10),
        window_end=dtime(11),
        skip_holidays=False,
    )
    day = (datetime.now(ISTANBUL) + timedelta(days=30)).date()
    before = datetime.combine(day, dtime(8), ISTANBUL)
    during = datetime.combine(day, dtime(10, 30), ISTANBUL)
    after = datetime.combine(day, dtime(11, 0, 1), ISTANBUL)
    factory = sessions(stack)
    try:
        with (
            ami_events(stack, "message.txt"),
            uas(stack.pbx.workdir, "outbound_answer_uas", 1) as trunk,
        ):
            assert dial_once(factory, connect(stack), now=before).claimed == 0
            assert dial_once(factory, connect(stack), now=after).claimed == 0
            assert attempts(stack, campaign_id) == []
            assert trunk.invites() == 0
            report = dial_once(factory, connect(stack), now=during)
            assert (report.claimed, report.originated) == (1, 1)
            wait_for(lambda: none_in_flight(stack, campaign_id), "the call's outcome")
            trunk.finish()
            assert trunk.invites() == 1
    finally:
        stop(stack, campaign_id)
    (target,) = targets(stack, campaign_id)
    assert target.status == CampaignTargetStatus.DONE
    assert target.last_outcome == AttemptStatus.ANSWERED
    assert target.result == "heard", attempts(stack, campaign_id)[0].reason


# --- (d) a killed worker neither loses nor double-dials -----------------------------------------


def test_d_worker_lost_before_originate_is_retried_once(call_stack: CallStack) -> None:
    """Decision 0021 step 5: a claim committed by a worker that died before sending the
    Originate is failed by recovery after its lease and retried as attempt 2; the citizen's
    phone rings exactly once."""
    stack = call_stack
    clock = VirtualClock()
    campaign_id = new_campaign(
        stack,
        CampaignKind.SPECIAL_GROUP,
        [TargetRow(phone=fresh_phone())],
        retry_spacing_minutes=1,
    )
    try:
        with uas(stack.pbx.workdir, "outbound_answer_uas", 1, hang_up_after_ms=3000) as trunk:
            with stack.session() as session:  # the first half of a tick, then the worker dies
                (lost,) = dialer.claim_due_attempts(session, now=clock.now(), worker="doomed")
                session.commit()
            assert recover_once(sessions(stack), now=clock.now()) == 0  # lease still running
            clock.skip(timedelta(seconds=31))
            assert recover_once(sessions(stack), now=clock.now()) == 1
            clock.skip(timedelta(minutes=1))
            report = dial_once(sessions(stack), connect(stack), now=clock.now())
            assert report.originated == 1
            wait_for(lambda: none_in_flight(stack, campaign_id), "the retry's outcome")
            trunk.finish()
            assert trunk.invites() == 1
    finally:
        stop(stack, campaign_id)
    first_try, second_try = attempts(stack, campaign_id)
    assert first_try.id == lost.attempt_id
    assert (first_try.number, first_try.status) == (1, AttemptStatus.FAILED)
    assert first_try.reason == dialer.LOST_BEFORE_ORIGINATE
    assert first_try.originated_at is None
    assert (second_try.number, second_try.status) == (2, AttemptStatus.ANSWERED)
    (target,) = targets(stack, campaign_id)
    assert target.status == CampaignTargetStatus.DONE and target.attempts == 2


def test_d_worker_lost_after_originate_outcome_comes_from_the_listener(
    call_stack: CallStack,
) -> None:
    """A worker that sent the Originate and died before ``mark_originated``: the listener
    sees the channel (``Newchannel``) and records the outcome; recovery changes nothing and
    the number is dialled once."""
    stack = call_stack
    campaign_id = new_campaign(
        stack, CampaignKind.DATA_COMPLETION, [TargetRow(phone=fresh_phone())]
    )
    try:
        with uas(stack.pbx.workdir, "outbound_answer_uas", 1, hang_up_after_ms=3000) as trunk:
            with stack.session() as session:
                (order,) = dialer.claim_due_attempts(
                    session, now=datetime.now(UTC), worker="doomed"
                )
                session.commit()

            async def send_then_die() -> bool:
                async with connect(stack)() as manager:
                    reply = await originate(manager, build_request(order), timeout=5)
                return reply.accepted

            assert asyncio.run(send_then_die())  # ... and no mark_originated: the worker died
            wait_for(lambda: none_in_flight(stack, campaign_id), "the listener's outcome")
            later = datetime.now(UTC) + timedelta(minutes=5)
            assert recover_once(sessions(stack), now=later) == 0
            trunk.finish()
            assert trunk.invites() == 1
    finally:
        stop(stack, campaign_id)
    (attempt,) = attempts(stack, campaign_id)
    assert attempt.id == order.attempt_id
    assert attempt.status == AttemptStatus.ANSWERED
    assert attempt.originated_at is not None and attempt.answered_at is not None
    (target,) = targets(stack, campaign_id)
    assert target.status == CampaignTargetStatus.DONE


# --- (e) through a real RQ worker ---------------------------------------------------------------


def test_e_dial_tick_through_a_real_rq_worker(call_stack: CallStack) -> None:
    """The scheduled job as production runs it: ``outbound.jobs.dial_tick`` enqueued on the
    ``outbound`` queue and run by ``acikkapi worker run --burst`` (user ``dialer`` with the
    rendered secret, the database and Redis of the call stack)."""
    import redis
    from rq import Queue

    stack = call_stack
    rows = [TargetRow(phone=fresh_phone()) for _ in range(2)]
    campaign_id = new_campaign(
        stack, CampaignKind.RESOLUTION_INFO, rows, max_concurrent=2, calls_per_second=5.0
    )
    try:
        with uas(stack.pbx.workdir, "outbound_answer_uas", 2, hang_up_after_ms=3000) as trunk:
            connection = redis.Redis.from_url(stack.settings.redis_url)
            queue = Queue("outbound", connection=connection)
            queue.empty()  # type: ignore[no-untyped-call]
            job = queue.enqueue("outbound.jobs.dial_tick")
            worker = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from acikkapi.cli import main; sys.exit(main())",
                    "worker",
                    "run",
                    "--burst",
                    "-q",
                    "outbound",
                ],
                env=stack.env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=Path(__file__).resolve().parents[2],
            )
            assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]
            job.refresh()  # type: ignore[no-untyped-call]
            assert job.return_value() == {
                "claimed": 2,
                "originated": 2,
                "refused": 0,
                "unknown": 0,
                "unsent": 0,
            }
            wait_for(
                lambda: campaign_status(stack, campaign_id) == CampaignStatus.FINISHED,
                "the campaign to finish",
            )
            trunk.finish()
            assert trunk.invites() == 2
    finally:
        stop(stack, campaign_id)
    assert {t.status for t in targets(stack, campaign_id)} == {CampaignTargetStatus.DONE}
