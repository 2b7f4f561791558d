"""Sustained originate rate through the real Asterisk, with no lost outcome (not a test).

Issue 6 item 7 (R5.6, decision 0021): the dialer's side of the campaign benchmark (the
scheduling overhead of 10,000 targets is bench/outbound_scheduling.py).

What runs (needs root, sipp and the Asterisk of ``acikkapi asterisk install``; takes the same
lock as the telephony tests, so it waits for them):

* Asterisk rendered from this clone into a temporary instance folder (trunk = sipp on
  127.0.0.1:5090, qualify off), as tests/telephony/conftest.py does. The rendered ``etc``
  in the Asterisk root is saved before and put back afterwards; Asterisk is left running or
  stopped as it was found.
* A fresh SQLite database (migrated) and ``acikkapi ami-listener run`` as a subprocess: it
  records every outcome (ami_listener/outbound_events.py).
* One sipp UAS as the trunk: answers each call after ``--ring-ms`` and hangs up
  ``--talk-ms`` later ("answered with immediate hangup").
* A running "resolution information" campaign of ``--calls`` targets (always-open window,
  ``--cps`` calls per second, ``--max-concurrent``), dialled by
  :func:`outbound.jobs.dial_once` in this process every ``--tick`` seconds (what the RQ
  job does every second), until the campaign is finished.

Printed: the sustained originate rate — the gaps between consecutive attempt channels'
``Newchannel`` AMI timestamps (Asterisk's clock), median and p99 (nearest rank), and
calls / (last − first); outcomes recorded vs attempts originated ("lost outcomes: N");
the most attempt channels alive at once (AMI event order) and the most in-flight attempts
the database showed (polled). Figures only; no assertions on time.

Usage:
    .venv/bin/python bench/outbound_originate.py [--calls 300] [--cps 5] [--max-concurrent 20]
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Service, log, pbx_environ, percentile

TRUNK_PORT = 5090
MEDIA_PORT = 23500
REDIS_URL = "redis://127.0.0.1:6379/12"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

UAS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="outbound bench trunk">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="local_to"/>
    </action>
  </recv>
  <Reference variables="remote_from"/>
  <Reference variables="local_to"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag41[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="RING_MS"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag41[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bench 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="TALK_MS"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$local_to];tag=[pid]SIPpTag41[call_number]
      To: [$remote_from]
      [last_Call-ID:]
      CSeq: 2 BYE
      Max-Forwards: 70
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="10000"/>
</scenario>
"""


class Observer:
    """Newchannel/Hangup of attempt channels from an AMI connection (user ``listener``)."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        from tests.telephony.ami_tools import Ami

        self.ami = Ami(host, port, "listener", secret)

    def attempt_events(self) -> list[tuple[str, str, float]]:
        from tests.telephony.ami_tools import first

        out = []
        for event in list(self.ami.events):
            name, uid = first(event, "Event"), first(event, "Uniqueid")
            if name in ("Newchannel", "Hangup") and _UUID.match(uid):
                out.append((name, uid, float(first(event, "Timestamp") or 0)))
        return out

    def close(self) -> None:
        self.ami.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--cps", type=float, default=5.0, help="campaign pacing, calls/s")
    parser.add_argument("--max-concurrent", type=int, default=20)
    parser.add_argument("--ring-ms", type=int, default=100)
    parser.add_argument("--talk-ms", type=int, default=200)
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between dial ticks")
    parser.add_argument("--settle", type=float, default=60.0, help="max wait for outcomes")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (Asterisk in its chroot runs as user asterisk)")
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed")

    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from acikkapi.db import make_engine
    from acikkapi.migrate import upgrade
    from acikkapi.settings import load_settings
    from models import (
        AttemptStatus,
        CallAttempt,
        Campaign,
        CampaignKind,
        CampaignStatus,
        CampaignTargetSource,
    )
    from outbound.ami_client import DialerSession
    from outbound.jobs import dial_once
    from services.campaign_targets import TargetRow, add_targets
    from services.campaigns import CampaignSettings, create_campaign, start_campaign
    from telephony import asterisk as pbx_ctl
    from telephony.provision import render
    from telephony.secrets import load_secrets

    tmp = Path(tempfile.mkdtemp(prefix="acikkapi-outbound-bench-"))
    instance = tmp / "instance"
    instance.mkdir()
    db_url = f"sqlite:///{instance / 'bench.db'}"
    environ = pbx_environ(instance, TRUNK_PORT)
    settings = load_settings(environ)
    layout = pbx_ctl.detect_layout(settings)
    if layout.mode == "chroot" and not pbx_ctl.root_is_complete(layout.root):
        raise SystemExit(f"no Asterisk root at {layout.root}: run `acikkapi asterisk install`")
    lock = os.open(str(layout.root) + ".tests.lock", os.O_RDWR | os.O_CREAT, 0o600)
    log("waiting for the Asterisk lock (telephony tests)…")
    fcntl.flock(lock, fcntl.LOCK_EX)
    was_running = pbx_ctl.stop(layout)
    backup = tmp / "etc-backup"
    if layout.etc_dir.exists():
        subprocess.run(["cp", "-a", str(layout.etc_dir), str(backup)], check=True)
    listener: Service | None = None
    observer: Observer | None = None
    uas: subprocess.Popen[bytes] | None = None
    engine = None
    try:
        upgrade(db_url)
        render(settings, environ=environ)
        pbx_ctl.start(layout)
        secrets = load_secrets(settings, environ)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ACIKKAPI_", "DATABASE_"))}
        env.update(environ)
        env.update(
            {
                "DATABASE_URL": db_url,
                "REDIS_URL": REDIS_URL,
                "ACIKKAPI_ASTERISK_ROOT": str(layout.root),
                "PYTHONUNBUFFERED": "1",
            }
        )
        qlog = layout.log_dir / "queue_log"
        if qlog.exists():  # the listener starts at the end of the shared queue_log
            state = instance / "ami_listener" / "queue_log.offset.json"
            state.parent.mkdir(parents=True, exist_ok=True)
            st = qlog.stat()
            state.write_text(json.dumps({"inode": st.st_ino, "offset": st.st_size}), "utf-8")
        listener = Service("listener", ["ami-listener", "run"], env, tmp)
        listener.start()
        listener.wait_log("reconciled after login")
        observer = Observer(settings.ami_host, settings.ami_port, secrets.ami_password("listener"))
        scenario = tmp / "uas.xml"
        scenario.write_text(
            UAS.replace("RING_MS", str(args.ring_ms)).replace("TALK_MS", str(args.talk_ms))
        )
        uas = subprocess.Popen(
            [
                *("sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(TRUNK_PORT)),
                *("-mi", "127.0.0.1", "-mp", str(MEDIA_PORT), "-m", str(args.calls)),
                *("-timeout", f"{int(args.calls / args.cps) + 300}s", "-nostdin", "-trace_err"),
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

        engine = make_engine(db_url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        now = datetime.now(UTC)
        with sessions() as session:
            campaign = create_campaign(
                session,
                actor=None,
                now=now,
                settings=CampaignSettings(
                    name="bench outbound originate",
                    kind=CampaignKind.RESOLUTION_INFO,
                    window_days="1234567",
                    window_start=dtime(0),
                    window_end=dtime(23, 59, 59),
                    skip_holidays=False,
                    max_attempts=1,
                    max_concurrent=args.max_concurrent,
                    calls_per_second=args.cps,
                ),
                target_source=CampaignTargetSource.CSV,
                target_criteria={"bench": "outbound_originate"},
            )
            rows = [TargetRow(phone=f"+90532{8_000_000 + i:07d}") for i in range(args.calls)]
            add_targets(session, now=now, campaign_id=campaign.id, rows=rows)
            start_campaign(session, actor=None, now=now, campaign_id=campaign.id)
            session.commit()
            campaign_id = campaign.id
        dialer_secret = secrets.ami_password("dialer")

        def connect() -> DialerSession:
            return DialerSession(settings.ami_host, settings.ami_port, "dialer", dialer_secret)

        peak_db = 0
        stop_poll = threading.Event()

        def poll_in_flight() -> None:
            nonlocal peak_db
            with sessions() as s:
                while not stop_poll.is_set():
                    n = s.scalar(
                        select(func.count())
                        .select_from(CallAttempt)
                        .where(
                            CallAttempt.campaign_id == campaign_id,
                            CallAttempt.status.in_(
                                (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)
                            ),
                        )
                    )
                    s.rollback()
                    peak_db = max(peak_db, int(n or 0))
                    time.sleep(0.05)

        poller = threading.Thread(target=poll_in_flight, daemon=True)
        poller.start()
        log(f"dialling {args.calls} calls at {args.cps}/s (max {args.max_concurrent} at once)")
        started = time.monotonic()
        originated = refused = unknown = 0
        while True:
            tick = time.monotonic()
            report = dial_once(sessions, connect)
            originated += report.originated
            refused += report.refused
            unknown += report.unknown
            with sessions() as s:
                status = s.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            if status == CampaignStatus.FINISHED:
                break
            if time.monotonic() - started > args.calls / args.cps + args.settle:
                log("giving up: the campaign did not finish")
                break
            time.sleep(max(0.0, args.tick - (time.monotonic() - tick)))
        deadline = time.monotonic() + args.settle
        with sessions() as s:
            while time.monotonic() < deadline:
                left = s.scalar(
                    select(func.count())
                    .select_from(CallAttempt)
                    .where(
                        CallAttempt.campaign_id == campaign_id,
                        CallAttempt.status.in_((AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)),
                    )
                )
                s.rollback()
                if not left:
                    break
                time.sleep(0.5)
            outcomes = Counter(
                str(status)
                for (status,) in s.execute(
                    select(CallAttempt.status).where(CallAttempt.campaign_id == campaign_id)
                )
            )
        stop_poll.set()
        poller.join(2)
        time.sleep(1.0)  # the last Hangup events
        events = observer.attempt_events()
        starts = sorted(ts for name, _uid, ts in events if name == "Newchannel")
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        alive: set[str] = set()
        peak_ami = 0
        for name, uid, _ts in events:
            if name == "Newchannel":
                alive.add(uid)
                peak_ami = max(peak_ami, len(alive))
            else:
                alive.discard(uid)
        terminal = sum(n for k, n in outcomes.items() if k not in ("claimed", "originated"))
        print()
        print(
            f"calls placed (Originate accepted): {originated}  refused: {refused}  "
            f"unanswered actions: {unknown}"
        )
        print(f"attempt channels seen on AMI:      {len(starts)}")
        if gaps:
            span = starts[-1] - starts[0]
            print(
                f"inter-originate gap: median {statistics.median(gaps) * 1000:.0f} ms, "
                f"p99 {percentile(gaps, 99) * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms; "
                f"sustained rate {(len(starts) - 1) / span:.2f} calls/s (target {args.cps})"
            )
        print(f"outcomes: {dict(outcomes)}")
        dialled = {uid for name, uid, _ts in events if name == "Newchannel"}
        with sessions() as s:
            final = {
                attempt_id
                for (attempt_id,) in s.execute(
                    select(CallAttempt.id).where(
                        CallAttempt.campaign_id == campaign_id,
                        CallAttempt.status.not_in(
                            (AttemptStatus.CLAIMED, AttemptStatus.ORIGINATED)
                        ),
                    )
                )
            }
        print(f"attempts with a recorded outcome: {terminal}")
        print(f"lost outcomes: {len(dialled - final)} (channels seen on AMI without an outcome)")
        print(
            f"max simultaneous in flight: {peak_ami} (AMI event order), {peak_db} (database "
            f"poll); limit {args.max_concurrent}"
        )
    finally:
        if uas is not None and uas.poll() is None:
            uas.kill()
            uas.wait(5)
        if observer is not None:
            observer.close()
        if listener is not None:
            listener.stop()
        if engine is not None:
            engine.dispose()
        pbx_ctl.stop(layout)
        if backup.exists():
            shutil.rmtree(layout.etc_dir)
            subprocess.run(["cp", "-a", str(backup), str(layout.etc_dir)], check=True)
        if was_running:
            pbx_ctl.start(layout)
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        log(f"logs and database in {tmp}")


if __name__ == "__main__":
    main()
