"""Session fixtures for the telephony suite: a real Asterisk started with our config.

The session fixture installs (if needed), renders on a fresh instance folder (tmp) with
the demo phones, starts Asterisk and stops it at the end. Test sessions on the same
machine are serialised with a lock beside the Asterisk root. An Asterisk that was already
running (e.g. from ``scripts/run``) is stopped for the session and restarted afterwards
with its previous configuration.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acikkapi.settings import Settings, load_settings
from telephony import asterisk as pbx_ctl
from telephony.asterisk import Layout
from telephony.provision import install, render
from telephony.secrets import AsteriskSecrets, load_secrets
from tests.telephony.ami_tools import Ami

TRUNK_PORT = 5090
AGENT_PORTS = {
    "1001": 5101,
    "1002": 5102,
    "1003": 5103,
    "1004": 5104,
    "1005": 5105,
    "1006": 5106,
    "1101": 5111,
    "1102": 5112,
    "1200": 5120,
}


@dataclass
class PbxHandle:
    """A running Asterisk for tests: settings, layout, secrets and helpers."""

    settings: Settings
    environ: dict[str, str]
    layout: Layout
    secrets: AsteriskSecrets
    workdir: Path
    registered: set[str] = field(default_factory=set)

    @property
    def sip_target(self) -> str:
        return f"{self.settings.sip_host}:{self.settings.sip_port}"

    def cli(self, command: str) -> str:
        return pbx_ctl.cli(self.layout, command)

    def ami(self, user: str, events: str = "on") -> Ami:
        return Ami(
            self.settings.ami_host,
            self.settings.ami_port,
            user,
            self.secrets.ami_password(user),
            events,
        )

    def prompt_ms(self, lang: str, name: str) -> int:
        """Duration of prompt ``acikkapi/<name>`` in ``lang`` in milliseconds."""
        from telephony.prompts import resolve_in_root

        path = resolve_in_root(self.layout.root, self.layout.sounds_dir / lang)
        with wave.open(str(path / "acikkapi" / f"{name}.wav")) as wav:
            return int(wav.getnframes() * 1000 / wav.getframerate())


def _lock(path: Path, timeout: float = 900) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                pytest.fail(f"another telephony test session holds {path}")
            time.sleep(1)


@pytest.fixture(scope="session")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PbxHandle]:
    """A started Asterisk configured from a fresh instance folder (demo phones)."""
    if os.geteuid() != 0:
        pytest.skip("telephony tests need root (chroot, Asterisk as user asterisk)")
    instance = tmp_path_factory.mktemp("pbx-instance")
    environ = {
        "ACIKKAPI_INSTANCE_DIR": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'no-database.db'}",  # demo phones
        "ACIKKAPI_SIP_QUALIFY_FREQUENCY": "0",  # sipp does not answer OPTIONS
        "ACIKKAPI_SIP_TRUNK_MATCH": f"127.0.0.1:{TRUNK_PORT}",
        "ACIKKAPI_SIP_TRUNK_CONTACT": f"sip:127.0.0.1:{TRUNK_PORT}",
        "ACIKKAPI_QUEUE_WRAPUP": "1",
        "ACIKKAPI_QUEUE_WAIT": "40",
        "ACIKKAPI_QUEUE_WAIT_EN": "20",
    }
    for key in ("ACIKKAPI_ASTERISK_ROOT", "ACIKKAPI_AGI_PORT", "ACIKKAPI_AGI_HOST"):
        if key in os.environ:
            environ[key] = os.environ[key]
    settings = load_settings(environ)
    layout = pbx_ctl.detect_layout(settings)
    lock_fd = _lock(Path(str(layout.root) + ".tests.lock"))
    backup = Path(tempfile.mkdtemp(prefix="acikkapi-etc-backup-"))
    was_running = False
    try:
        install(settings, log=False)
        was_running = pbx_ctl.stop(layout)
        if layout.mode == "chroot" and layout.etc_dir.exists():
            # cp -a keeps owner and group (root:asterisk 0640): Asterisk must read them.
            subprocess.run(["cp", "-a", str(layout.etc_dir), str(backup / "etc")], check=True)
        render(settings, environ=environ)
        pbx_ctl.start(layout)
        pbx_ctl.cli(layout, "database deltree registrar")
        workdir = tmp_path_factory.mktemp("sipp")
        yield PbxHandle(settings, environ, layout, load_secrets(settings, environ), workdir)
    finally:
        pbx_ctl.stop(layout)
        if (backup / "etc").exists():
            shutil.rmtree(layout.etc_dir)
            subprocess.run(["cp", "-a", str(backup / "etc"), str(layout.etc_dir)], check=True)
        shutil.rmtree(backup, ignore_errors=True)
        if was_running:
            pbx_ctl.start(layout)
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)
