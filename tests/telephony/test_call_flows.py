"""End-to-end call flows (issue 3, item 6 a–i): real Asterisk, sipp phones, our FastAGI server
and AMI listener as subprocesses, a migrated and seeded SQLite database, real Redis.

Every test drives real SIP calls and then asserts on the **database** (call record, ticket
through the intake path, citizen, callback task), polling with a bounded wait — never on
wall-clock speed. Each test registers only the phones it needs and unregisters them after.

Set ``ACIKKAPI_RECORD_TRANSCRIPTS=1`` to (re)write the raw AMI streams of the answered,
abandoned and blind-transfer calls into ``tests/ami_listener/transcripts/real_*.txt`` (they are
always written to the test's work folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from models import (
    CallbackReason,
    CallbackStatus,
    CallbackTask,
    CallOutcome,
    CallRecord,
    Channel,
    Citizen,
    CitizenPhone,
    Language,
    Notification,
    StaffUser,
    Ticket,
    TicketContact,
)
from telephony.provision import render
from telephony.render import SWITCHBOARD_NUMBER, TRANSFER_TARGET
from tests.telephony import sipp_tools
from tests.telephony.ami_tools import Ami, first
from tests.telephony.conftest import AGENT_PORTS, TRUNK_PORT, CallStack, PbxHandle

pytestmark = pytest.mark.telephony

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "ami_listener" / "transcripts"
RECORD_TRANSCRIPTS = os.environ.get("ACIKKAPI_RECORD_TRANSCRIPTS") == "1"
DB_WAIT = 45.0  # seconds a database fact may take to appear (bounded, not a speed claim)
T = TypeVar("T")

# Demo citizens (acikkapi/data/demo.json) with a mobile number of their own, one per test.
GULSUM = "05302650201"
UMIT = "05427368036"
ISIL = "05068135113"
ZEYNEP = "05326517720"
EMINE = "05336983060"
HATICE = "05334368027"
JOHN = "05335475342"
ISMAIL = "05358075723"
BUSRA = "05068923406"


# --- helpers -------------------------------------------------------------------------------


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = DB_WAIT) -> T:
    """Poll ``probe`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)


def e164(raw: str) -> str:
    return "+90" + raw.lstrip("0")


def staff(stack: CallStack, extension: str) -> StaffUser:
    with stack.session() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.sip_extension == extension))
        assert user is not None, extension
        return user


def citizen_by_phone(stack: CallStack, raw: str) -> Citizen | None:
    with stack.session() as db:
        return db.scalar(
            select(Citizen).join(CitizenPhone).where(CitizenPhone.e164 == e164(raw)).limit(1)
        )


def finished_record(
    stack: CallStack,
    caller_raw: str,
    complete: Callable[[CallRecord], bool] = lambda r: True,
    timeout: float = DB_WAIT,
) -> CallRecord:
    """The caller's call record once it has ended and ``complete(record)`` holds."""

    def probe() -> CallRecord | None:
        with stack.session() as db:
            records = list(
                db.scalars(select(CallRecord).where(CallRecord.caller_raw == caller_raw))
            )
        done = [r for r in records if r.ended_at is not None and complete(r)]
        return done[0] if len(done) == 1 else None

    record = wait_for(probe, f"a complete, ended call record for {caller_raw}", timeout)
    with stack.session() as db:
        count = db.query(CallRecord).filter(CallRecord.caller_raw == caller_raw).count()
    assert count == 1, f"one call record per conversation, got {count} for {caller_raw}"
    return record


def ticket_of(stack: CallStack, record: CallRecord) -> tuple[Ticket, TicketContact]:
    with stack.session() as db:
        ticket = db.get(Ticket, record.ticket_id)
        contact = db.scalar(
            select(TicketContact).where(TicketContact.external_ref == record.call_id)
        )
        assert ticket is not None and contact is not None, record.call_id
        return ticket, contact


def assert_times(record: CallRecord) -> None:
    assert record.entered_at is not None and record.answered_at is not None
    assert record.ended_at is not None
    assert record.started_at <= record.entered_at <= record.answered_at <= record.ended_at
    assert record.wait_seconds is not None and 0 <= record.wait_seconds <= 60
    assert record.talk_seconds is not None and record.talk_seconds >= 1


def assert_recording(pbx: PbxHandle, record: CallRecord) -> Path:
    assert record.recording_path == f"{record.call_id}.wav", record.recording_path
    path = pbx.layout.monitor_dir / record.recording_path
    # MixMonitor closes the file when the channel is destroyed: allow it a moment.
    wait_for(lambda: path.exists() and path.stat().st_size > 44, f"recording {path}", 15)
    return path


@contextlib.contextmanager
def phones(pbx: PbxHandle, *extensions: str) -> Iterator[None]:
    """Register the phones (generated passwords) for the block; unregister afterwards."""
    done: list[str] = []
    try:
        for ext in extensions:
            sipp_tools.register(
                pbx.workdir, pbx.sip_target, ext, pbx.secrets.sip_password(ext), AGENT_PORTS[ext]
            )
            done.append(ext)
        yield
    finally:
        for ext in done:
            with contextlib.suppress(AssertionError):
                sipp_tools.register(
                    pbx.workdir,
                    pbx.sip_target,
                    ext,
                    pbx.secrets.sip_password(ext),
                    AGENT_PORTS[ext],
                    expires=0,
                )


@contextlib.contextmanager
def running(*procs: sipp_tools.Sipp) -> Iterator[None]:
    """Kill every sipp process still running when the block ends (also on failure)."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait(5)


def finish(sipp: sipp_tools.Sipp, who: str, timeout: float = 120) -> None:
    rc = sipp.wait(timeout)
    assert rc == 0, f"{who}: sipp rc={rc}\n{sipp.output()}"


def ivr_digit_after(pbx: PbxHandle, lang: str = "tr") -> int:
    """ms after the answer at which the language menu is listening (after the KVKK notice)."""
    return pbx.prompt_ms(lang, "kvkk-notice") + 1300


class ScreenPops:
    """Collects every screen-pop message published while the test session runs."""

    def __init__(self, url: str) -> None:
        import redis

        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._client = redis.Redis.from_url(url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(**{"acikkapi:screenpop:*": self._on_message})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    def _on_message(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        try:
            body = json.loads(message["data"])
        except ValueError:
            return
        with self._lock:
            self.messages.append((channel, body))

    def for_call(self, call_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(c, m) for c, m in self.messages if m.get("call_id") == call_id]

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(2)
        self._pubsub.close()
        self._client.close()


@pytest.fixture(scope="module")
def pops(call_stack: CallStack) -> Iterator[ScreenPops]:
    collector = ScreenPops(call_stack.settings.redis_url)
    try:
        yield collector
    finally:
        collector.close()


@contextlib.contextmanager
def transcript(pbx: PbxHandle, name: str) -> Iterator[Ami]:
    """Record the raw AMI stream as the ``listener`` user sees it while the block runs."""
    ami = pbx.ami("listener")
    try:
        yield ami
    finally:
        data = ami.transcript()
        ami.close()
        (pbx.workdir / name).write_bytes(data)
        if RECORD_TRANSCRIPTS:
            (TRANSCRIPTS / name).write_bytes(data)


def wait_hangups(ami: Ami, call_id: str, timeout: float = 20) -> None:
    """Until the citizen's channel (Uniqueid = call id) has hung up, plus a short settle."""
    ami.wait_event(
        lambda e: first(e, "Event") == "Hangup" and first(e, "Uniqueid") == call_id, timeout
    )
    time.sleep(1.0)


def unknown_number(stack: CallStack) -> str:
    while True:
        raw = "0532" + "".join(random.choice("0123456789") for _ in range(7))
        if citizen_by_phone(stack, raw) is None:
            return raw


# --- (a) a known citizen is answered ----------------------------------------------------------


def answered_call(pbx: PbxHandle, extension: str, number: str, hold_ms: int) -> None:
    """``number`` calls the call centre, presses 1 (Turkish) and agent ``extension`` answers
    and talks for ``hold_ms``; returns when both sipp ends finished."""
    with phones(pbx, extension):
        phone = sipp_tools.agent_talk(
            pbx.workdir, pbx.sip_target, AGENT_PORTS[extension], hold_ms=hold_ms
        )
        with running(phone):
            time.sleep(0.3)
            caller = sipp_tools.citizen(
                pbx.workdir,
                pbx.sip_target,
                pbx.settings.call_centre_number,
                TRUNK_PORT,
                number,
                [(ivr_digit_after(pbx), "1")],
            )
            with running(caller):
                finish(caller, "caller")
                finish(phone, f"agent {extension}")


def test_a_known_citizen_answered_with_ticket_recording_and_screen_pop(
    call_stack: CallStack, pops: ScreenPops
) -> None:
    pbx = call_stack.pbx
    citizen = citizen_by_phone(call_stack, GULSUM)
    agent = staff(call_stack, "1001")
    assert citizen is not None
    with transcript(pbx, "real_answered_call.txt") as ami:
        answered_call(pbx, "1001", GULSUM, hold_ms=3000)
        record = finished_record(call_stack, GULSUM, lambda r: r.ticket_id is not None)
        wait_hangups(ami, record.call_id)

    assert record.caller_e164 == e164(GULSUM)
    assert record.dialled_number == pbx.settings.call_centre_number
    assert record.language == Language.TR and record.via_switchboard is False
    assert record.queue == "cagri-merkezi"
    assert record.agent_interface == "PJSIP/1001" and record.agent_id == agent.id
    assert record.outcome == CallOutcome.ANSWERED
    assert record.transfer_chain == []
    assert_times(record)
    assert_recording(pbx, record)
    assert record.citizen_id == citizen.id

    ticket, contact = ticket_of(call_stack, record)
    assert ticket.channel == Channel.PHONE and contact.channel == Channel.PHONE
    assert ticket.received_by_id == agent.id and contact.received_by_id == agent.id
    assert ticket.citizen_id == citizen.id and contact.citizen_id == citizen.id
    assert ticket.reference_code
    assert contact.phone_e164 == e164(GULSUM)
    with call_stack.session() as db:
        sms = list(db.scalars(select(Notification).where(Notification.ticket_id == ticket.id)))
    assert [n.recipient for n in sms if n.channel.value == "sms"] == [e164(GULSUM)], sms

    got = wait_for(lambda: pops.for_call(record.call_id), "a screen pop on Redis", 15)
    assert len(got) == 1, got
    channel, message = got[0]
    assert channel == f"acikkapi:screenpop:{agent.id}"
    assert message["agent_id"] == agent.id and message["ticket_id"] == ticket.id
    assert message["citizen_id"] == citizen.id
    assert message["reference_code"] == ticket.reference_code
    assert message["caller_e164"] == e164(GULSUM)


# --- (b) an unknown number becomes a citizen known only by phone -------------------------------


def test_b_unknown_number_becomes_new_citizen(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    number = unknown_number(call_stack)
    answered_call(pbx, "1002", number, hold_ms=1500)
    record = finished_record(call_stack, number, lambda r: r.ticket_id is not None)
    assert record.outcome == CallOutcome.ANSWERED
    assert record.agent_id == staff(call_stack, "1002").id
    ticket, contact = ticket_of(call_stack, record)
    assert ticket.citizen_id is not None and record.citizen_id == ticket.citizen_id
    with call_stack.session() as db:
        citizen = db.get(Citizen, ticket.citizen_id)
        assert citizen is not None
        assert citizen.tc_number is None and citizen.first_name is None
        assert citizen.last_name is None
        assert [p.e164 for p in citizen.phones] == [e164(number)]
    assert contact.citizen_match == "new"


# --- (c) switchboard operator blind-transfers into the call centre ------------------------------


def test_c_switchboard_blind_transfer_into_call_centre(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    citizen = citizen_by_phone(call_stack, UMIT)
    assert citizen is not None
    with transcript(pbx, "real_blind_transfer.txt") as ami, phones(pbx, "1101", "1002"):
        agent = sipp_tools.agent_talk(
            pbx.workdir, pbx.sip_target, AGENT_PORTS["1002"], hold_ms=2500
        )
        operator = sipp_tools.operator(
            pbx.workdir, pbx.sip_target, AGENT_PORTS["1101"], [(1500, f"##{TRANSFER_TARGET}")]
        )
        with running(agent, operator):
            time.sleep(0.3)
            caller = sipp_tools.citizen(
                pbx.workdir, pbx.sip_target, SWITCHBOARD_NUMBER, TRUNK_PORT, UMIT, []
            )
            with running(caller):
                finish(caller, "caller")
                finish(operator, "operator 1101")
                finish(agent, "agent 1002")
        record = finished_record(call_stack, UMIT, lambda r: r.ticket_id is not None)
        wait_hangups(ami, record.call_id)

    assert record.via_switchboard is True
    assert record.dialled_number == SWITCHBOARD_NUMBER
    assert record.queue == "cagri-merkezi"
    assert record.agent_id == staff(call_stack, "1002").id
    assert record.outcome == CallOutcome.ANSWERED
    assert_times(record)
    chain = [(e["kind"], e["from"], e["to"]) for e in record.transfer_chain]
    assert chain == [("blind", "PJSIP/1101", f"{TRANSFER_TARGET}@acikkapi-internal")], chain
    assert_recording(pbx, record)
    ticket, contact = ticket_of(call_stack, record)
    assert ticket.channel == Channel.SWITCHBOARD and contact.channel == Channel.SWITCHBOARD
    assert ticket.citizen_id == citizen.id
    assert contact.received_by_id == record.agent_id


# --- (d) attended transfer ------------------------------------------------------------------


def test_d_switchboard_attended_transfer(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    citizen = citizen_by_phone(call_stack, ISIL)
    operator_user = staff(call_stack, "1102")
    assert citizen is not None
    with phones(pbx, "1102", "1003"):
        agent = sipp_tools.agent_talk(
            pbx.workdir, pbx.sip_target, AGENT_PORTS["1003"], hold_ms=9000
        )
        operator = sipp_tools.operator(
            pbx.workdir,
            pbx.sip_target,
            AGENT_PORTS["1102"],
            [(1500, "*2"), (2500, TRANSFER_TARGET)],
            hang_up_after_ms=6000,
        )
        with running(agent, operator):
            time.sleep(0.3)
            caller = sipp_tools.citizen(
                pbx.workdir, pbx.sip_target, SWITCHBOARD_NUMBER, TRUNK_PORT, ISIL, []
            )
            with running(caller):
                finish(caller, "caller")
                finish(operator, "operator 1102")
                finish(agent, "agent 1003")
    record = finished_record(call_stack, ISIL, lambda r: r.ticket_id is not None)
    assert record.via_switchboard is True
    assert record.queue == "cagri-merkezi"
    assert record.agent_interface == "PJSIP/1003"
    assert record.agent_id == staff(call_stack, "1003").id
    assert record.outcome == CallOutcome.ANSWERED
    assert_times(record)
    kinds = [(e["kind"], e["from"]) for e in record.transfer_chain]
    assert kinds == [("attended", "PJSIP/1102")], record.transfer_chain
    ticket, contact = ticket_of(call_stack, record)
    assert ticket.channel == Channel.SWITCHBOARD
    assert ticket.citizen_id == citizen.id, "the ticket is the citizen's, not the operator's"
    assert contact.phone_e164 == e164(ISIL)
    with call_stack.session() as db:
        # No record, ticket or citizen for the operator's consultation leg.
        assert db.query(CallRecord).filter(CallRecord.caller_raw == "1102").count() == 0
        assert db.query(CitizenPhone).filter(CitizenPhone.raw == "1102").count() == 0
        assert operator_user.id not in {
            t.received_by_id for t in db.scalars(select(Ticket).where(Ticket.id == ticket.id))
        }


# --- (e) the caller hangs up while queued -----------------------------------------------------


def test_e_abandoned_in_queue_gets_callback_task(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    with transcript(pbx, "real_abandoned_call.txt") as ami, phones(pbx, "1004"):
        agent = sipp_tools.agent_no_answer(pbx.workdir, pbx.sip_target, AGENT_PORTS["1004"])
        with running(agent):
            time.sleep(0.3)
            caller = sipp_tools.citizen(
                pbx.workdir,
                pbx.sip_target,
                pbx.settings.call_centre_number,
                TRUNK_PORT,
                ZEYNEP,
                [(ivr_digit_after(pbx), "1")],
                hang_up_after_ms=pbx.prompt_ms("tr", "welcome") + 6000,
            )
            with running(caller):
                joined = ami.wait_event(
                    lambda e: (
                        first(e, "Event") == "QueueCallerJoin" and first(e, "CallerIDNum") == ZEYNEP
                    ),
                    90,
                )
                finish(caller, "caller")
                finish(agent, "agent 1004 (never answers)", 30)
        record = finished_record(call_stack, ZEYNEP, lambda r: r.outcome == CallOutcome.ABANDONED)
        wait_hangups(ami, record.call_id)
    assert first(joined, "Uniqueid") == record.call_id
    assert record.queue == "cagri-merkezi"
    assert record.entered_at is not None and record.answered_at is None
    assert record.ended_at is not None and record.entered_at <= record.ended_at
    assert record.wait_seconds is not None and record.wait_seconds >= 1
    assert record.ticket_id is None and record.agent_id is None
    with call_stack.session() as db:
        tasks = list(db.scalars(select(CallbackTask).where(CallbackTask.call_id == record.call_id)))
    assert [(t.reason, t.phone_e164, t.status) for t in tasks] == [
        (CallbackReason.ABANDONED, e164(ZEYNEP), CallbackStatus.PENDING)
    ]
    assert tasks[0].citizen_id == citizen_by_phone(call_stack, ZEYNEP).id  # type: ignore[union-attr]


# --- (f) the listener is killed mid-call and restarted ------------------------------------------


def test_f_listener_killed_mid_call_still_complete(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    agent_user = staff(call_stack, "1005")
    try:
        with phones(pbx, "1005"):
            phone = sipp_tools.agent_talk(
                pbx.workdir, pbx.sip_target, AGENT_PORTS["1005"], hold_ms=2000
            )
            with running(phone):
                time.sleep(0.3)
                caller = sipp_tools.citizen(
                    pbx.workdir,
                    pbx.sip_target,
                    pbx.settings.call_centre_number,
                    TRUNK_PORT,
                    EMINE,
                    [(ivr_digit_after(pbx), "1")],
                )
                with running(caller):
                    # The record exists (the call is in the IVR): now the listener dies.
                    def started() -> bool:
                        with call_stack.session() as db:
                            return (
                                db.scalar(select(CallRecord).where(CallRecord.caller_raw == EMINE))
                                is not None
                            )

                    wait_for(started, "the call record of the call in progress", 30)
                    call_stack.listener.kill()
                    finish(caller, "caller")
                    finish(phone, "agent 1005")
            with call_stack.session() as db:
                record = db.scalar(select(CallRecord).where(CallRecord.caller_raw == EMINE))
                assert record is not None and record.ended_at is None
                assert record.answered_at is None, "the listener was dead before the answer"
    finally:
        if not call_stack.listener.running:
            call_stack.start_listener()
    record = finished_record(
        call_stack, EMINE, lambda r: r.ticket_id is not None and r.talk_seconds is not None
    )
    assert record.outcome == CallOutcome.ANSWERED
    assert record.queue == "cagri-merkezi"
    assert record.agent_interface == "PJSIP/1005" and record.agent_id == agent_user.id
    assert_times(record)
    ticket, contact = ticket_of(call_stack, record)
    assert ticket.citizen_id == citizen_by_phone(call_stack, EMINE).id  # type: ignore[union-attr]
    assert contact.received_by_id == agent_user.id
    # queue_log carries no recording; reconcile finds <CALL_ID>.wav in the monitor spool.
    assert_recording(pbx, record)


# --- (g) the FastAGI server is down -------------------------------------------------------------


def test_g_agi_down_call_still_reaches_agent(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    citizen = citizen_by_phone(call_stack, HATICE)
    assert citizen is not None
    call_stack.agi.stop()
    try:
        answered_call(pbx, "1006", HATICE, hold_ms=1500)
    finally:
        call_stack.start_agi()
    record = finished_record(call_stack, HATICE, lambda r: r.ticket_id is not None)
    log = (pbx.layout.log_dir / "messages.log").read_text(errors="replace")
    assert f"caller_lookup FAILURE for {record.call_id}" in log
    assert record.outcome == CallOutcome.ANSWERED
    assert record.agent_id == staff(call_stack, "1006").id
    assert_times(record)
    assert_recording(pbx, record)
    ticket, contact = ticket_of(call_stack, record)
    assert ticket.citizen_id == citizen.id and record.citizen_id == citizen.id
    assert contact.received_by_id == record.agent_id and ticket.reference_code


# --- (h) English ----------------------------------------------------------------------------


def test_h_english_caller_reaches_english_agent(call_stack: CallStack) -> None:
    pbx = call_stack.pbx
    with phones(pbx, "1002", "1003"):
        turkish_only = sipp_tools.agent_talk(pbx.workdir, pbx.sip_target, AGENT_PORTS["1002"])
        english = sipp_tools.agent_talk(pbx.workdir, pbx.sip_target, AGENT_PORTS["1003"])
        with running(turkish_only, english):
            time.sleep(0.3)
            caller = sipp_tools.citizen(
                pbx.workdir,
                pbx.sip_target,
                pbx.settings.call_centre_number,
                TRUNK_PORT,
                JOHN,
                [(ivr_digit_after(pbx), "2")],
            )
            with running(caller):
                finish(caller, "caller")
                finish(english, "agent 1003")
            assert turkish_only.proc.poll() is None, "the Turkish-only agent was offered the call"
    record = finished_record(call_stack, JOHN, lambda r: r.ticket_id is not None)
    assert record.language == Language.EN
    assert record.queue == "cagri-merkezi-en"
    assert record.agent_interface == "PJSIP/1003"
    assert record.agent_id == staff(call_stack, "1003").id
    assert "en" in (staff(call_stack, "1003").languages or [])
    assert record.outcome == CallOutcome.ANSWERED
    ticket, _ = ticket_of(call_stack, record)
    assert ticket.language == Language.EN


# --- (i) out of hours -----------------------------------------------------------------------


def _closed_window(tz: str) -> str:
    """An ``HH:MM-HH:MM`` staffing window that does not contain the present minute."""
    now = datetime.now(ZoneInfo(tz))
    for start, end in ((2, 3), (-3, -2)):
        a = (now + timedelta(hours=start)).strftime("%H:%M")
        b = (now + timedelta(hours=end)).strftime("%H:%M")
        if a < b:
            return f"{a}-{b}"
    raise AssertionError("no window")  # pragma: no cover


@pytest.fixture
def out_of_hours(call_stack: CallStack) -> Iterator[str]:
    """Dialplan and FastAGI server switched to a staffing window that is closed now."""
    pbx = call_stack.pbx
    window = _closed_window(pbx.settings.timezone)
    closed_env = dict(pbx.environ, ACIKKAPI_SERVICE_HOURS=window)
    try:
        render(_settings(closed_env), environ=closed_env)
        pbx.cli("dialplan reload")
        assert "GotoIfTime(" in pbx.cli("dialplan show s@acikkapi-callcentre")
        call_stack.agi.stop()
        call_stack.start_agi(dict(call_stack.env, ACIKKAPI_SERVICE_HOURS=window))
        yield window
    finally:
        render(_settings(pbx.environ), environ=pbx.environ)
        pbx.cli("dialplan reload")
        call_stack.agi.stop()
        call_stack.start_agi(dict(call_stack.env))


def _settings(environ: dict[str, str]) -> Any:
    from acikkapi.settings import load_settings

    return load_settings(environ)


def _out_of_hours_call(
    pbx: PbxHandle, number: str, digit: str, more: list[sipp_tools.Step] | None = None, **kw: Any
) -> None:
    second = pbx.prompt_ms("tr", "welcome") + pbx.prompt_ms("tr", "out-of-hours") + 1800
    caller = sipp_tools.citizen(
        pbx.workdir,
        pbx.sip_target,
        pbx.settings.call_centre_number,
        TRUNK_PORT,
        number,
        [(ivr_digit_after(pbx), "1"), (second, digit), *(more or [])],
        **kw,
    )
    with running(caller):
        finish(caller, "caller")


def test_i_out_of_hours_callback_request(call_stack: CallStack, out_of_hours: str) -> None:
    pbx = call_stack.pbx
    _out_of_hours_call(pbx, ISMAIL, "1")
    record = finished_record(
        call_stack, ISMAIL, lambda r: r.outcome == CallOutcome.CALLBACK_REQUESTED
    )
    with call_stack.session() as db:
        tasks = list(db.scalars(select(CallbackTask).where(CallbackTask.call_id == record.call_id)))
    assert [(t.reason, t.phone_e164) for t in tasks] == [
        (CallbackReason.OUT_OF_HOURS, e164(ISMAIL))
    ], tasks
    task = tasks[0]
    assert task.citizen_id == citizen_by_phone(call_stack, ISMAIL).id  # type: ignore[union-attr]
    # Due at the next start of the (closed now) staffing window, in the future.
    start = out_of_hours.split("-")[0]
    due_local = task.due_at.astimezone(ZoneInfo(pbx.settings.timezone))
    assert due_local.strftime("%H:%M") == start and task.due_at > task.requested_at
    assert record.entered_at is None and record.ticket_id is None
    log = (pbx.layout.log_dir / "messages.log").read_text(errors="replace")
    assert f"No agent for {record.call_id}" in log


def test_i_out_of_hours_voice_message(call_stack: CallStack, out_of_hours: str) -> None:
    pbx = call_stack.pbx
    leave = pbx.prompt_ms("tr", "leave-message")
    # The caller speaks after the prompt (sipp's G.711 sample), then hangs up.
    _out_of_hours_call(pbx, BUSRA, "2", [(leave + 700, sipp_tools.SPEECH)], hang_up_after_ms=4000)
    record = finished_record(call_stack, BUSRA, lambda r: r.outcome == CallOutcome.VOICEMAIL)
    assert f"acikkapi-messages/{record.call_id}.wav" in (record.note or "")
    message = pbx.layout.messages_dir / f"{record.call_id}.wav"
    wait_for(lambda: message.exists() and message.stat().st_size > 44, f"voice message {message}")
    assert record.entered_at is None and record.ticket_id is None
    with call_stack.session() as db:
        assert db.query(CallbackTask).filter(CallbackTask.call_id == record.call_id).count() == 0


def test_transcripts_were_captured(call_stack: CallStack) -> None:
    """The recorded streams are real Asterisk output with the events the listener relies on."""
    workdir = call_stack.pbx.workdir
    expected = {
        "real_answered_call.txt": ["QueueCallerJoin", "AgentConnect", "MixMonitorStart"],
        "real_abandoned_call.txt": ["QueueCallerJoin", "QueueCallerAbandon"],
        "real_blind_transfer.txt": ["BlindTransfer", "AgentConnect"],
    }
    for name, events in expected.items():
        path = workdir / name
        if not path.exists():
            pytest.skip(f"{name} not recorded in this run (its test did not run)")
        text = path.read_bytes().decode("utf-8")
        assert text.startswith("Asterisk Call Manager/")
        for event in events:
            assert f"Event: {event}\r\n" in text, (name, event)
