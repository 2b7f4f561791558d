"""sipp helpers for the telephony tests: scenario templates in ``sipp/`` filled per call.

Every sipp process gets its own SIP port (``-p``) and media port (``-mp``), a ``-timeout``
so a stuck scenario fails fast, and writes its error trace into the scenario directory.
"""

from __future__ import annotations

import itertools
import random
import string
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "sipp"
_media_ports = itertools.count(20000, 10)
_pcap_ids = itertools.count(1)


def _scenario(name: str, workdir: Path, **values: str) -> Path:
    text = string.Template((SCENARIOS / f"{name}.xml").read_text(encoding="utf-8"))
    out = workdir / f"{name}-{time.monotonic_ns()}.xml"
    out.write_text(text.substitute(values), encoding="utf-8")
    return out


@dataclass
class Sipp:
    """A running sipp process and what it wrote."""

    proc: subprocess.Popen[str]
    scenario: Path
    command: list[str] = field(default_factory=list)

    def wait(self, timeout: float) -> int:
        """Wait for exit; kill and return -9 when it does not exit within ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return -9

    def output(self) -> str:
        """stdout+stderr and any error trace, for assertion messages."""
        out = ""
        if self.proc.stdout is not None:
            out = self.proc.stdout.read() or ""
        traces = sorted(self.scenario.parent.glob(f"{self.scenario.stem}_*errors.log"))
        for trace in traces:
            out += f"\n--- {trace.name}\n" + trace.read_text(errors="replace")[-3000:]
        return out[-6000:]


def _run(scenario: Path, sip_port: int, timeout_s: int, extra: list[str], target: str) -> Sipp:
    cmd = [
        "sipp",
        target,
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(sip_port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(next(_media_ports)),
        "-m",
        "1",
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-trace_err",
        "-nostdin",
        "-aa",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=scenario.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    return Sipp(proc, scenario, cmd)


def register(
    workdir: Path, pbx: str, extension: str, password: str, port: int, expires: int = 600
) -> None:
    """REGISTER ``extension`` (contact 127.0.0.1:``port``) with digest auth; raise on failure."""
    scenario = _scenario("register", workdir, expires=str(expires))
    sipp = _run(scenario, port, 10, ["-s", extension, "-au", extension, "-ap", password], pbx)
    rc = sipp.wait(15)
    if rc != 0:
        raise AssertionError(f"REGISTER {extension} failed (rc={rc}):\n{sipp.output()}")


def agent(workdir: Path, pbx: str, port: int, ring_ms: int = 500, hold_ms: int = 3000) -> Sipp:
    """Start an agent phone on ``port`` that answers one call and hangs up after ``hold_ms``."""
    scenario = _scenario("agent_uas", workdir, ring_ms=str(ring_ms), hold_ms=str(hold_ms))
    return _run(scenario, port, 120, [], pbx)


_WAIT_BYE = """  <recv request="BYE" timeout="$wait_bye_ms"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"""

_HANG_UP = """  <pause milliseconds="$talk_ms"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Vatandas" <sip:$caller_number@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="5000"/>"""


def call(
    workdir: Path,
    pbx: str,
    number: str,
    trunk_port: int,
    *,
    caller_number: str = "05321234567",
    digit: str = "1",
    dtmf_after_ms: int = 1000,
    wait_bye_ms: int = 60000,
    hang_up_after_ms: int | None = None,
    timeout_s: int = 120,
) -> Sipp:
    """Call ``number`` from the trunk port; DTMF ``digit`` after ``dtmf_after_ms``.

    Without ``hang_up_after_ms`` the caller waits for the PBX's BYE (the agent hung up);
    with it, the caller hangs up that many ms after the DTMF.
    """
    if hang_up_after_ms is None:
        tail = string.Template(_WAIT_BYE).substitute(wait_bye_ms=str(wait_bye_ms))
    else:
        tail = string.Template(_HANG_UP).substitute(
            talk_ms=str(hang_up_after_ms), caller_number=caller_number
        )
    scenario = _scenario(
        "caller",
        workdir,
        caller_number=caller_number,
        digit=digit,
        dtmf_after_ms=str(dtmf_after_ms),
        wait_bye_ms=str(wait_bye_ms),
        caller_hangs_up="no" if hang_up_after_ms is None else "yes",
        talk_ms=str(hang_up_after_ms or 0),
        tail=tail,
    )
    return _run(scenario, trunk_port, timeout_s, ["-s", number], pbx)


# --- call-flow scenarios (tests/telephony/test_call_flows.py) -----------------------------

Step = tuple[int, str]  # (pause in ms before, digits sent as RFC 2833 events, or SPEECH)
SPEECH = "speech"  # a step that plays sipp's G.711 a-law sample instead of digits

_EVENTS = {str(d): d for d in range(10)} | {"*": 10, "#": 11}


def dtmf_pcap(digits: str, path: Path, *, tone_ms: int = 160, gap_ms: int = 240) -> Path:
    """Write a pcap of RFC 2833 events for ``digits`` (payload type 101, as in our SDP).

    sipp 3.6.1's ``play_dtmf`` is not recognised by Asterisk here and replaying the shipped
    one-digit pcaps twice in a row registers one digit (same RTP timestamp). Here every digit
    gets its own event timestamp (random base per file) and increasing sequence numbers.
    """
    if path.exists():
        return path
    rng = random.Random()
    ssrc, seq, base = rng.getrandbits(32), rng.getrandbits(15), rng.getrandbits(30)
    packets: list[tuple[float, bytes]] = []
    clock = 0.0
    for index, digit in enumerate(digits):
        stamp = (base + index * 8 * (tone_ms + gap_ms)) & 0xFFFFFFFF
        steps = max(1, tone_ms // 20)
        for n in range(steps + 3):  # tone updates, then three end packets (RFC 4733 §2.5.1.4)
            end = n >= steps
            duration = 8 * 20 * min(n + 1, steps)
            marker = 0x80 if n == 0 else 0
            rtp = struct.pack("!BBHII", 0x80, marker | 101, seq & 0xFFFF, stamp, ssrc)
            payload = struct.pack("!BBH", _EVENTS[digit], (0x80 if end else 0) | 10, duration)
            packets.append((clock, rtp + payload))
            seq += 1
            clock += 0.02 if not end else 0.0
        clock += gap_ms / 1000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for at, data in packets:
        udp = struct.pack("!HHHH", 4000, 4000, 8 + len(data), 0) + data
        ip_header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), bytes(4)
        )
        frame = bytes(12) + b"\x08\x00" + ip_header + udp
        sec, usec = int(at), int((at - int(at)) * 1_000_000)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def _dtmf_steps(steps: list[Step], workdir: Path) -> str:
    """Pauses, then digits played as RFC 2833 events (one generated pcap per digit string)."""
    out = []
    for pause_ms, digits in steps:
        if digits == SPEECH:
            pcap = Path("/usr/share/sip-tester/g711a.pcap")
        else:
            pcap = dtmf_pcap(digits, workdir / f"dtmf-{_safe(digits)}-{next(_pcap_ids)}.pcap")
        out.append(f'  <pause milliseconds="{pause_ms}"/>')
        out.append(
            "  <nop>\n    <action>\n"
            f'      <exec play_pcap_audio="{pcap}"/>\n'
            "    </action>\n  </nop>"
        )
    return "\n".join(out)


def _safe(digits: str) -> str:
    return digits.replace("*", "star").replace("#", "pound")


_OK_TO_BYE = """  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"""


def _wait_for_bye(wait_ms: int) -> str:
    return (
        '  <label id="wait"/>\n'
        '  <recv request="INVITE" optional="true" next="reinvite"/>\n'
        f'  <recv request="BYE" timeout="{wait_ms}"/>\n'
        f"{_OK_TO_BYE}\n"
        '  <nop next="done"/>'
    )


def _hang_up_after(talk_ms: int, bye: str) -> str:
    return (
        '  <label id="wait"/>\n'
        f'  <recv request="INVITE" timeout="{talk_ms}" ontimeout="hangup" next="reinvite"/>\n'
        '  <label id="hangup"/>\n'
        f"{bye}\n"
        '  <recv response="200" timeout="5000" next="done"/>'
    )


_CITIZEN_BYE = """  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Vatandas" <sip:$caller_number@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To:[$$remote_to]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>"""

_PHONE_BYE = """  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$$local_to];tag=[pid]SIPpTag03[call_number]
      To: [$$remote_from]
      [last_Call-ID:]
      CSeq: 2 BYE
      Max-Forwards: 70
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>"""


def citizen(
    workdir: Path,
    pbx: str,
    number: str,
    trunk_port: int,
    caller_number: str,
    steps: list[Step],
    *,
    hang_up_after_ms: int | None = None,
    wait_bye_ms: int = 90000,
    timeout_s: int = 150,
) -> Sipp:
    """A citizen calls ``number`` through the trunk, sends ``steps`` after the answer, then
    waits for the PBX to hang up or (``hang_up_after_ms``) hangs up that long after the last
    step."""
    if hang_up_after_ms is None:
        ending = _wait_for_bye(wait_bye_ms)
    else:
        bye = string.Template(_CITIZEN_BYE).substitute(caller_number=caller_number)
        ending = _hang_up_after(hang_up_after_ms, bye)
    scenario = _scenario(
        "citizen",
        workdir,
        caller_number=caller_number,
        steps=_dtmf_steps(steps, workdir),
        ending=ending,
    )
    return _run(scenario, trunk_port, timeout_s, ["-s", number], pbx)


def agent_talk(
    workdir: Path,
    pbx: str,
    port: int,
    ring_ms: int = 300,
    hold_ms: int = 2000,
    timeout_s: int = 150,
) -> Sipp:
    """An agent phone on ``port``: answers one call, talks ``hold_ms``, hangs up (re-INVITE
    tolerant; a BYE from the PBX ends it early)."""
    scenario = _scenario("agent_talk", workdir, ring_ms=str(ring_ms), hold_ms=str(hold_ms))
    return _run(scenario, port, timeout_s, [], pbx)


def agent_no_answer(workdir: Path, pbx: str, port: int, timeout_s: int = 150) -> Sipp:
    """An agent phone on ``port`` that rings once and is never answered (waits for CANCEL)."""
    scenario = _scenario("agent_noanswer", workdir)
    return _run(scenario, port, timeout_s, [], pbx)


def operator(
    workdir: Path,
    pbx: str,
    port: int,
    steps: list[Step],
    *,
    ring_ms: int = 300,
    hang_up_after_ms: int | None = None,
    wait_bye_ms: int = 60000,
    timeout_s: int = 150,
) -> Sipp:
    """A switchboard operator's phone: answers, sends ``steps`` (e.g. ``##7000``), then waits
    for the PBX's BYE, or hangs up ``hang_up_after_ms`` after the last step."""
    if hang_up_after_ms is None:
        ending = _wait_for_bye(wait_bye_ms)
    else:
        ending = _hang_up_after(hang_up_after_ms, string.Template(_PHONE_BYE).substitute())
    scenario = _scenario(
        "operator", workdir, ring_ms=str(ring_ms), steps=_dtmf_steps(steps, workdir), ending=ending
    )
    return _run(scenario, port, timeout_s, [], pbx)
