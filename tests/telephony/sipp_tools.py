"""sipp helpers for the telephony tests: scenario templates in ``sipp/`` filled per call.

Every sipp process gets its own SIP port (``-p``) and media port (``-mp``), a ``-timeout``
so a stuck scenario fails fast, and writes its error trace into the scenario directory.
"""

from __future__ import annotations

import itertools
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "sipp"
_media_ports = itertools.count(20000, 10)


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
