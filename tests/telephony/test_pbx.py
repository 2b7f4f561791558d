"""Smoke tests against a real Asterisk with sipp phones (issue 3, items 1–3 and 6)."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from telephony import channel_vars as cv
from tests.telephony import sipp_tools
from tests.telephony.ami_tools import chan_vars, first
from tests.telephony.conftest import AGENT_PORTS, TRUNK_PORT, PbxHandle

pytestmark = pytest.mark.telephony


def _agi_port_closed(pbx: PbxHandle) -> bool:
    try:
        socket.create_connection((pbx.settings.agi_host, pbx.settings.agi_port), 1).close()
    except OSError:
        return True
    return False


def _register(pbx: PbxHandle, ext: str, expires: int = 600) -> None:
    sipp_tools.register(
        pbx.workdir, pbx.sip_target, ext, pbx.secrets.sip_password(ext), AGENT_PORTS[ext], expires
    )
    if expires:
        pbx.registered.add(ext)
    else:
        pbx.registered.discard(ext)


def _unregister_all(pbx: PbxHandle) -> None:
    for ext in sorted(pbx.registered):
        _register(pbx, ext, 0)


def test_boots_with_our_endpoints(pbx: PbxHandle) -> None:
    endpoints = pbx.cli("pjsip show endpoints")
    for ext in ("1001", "1006", "1101", "1102", "1200", "201", "trunk"):
        assert re.search(rf"Endpoint:\s+{ext}\b", endpoints), ext
    queues = pbx.cli("queue show")
    assert "cagri-merkezi has" in queues and "cagri-merkezi-en has" in queues


def test_listeners_are_loopback_only(pbx: PbxHandle) -> None:
    out = subprocess.run(["ss", "-lntp"], capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if '"asterisk"' in line]
    assert lines, out
    for line in lines:
        local = line.split()[3]
        assert local.startswith("127.0.0.1:"), line


def test_dialplan_loads(pbx: PbxHandle) -> None:
    out = pbx.cli(f"dialplan show {pbx.settings.call_centre_number}@acikkapi-trunk")
    assert "Goto(acikkapi-ivr,s,1)" in out
    ivr = pbx.cli("dialplan show s@acikkapi-ivr")
    assert f"Set(__{cv.CALL_ID}=${{UNIQUEID}})" in ivr
    assert "/caller_lookup," in ivr
    centre = pbx.cli("dialplan show s@acikkapi-callcentre")
    assert "MixMonitor(" in centre and "Queue(cagri-merkezi," in centre
    for ctx in ("acikkapi-switchboard", "acikkapi-nobody", "acikkapi-outbound"):
        assert "There is no existence" not in pbx.cli(f"dialplan show {ctx}")
    assert "7000" in pbx.cli("dialplan show 7000@acikkapi-internal")


def test_ami_users_least_privilege(pbx: PbxHandle) -> None:
    for user in ("listener", "console", "dialer"):
        ami = pbx.ami(user, events="off")
        try:
            assert first(ami.login, "Response") == "Success", (user, ami.login)
            assert first(ami.action("Ping"), "Response") == "Success"
            originate = ami.action(
                "Originate",
                Channel="Local/0000@acikkapi-outbound-dial",
                Context="acikkapi-outbound",
                Exten="nonexistent",
                Priority="1",
                Async="true",
            )
            denied = "Permission denied" in first(originate, "Message")
            assert denied == (user != "dialer"), (user, originate)
            # Application= needs `system`: refused even for the dialer.
            app = ami.action(
                "Originate",
                Channel="Local/0000@acikkapi-outbound-dial",
                Application="System",
                Data="id",
                Async="true",
            )
            assert first(app, "Response") == "Error", (user, app)
        finally:
            ami.close()
    listener = pbx.ami("listener", events="off")
    try:
        assert first(listener.action("CoreShowChannels"), "Response") == "Success"
        assert first(listener.action("QueueStatus"), "Response") == "Success"
        assert "Permission denied" in first(
            listener.action("QueuePause", Interface="PJSIP/1001", Paused="true"), "Message"
        )
    finally:
        listener.close()
    from tests.telephony.ami_tools import Ami

    wrong = Ami(pbx.settings.ami_host, pbx.settings.ami_port, "listener", "wrong", "off")
    try:
        assert first(wrong.login, "Response") == "Error"
    finally:
        wrong.close()


def test_call_reaches_agent_and_is_recorded(pbx: PbxHandle) -> None:
    """(a)+(g): 444 80 07 → notice → language 1 → (AGI down) → queue → agent answers."""
    agi_down = _agi_port_closed(pbx)
    _register(pbx, "1001")
    ami = pbx.ami("listener")
    agent = sipp_tools.agent(pbx.workdir, pbx.sip_target, AGENT_PORTS["1001"], hold_ms=3000)
    try:
        time.sleep(0.5)
        dtmf_after = pbx.prompt_ms("tr", "kvkk-notice") + 1300
        caller = sipp_tools.call(
            pbx.workdir,
            pbx.sip_target,
            pbx.settings.call_centre_number,
            TRUNK_PORT,
            digit="1",
            dtmf_after_ms=dtmf_after,
        )
        connect = ami.wait_event(lambda e: first(e, "Event") == "AgentConnect", timeout=90)
        assert caller.wait(60) == 0, caller.output()
        assert agent.wait(30) == 0, agent.output()
        joined = ami.wait_event(lambda e: first(e, "Event") == "QueueCallerJoin", timeout=1)
    finally:
        ami.close()
        _unregister_all(pbx)
    assert first(joined, "Queue") == "cagri-merkezi"
    assert first(connect, "Queue") == "cagri-merkezi"
    assert first(connect, "Interface") == "PJSIP/1001"
    variables = chan_vars(connect)
    call_id = first(connect, "Uniqueid")
    assert variables[cv.CALL_ID] == call_id
    assert variables[cv.DIALLED_NUMBER] == pbx.settings.call_centre_number
    assert variables[cv.CALLER_LANGUAGE] == "tr"
    assert variables[cv.RECORDING_PATH] == f"{call_id}.wav"
    assert first(connect, "CallerIDNum") == "05321234567"
    assert chan_vars(connect, "DestChanVariable")[cv.CALL_ID] == call_id
    recording = pbx.layout.monitor_dir / f"{call_id}.wav"
    deadline = time.monotonic() + 10
    while not (recording.exists() and recording.stat().st_size > 44):
        assert time.monotonic() < deadline, f"no recording {recording}"
        time.sleep(0.2)
    if agi_down:
        log = (pbx.layout.log_dir / "messages.log").read_text(errors="replace")
        assert f"caller_lookup FAILURE for {call_id}" in log
    queue_log = (pbx.layout.log_dir / "queue_log").read_text()
    assert f"|{call_id}|cagri-merkezi|" in queue_log and "CONNECT" in queue_log


def test_english_caller_reaches_english_agent(pbx: PbxHandle) -> None:
    """(h): digit 2 → cagri-merkezi-en; only an English-speaking agent is offered the call."""
    _register(pbx, "1002")  # Turkish only
    _register(pbx, "1003")  # speaks English
    ami = pbx.ami("listener")
    agent_tr = sipp_tools.agent(pbx.workdir, pbx.sip_target, AGENT_PORTS["1002"], hold_ms=2000)
    agent_en = sipp_tools.agent(pbx.workdir, pbx.sip_target, AGENT_PORTS["1003"], hold_ms=2000)
    try:
        time.sleep(0.5)
        dtmf_after = pbx.prompt_ms("tr", "kvkk-notice") + 1300
        caller = sipp_tools.call(
            pbx.workdir,
            pbx.sip_target,
            pbx.settings.call_centre_number,
            TRUNK_PORT,
            digit="2",
            dtmf_after_ms=dtmf_after,
            caller_number="05329876543",
        )
        connect = ami.wait_event(lambda e: first(e, "Event") == "AgentConnect", timeout=90)
        assert caller.wait(60) == 0, caller.output()
        assert agent_en.wait(30) == 0, agent_en.output()
    finally:
        ami.close()
        agent_tr.proc.kill()
        agent_tr.wait(5)
        _unregister_all(pbx)
    assert first(connect, "Queue") == "cagri-merkezi-en"
    assert first(connect, "Interface") == "PJSIP/1003"
    assert chan_vars(connect)[cv.CALLER_LANGUAGE] == "en"


def test_no_agent_offers_callback_then_message(pbx: PbxHandle) -> None:
    """Empty queue → JOINEMPTY → callback offer; AGI down → voice message recorded."""
    ami = pbx.ami("listener")
    try:
        notice = pbx.prompt_ms("tr", "kvkk-notice")
        welcome = pbx.prompt_ms("tr", "welcome")
        # digit 1 for Turkish; the callback menu is reached after the welcome prompt.
        caller = sipp_tools.call(
            pbx.workdir,
            pbx.sip_target,
            pbx.settings.call_centre_number,
            TRUNK_PORT,
            digit="1",
            dtmf_after_ms=notice + 1300,
            hang_up_after_ms=welcome + 12000,
            caller_number="05320000001",
        )
        assert caller.wait(90) == 0, caller.output()
        hangup = ami.wait_event(
            lambda e: first(e, "Event") == "Hangup" and first(e, "CallerIDNum") == "05320000001",
            timeout=10,
        )
    finally:
        ami.close()
    call_id = chan_vars(hangup)[cv.CALL_ID]
    log = (pbx.layout.log_dir / "messages.log").read_text(errors="replace")
    assert f"No agent for {call_id} (queue: JOINEMPTY)" in log
