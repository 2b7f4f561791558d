"""A private dovecot IMAP server for tests (Debian package ``dovecot-imapd``; needs root).

``running_dovecot(tmp_path)`` starts ``dovecot -c <own config>`` on 127.0.0.1 with random
free ports, passwd-file authentication and one Maildir user, and stops it afterwards. It
shares nothing with a system dovecot: own ``base_dir``, ``state_dir``, ``instance_name``,
ports and log file, so one may run beside it (Debian's package does not start the system
service here: ``policy-rc.d`` denies it and there is no systemd).

Where things live: the configuration and the log under the test's ``tmp_path`` (read and
written by dovecot's root processes). The Maildir, the passwd file and the runtime sockets
live in a private ``/tmp/acikkapi-dovecot-*`` folder removed at stop, because dovecot
refuses to open mail as uid 0 and the mail process (run as ``nobody``) cannot enter
pytest's root-only (0700) temporary folders.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.net import free_port
from tests.helpers.tls import SelfSignedCertificate

DOVECOT = "/usr/sbin/dovecot"
MAIL_USER = "nobody"


@dataclass
class Dovecot:
    """A running private dovecot: where it listens and how to put mail into it."""

    host: str
    port: int  # IMAP (STARTTLS offered when started with a certificate)
    ssl_port: int | None  # implicit TLS, only with a certificate
    username: str
    password: str
    config: Path
    log: Path
    workdir: Path
    pid: int
    spare: list[tuple[str, str]] = field(default_factory=list)  # Turkish passwords
    spare_ascii: list[tuple[str, str]] = field(default_factory=list)

    def connect(self) -> imaplib.IMAP4:
        """A logged-in plain IMAP client for the test's own use (seeding, inspection)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        credentials = f"\0{self.username}\0{self.password}".encode()
        client.authenticate("PLAIN", lambda _challenge: credentials)  # UTF-8 passwords too
        return client

    def append(
        self, raw: bytes, *, mailbox: str = "INBOX", flags: str = "", when: datetime | None = None
    ) -> int:
        """APPEND ``raw`` and return its UID; ``when`` becomes the INTERNALDATE."""
        client = self.connect()
        try:
            date = imaplib.Time2Internaldate(when) if when is not None else None
            typ, data = client.append(mailbox, f"({flags})" if flags else None, date, raw)
            assert typ == "OK", data
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert found is not None, data
            return int(found.group(1))
        finally:
            client.logout()

    def flags(self, uid: int, mailbox: str = "INBOX") -> set[str]:
        client = self.connect()
        try:
            client.select(mailbox, readonly=True)
            typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
            assert typ == "OK" and data and data[0] is not None, data
            raw = data[0] if isinstance(data[0], bytes) else data[0][0]
            found = re.search(rb"FLAGS \(([^)]*)\)", raw)
            assert found is not None, raw
            return set(found.group(1).decode().split())
        finally:
            client.logout()

    def uids(self, criteria: str = "ALL", mailbox: str = "INBOX") -> list[int]:
        client = self.connect()
        try:
            client.select(mailbox, readonly=True)
            typ, data = client.uid("SEARCH", criteria)
            assert typ == "OK", data
            return [int(u) for u in (data[0] or b"").split()]
        finally:
            client.logout()

    def new_user(self, *, ascii_password: bool = False) -> Dovecot:
        """This server as seen by a fresh user (own, empty Maildir), so tests can share one
        server per module. Users are made at start: dovecot re-reads its passwd-file at
        most once a second, so users added later may not be seen yet."""
        pool = self.spare_ascii if ascii_password else self.spare
        if not pool:
            raise RuntimeError("no spare dovecot users left; start with more (spare_users=)")
        username, password = pool.pop()
        return replace(self, username=username, password=password)

    def stop(self) -> None:
        """Stop this instance (SIGTERM to its own master process) and wait until it is gone."""
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.02)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _config(
    *,
    workdir: Path,
    log: Path,
    port: int,
    ssl_port: int,
    certificate: SelfSignedCertificate | None,
) -> str:
    tls = (
        f"ssl = yes\nssl_cert = <{certificate.cert}\nssl_key = <{certificate.key}\n"
        "ssl_min_protocol = TLSv1.2\n"
        if certificate is not None
        else "ssl = no\n"
    )
    return f"""# Private test instance written by tests/helpers/dovecot.py
protocols = imap
listen = 127.0.0.1
instance_name = acikkapi-test-{port}
base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = {log}
info_log_path = {log}
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{workdir}/mail/%u/Maildir
mail_uid = {MAIL_USER}
mail_gid = {pwd.getpwnam(MAIL_USER).pw_gid}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {workdir}/passwd
}}
userdb {{
  driver = static
  args = home={workdir}/mail/%u
}}
# No growing login penalty after the tests' deliberate failed logins.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port if certificate is not None else 0}
  }}
}}
"""


def start_dovecot(
    tmp_path: Path,
    *,
    certificate: SelfSignedCertificate | None = None,
    username: str = "info",
    password: str | None = None,
    spare_users: int = 40,
) -> Dovecot:
    """Start a private dovecot; skip when not root, fail when the package is missing."""
    if os.geteuid() != 0:
        pytest.skip("the IMAP tests start a private dovecot, which needs root")
    if not Path(DOVECOT).exists():
        pytest.fail(
            "dovecot is not installed: apt-get install -y dovecot-imapd (scripts/test does it)"
        )
    nobody = pwd.getpwnam(MAIL_USER)
    workdir = Path(tempfile.mkdtemp(prefix="acikkapi-dovecot-"))
    workdir.chmod(0o755)
    (workdir / "mail").mkdir()
    os.chown(workdir / "mail", nobody.pw_uid, nobody.pw_gid)
    (workdir / "mail").chmod(0o700)
    password = password or "gizli-şifre-" + secrets.token_hex(4)  # Turkish letters on purpose
    spare = [(f"kutu{i}", f"gizli-şifre-{secrets.token_hex(4)}") for i in range(spare_users)]
    spare_ascii = [(f"ascii{i}", f"gizli-{secrets.token_hex(4)}") for i in range(spare_users)]
    passwd = workdir / "passwd"
    passwd.write_text(
        "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in [(username, password), *spare, *spare_ascii]),
        encoding="utf-8",
    )
    passwd.chmod(0o644)  # read by dovecot's auth process (user dovecot)
    tmp_path.mkdir(parents=True, exist_ok=True)
    config, log = tmp_path / "dovecot.conf", tmp_path / "dovecot.log"
    port = free_port()
    ssl_port = free_port()
    while ssl_port == port:
        ssl_port = free_port()
    config.write_text(
        _config(workdir=workdir, log=log, port=port, ssl_port=ssl_port, certificate=certificate),
        encoding="utf-8",
    )
    # The master daemonises and would hold a pipe open: its start-up output goes to a file.
    output = tmp_path / "dovecot-start.txt"
    with output.open("wb") as sink:
        started = subprocess.run(
            [DOVECOT, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=30,
            check=False,
        )
    if started.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"dovecot did not start: {output.read_text(errors='replace')}")
    # The parent returns once the master has forked; the master writes its pid and starts
    # listening a moment later.
    pid_file = workdir / "run" / "master.pid"
    deadline = time.monotonic() + 15
    while not (pid_file.exists() and pid_file.read_text().strip()):
        if time.monotonic() > deadline:
            subprocess.run([DOVECOT, "-c", str(config), "stop"], check=False, timeout=30)
            shutil.rmtree(workdir, ignore_errors=True)
            pytest.fail(f"dovecot wrote no master.pid: {log.read_text(errors='replace')}")
        time.sleep(0.02)
    server = Dovecot(
        host="127.0.0.1",
        port=port,
        ssl_port=ssl_port if certificate is not None else None,
        username=username,
        password=password,
        config=config,
        log=log,
        workdir=workdir,
        pid=int(pid_file.read_text().strip()),
        spare=spare,
        spare_ascii=spare_ascii,
    )
    while True:
        try:
            with socket.create_connection((server.host, port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"dovecot is not listening on {port}: {log.read_text()}")
            time.sleep(0.02)
    return server


@contextmanager
def running_dovecot(
    tmp_path: Path,
    *,
    certificate: SelfSignedCertificate | None = None,
    password: str | None = None,
) -> Iterator[Dovecot]:
    server = start_dovecot(tmp_path, certificate=certificate, password=password)
    try:
        yield server
    finally:
        server.stop()
