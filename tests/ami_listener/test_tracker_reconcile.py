"""Tracker keying rules, queue_log reading and reconciliation after a restart."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ami_listener.call_tracker import CallTracker, interface_of
from ami_listener.framing import chanvar_key
from ami_listener.queue_log import QueueLogReader, facts_from_entries
from ami_listener.reconcile import reconcile
from ami_listener.writer import Checkpoint, CloseVanished, FactWriter
from models import CallbackTask, CallOutcome, CallRecord
from services.call_records import (
    AgentAnswered,
    CallEnded,
    CallStarted,
    QueueExited,
    QueueJoined,
    apply_fact,
    close_vanished_calls,
    open_call_tickets,
)

INTERNAL = re.compile(r"^\d{2,6}$")
T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def ev(name: str, t: int, **headers: str) -> dict[str, str]:
    return {"Event": name, "Timestamp": f"{T0.timestamp() + t}", **headers}


def test_interface_of() -> None:
    assert interface_of("PJSIP/1001-0000000a") == "PJSIP/1001"
    assert interface_of("Local/4000@ak-transfer-00000001;2") == "Local/4000@ak-transfer"
    assert interface_of("PJSIP/trunk") == "PJSIP/trunk"


def test_without_call_id_queue_join_keys_on_linkedid() -> None:
    tracker = CallTracker()
    snap = {"Uniqueid": "5.1", "Linkedid": "5.1", "CallerIDNum": "05321234567"}
    facts = tracker.feed(ev("Newchannel", 0, **snap))
    facts += tracker.feed(ev("QueueCallerJoin", 5, Queue="q", Position="1", **snap))
    facts += tracker.feed(
        ev("AgentConnect", 9, Interface="PJSIP/1001", HoldTime="4", Queue="q", **snap)
    )
    facts += tracker.feed(ev("Hangup", 30, **{"Cause-txt": "Normal Clearing"}, **snap))
    kinds = [type(f).__name__ for f in facts]
    assert kinds == ["CallStarted", "QueueJoined", "AgentAnswered", "CallEnded"]
    assert {f.call_id for f in facts} == {"5.1"}
    assert isinstance(facts[0], CallStarted) and facts[0].at == T0  # Newchannel time


def test_internal_call_produces_nothing_and_queue_status_overflow() -> None:
    tracker = CallTracker()
    internal = {"Uniqueid": "6.1", "Linkedid": "6.1", "CallerIDNum": "1101"}
    internal[chanvar_key("CALL_ID")] = "6.1"
    assert tracker.feed(ev("QueueCallerJoin", 0, Queue="q", **internal)) == []
    assert tracker.feed(ev("Hangup", 5, **internal)) == []
    assert tracker.stats.internal_calls == 1
    citizen = {"Uniqueid": "7.1", "Linkedid": "7.1", "CallerIDNum": "05321234567"}
    citizen[chanvar_key("CALL_ID")] = "7.1"
    tracker.feed(ev("QueueCallerJoin", 0, Queue="q", **citizen))
    facts = tracker.feed(ev("VarSet", 60, Variable="QUEUESTATUS", Value="TIMEOUT", **citizen))
    assert facts == [QueueExited("7.1", T0 + timedelta(seconds=60), "TIMEOUT", None, "q")]


QUEUE_LOG = """\
{t0}|NONE|NONE|NONE|QUEUESTART|
{t1}|8.1|cagri-merkezi|NONE|ENTERQUEUE||05321112233|1
{t2}|8.1|cagri-merkezi|PJSIP/1004|CONNECT|7|8.2|2
{t3}|8.1|cagri-merkezi|PJSIP/1004|COMPLETECALLER|7|50|1
{t1}|8.3|cagri-merkezi|NONE|ENTERQUEUE||05329998877|2
{t4}|8.3|cagri-merkezi|NONE|ABANDON|1|2|33
{t1}|8.5|cagri-merkezi|NONE|ENTERQUEUE||1101|1
{t2}|8.5|cagri-merkezi|PJSIP/1004|CONNECT|3|8.6|1
"""


def _write_log(path: Path, with_bad_line: bool = True) -> None:
    base = int(T0.timestamp())
    text = QUEUE_LOG.format(t0=base, t1=base + 1, t2=base + 8, t3=base + 58, t4=base + 34)
    data = text.encode()
    if with_bad_line:
        data += f"{base + 60}|8.9|q|NONE|ENTERQUEUE||0532\xff\xfe123|1\n".encode("latin-1")
    path.write_bytes(data + f"{base + 61}|8.7|q|NONE|ENTERQ".encode())  # incomplete last line


def test_queue_log_reader_offsets_rotation_and_strict_decoding(tmp_path: Path) -> None:
    log_path, state = tmp_path / "queue_log", tmp_path / "state" / "offset.json"
    _write_log(log_path)
    reader = QueueLogReader(log_path, state)
    entries = reader.read_new()
    assert [e.event for e in entries][:3] == ["QUEUESTART", "ENTERQUEUE", "CONNECT"]
    assert reader.stats.bad_encoding == 1
    assert all("0532123" not in "|".join(e.data) for e in entries)
    assert reader.read_new() == entries  # not committed yet: the same lines again
    reader.commit()
    assert reader.read_new() == []  # the incomplete line waits for its newline
    with log_path.open("ab") as handle:
        handle.write(b"UEUE||05320000000|1\n")
    assert [e.call_id for e in reader.read_new()] == ["8.7"]
    reader.commit()
    log_path.unlink()
    _write_log(log_path, with_bad_line=False)  # rotated: a new file (new inode) starts at 0
    assert len(QueueLogReader(log_path, state).read_new()) == 8


def test_queue_log_completes_calls_missed_while_down(
    session: Session, now: datetime, tmp_path: Path
) -> None:
    log_path = tmp_path / "queue_log"
    _write_log(log_path)
    facts = facts_from_entries(QueueLogReader(log_path, tmp_path / "s").read_new(), INTERNAL)
    for _ in range(2):  # idempotent
        dues = [d for f in facts if (d := apply_fact(session, now, f).ticket_due) is not None]
        open_call_tickets(session, now, dues)
    records = {r.call_id: r for r in session.scalars(select(CallRecord))}
    assert set(records) >= {"8.1", "8.3"} and "8.5" not in records  # internal caller skipped
    done = records["8.1"]
    assert done.outcome == CallOutcome.ANSWERED and done.agent_interface == "PJSIP/1004"
    assert (done.wait_seconds, done.talk_seconds) == (7, 50)
    assert done.ended_at == T0 + timedelta(seconds=58) and done.ticket_id is not None
    gone = records["8.3"]
    assert gone.outcome == CallOutcome.ABANDONED and gone.wait_seconds == 33
    assert session.scalar(select(CallbackTask).where(CallbackTask.call_id == "8.3")) is not None


def test_close_vanished_calls(session: Session, now: datetime) -> None:
    at = now - timedelta(minutes=5)
    for call_id in ("9.1", "9.2"):
        apply_fact(session, now, CallStarted(call_id, at, "05321234567"))
        apply_fact(session, now, QueueJoined(call_id, at + timedelta(seconds=3), "q"))
    assert close_vanished_calls(session, frozenset({"9.2"}), now) == 1
    assert close_vanished_calls(session, frozenset({"9.2"}), now) == 0
    closed = session.scalar(select(CallRecord).where(CallRecord.call_id == "9.1"))
    assert closed is not None and closed.ended_at == at + timedelta(seconds=3)
    assert closed.note and "disconnected" in closed.note


def test_reconcile_after_restart_mid_call(tmp_path: Path) -> None:
    """A call answered while the listener was down is live: it is upserted from the channel
    listing (with its agent from the shared bridge), waiting callers from QueueStatus, and the
    queue_log checkpoint runs only through the writer."""
    tracker = CallTracker()
    now = T0 + timedelta(minutes=10)
    vars_a = {chanvar_key("CALL_ID"): "10.1", chanvar_key("AK_LANG"): "tr"}
    caller = {
        "Event": "CoreShowChannel",
        "Channel": "PJSIP/trunk-00000001",
        "Uniqueid": "10.1",
        "Linkedid": "10.1",
        "CallerIDNum": "05321234567",
        "Application": "Queue",
        "BridgeId": "br1",
        "Duration": "00:02:00",
        **vars_a,
    }
    agent = {
        "Event": "CoreShowChannel",
        "Channel": "PJSIP/1002-00000002",
        "Uniqueid": "10.2",
        "Linkedid": "10.1",
        "CallerIDNum": "1002",
        "Application": "AppQueue",
        "BridgeId": "br1",
        "Duration": "00:01:30",
        chanvar_key("CALL_ID"): "10.1",
    }
    waiting = {
        "Event": "CoreShowChannel",
        "Channel": "PJSIP/trunk-00000003",
        "Uniqueid": "11.1",
        "Linkedid": "11.1",
        "CallerIDNum": "05324445566",
        "Application": "Queue",
        "BridgeId": "",
        "Duration": "00:00:40",
        chanvar_key("CALL_ID"): "11.1",
    }

    async def list_action(fields: dict[str, str]) -> list[Any]:
        if fields["Action"] == "CoreShowChannels":
            return [caller, agent, waiting, {"Event": "CoreShowChannelsComplete"}]
        return [
            {"Event": "QueueParams", "Queue": "q"},
            {
                "Event": "QueueEntry",
                "Queue": "q",
                "Position": "1",
                "Uniqueid": "11.1",
                "Wait": "38",
            },
            {"Event": "QueueStatusComplete"},
        ]

    log_path = tmp_path / "queue_log"
    log_path.write_text("")
    writer = FactWriter(lambda: None, None)  # type: ignore[arg-type,return-value]

    async def go() -> list[Any]:
        await reconcile(
            list_action,
            tracker,
            writer,
            QueueLogReader(log_path, tmp_path / "s"),
            INTERNAL,
            clock=lambda: now,
        )
        items = []
        while not writer.queue.empty():
            items.append(writer.queue.get_nowait())
        return items

    items = asyncio.run(go())
    started = {f.call_id: f for f in items if isinstance(f, CallStarted)}
    assert started["10.1"].at == now - timedelta(minutes=2)
    assert started["11.1"].at == now - timedelta(seconds=40)
    answers = [f for f in items if isinstance(f, AgentAnswered)]
    assert [(a.call_id, a.agent_interface, a.at) for a in answers] == [
        ("10.1", "PJSIP/1002", now - timedelta(seconds=90))
    ]
    joins = [f for f in items if isinstance(f, QueueJoined)]
    assert [(j.call_id, j.at) for j in joins] == [("11.1", now - timedelta(seconds=38))]
    assert any(isinstance(i, Checkpoint) for i in items)
    vanished = [i for i in items if isinstance(i, CloseVanished)]
    assert vanished and vanished[0].live_call_ids == frozenset({"10.1", "11.1"})
    assert not any(isinstance(f, CallEnded) for f in items)


def test_queue_status_in_snapshot_is_an_overflow_once() -> None:
    """Without ``dialplan`` read there is no VarSet; QUEUESTATUS in channelvars still works."""
    tracker = CallTracker()
    leg = {"Uniqueid": "12.1", "Linkedid": "12.1", "CallerIDNum": "05321234567"}
    leg[chanvar_key("CALL_ID")] = "12.1"
    tracker.feed(ev("QueueCallerJoin", 0, Queue="q", **leg))
    leg[chanvar_key("QUEUESTATUS")] = "TIMEOUT"
    first = tracker.feed(ev("Newexten", 60, **leg))
    again = tracker.feed(ev("Newexten", 61, **leg))
    assert [type(f).__name__ for f in first] == ["QueueExited"] and again == []


def test_queue_log_member_names_map_to_interfaces() -> None:
    """Asterisk 22 logs the member name in queue_log call events; QueueStatus maps it back."""
    from ami_listener.queue_log import facts_from_entries, parse_line
    from ami_listener.reconcile import member_interfaces

    status = [
        {"Event": "QueueMember", "Name": "Nihan Kurt", "Location": "PJSIP/1005"},
        {"Event": "QueueMember", "Name": "Ali Kaya", "Location": "PJSIP/1003"},
        {"Event": "QueueMember", "Name": "Ali Kaya", "Location": "PJSIP/1007"},  # ambiguous
    ]
    names = member_interfaces(status)
    assert names == {"Nihan Kurt": "PJSIP/1005"}
    lines = [
        "1795846108|1.14|cagri-merkezi|NONE|ENTERQUEUE||05336983060|1",
        "1795846108|1.14|cagri-merkezi|Nihan Kurt|CONNECT|0|1.15|0",
        "1795846110|1.14|cagri-merkezi|Ali Kaya|COMPLETEAGENT|0|2|1",
    ]
    entries = [e for e in (parse_line(line) for line in lines) if e is not None]
    answers = [
        f for f in facts_from_entries(entries, INTERNAL, names) if isinstance(f, AgentAnswered)
    ]
    assert [a.agent_interface for a in answers] == ["PJSIP/1005"]


def test_recordings_on_disk_are_found_for_answered_calls_only(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ami_listener.reconcile import recordings_on_disk
    from services.call_records import AgentAnswered, QueueJoined, RecordingStarted

    at = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    (tmp_path / "1700000000.11.wav").write_bytes(b"RIFF")
    facts = [
        QueueJoined(call_id="1700000000.11", at=at, queue="cagri-merkezi"),
        AgentAnswered(call_id="1700000000.11", at=at, agent_interface="PJSIP/1001", hold_seconds=3),
        AgentAnswered(call_id="1700000000.12", at=at, agent_interface="PJSIP/1002", hold_seconds=1),
    ]
    found = recordings_on_disk(facts, tmp_path)  # type: ignore[arg-type]
    assert found == [RecordingStarted(call_id="1700000000.11", at=at, path="1700000000.11.wav")]
    assert recordings_on_disk(facts, None) == []  # type: ignore[arg-type]


def test_linkedid_of_a_finished_call_is_dropped_after_the_linger() -> None:
    """A Linkedid keeps keying events of a call's other legs for ``linked_linger`` hang-ups
    after its inbound leg hung up, then it is dropped (the map no longer grows forever)."""
    from ami_listener.call_tracker import TrackerConfig

    tracker = CallTracker(TrackerConfig(linked_linger=2))
    for n in range(1, 5):  # four calls without CALL_ID: keyed on their Linkedid
        leg = {"Uniqueid": f"20.{n}", "Linkedid": f"20.{n}", "CallerIDNum": "05321234567"}
        assert tracker.feed(ev("QueueCallerJoin", n, Queue="q", Position="1", **leg))
        assert tracker.feed(ev("Hangup", n + 1, **leg))

    def agent_complete(n: int) -> list[Any]:  # an agent leg of call n, Linkedid only
        agent = {"Uniqueid": f"21.{n}", "Linkedid": f"20.{n}", "TalkTime": "9", "HoldTime": "1"}
        return tracker.feed(ev("AgentComplete", 10, Queue="q", **agent))

    unkeyed = tracker.stats.unkeyed
    assert agent_complete(1) == [] and tracker.stats.unkeyed == unkeyed + 1  # dropped
    late = agent_complete(4)  # still lingering
    assert [(type(f).__name__, f.call_id) for f in late] == [("AgentCompleted", "20.4")]
    assert len(tracker._linked_call) == 2
