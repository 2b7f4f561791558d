"""Session fixtures for the telephony suite: a real Asterisk started with our config.

The session fixture installs (if needed), renders on a fresh instance folder (tmp) with
the demo phones, starts Asterisk and stops it at the end. Test sessions on the same
machine are serialised with a lock beside the Asterisk root. An Asterisk that was already
running (e.g. from ``scripts/run``) is stopped for the session and restarted afterwards
with its previous configuration.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
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


# --- the whole call path: Asterisk + FastAGI server + AMI listener + database + Redis ----------

REDIS_TEST_DB = 13  # a spare Redis database; pub/sub channels are global, filter by call id


class Service:
    """One ``acikkapi …`` daemon run as a subprocess (as in production), log in a file.

    ``stop``/``kill`` act on this process only (by pid); ``start`` again after either.
    """

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, env: dict[str, str] | None = None) -> None:
        assert not self.running, f"{self.name} already running"
        if env is not None:
            self.env = env
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        handle = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CLI, *self.args],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parents[2],
            )
        finally:
            handle.close()

    def log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, text: str, timeout: float = 30) -> None:
        """Wait until ``text`` appears in the log written since the last start."""
        deadline = time.monotonic() + timeout
        while text not in self.log_since_start():
            if not self.running:
                pytest.fail(f"{self.name} exited:\n{self.log_since_start()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: {text!r} not logged:\n{self.log_since_start()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL (no clean-up: what a crash looks like)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


_CLI = "import sys; from acikkapi.cli import main; sys.exit(main())"


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 0.5).close()
    except OSError:
        return False
    return True


@dataclass
class CallStack:
    """A running Asterisk plus our FastAGI server and AMI listener on a seeded database."""

    pbx: PbxHandle
    env: dict[str, str]
    settings: Settings
    engine: Engine
    agi: Service
    listener: Service

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def start_agi(self, env: dict[str, str] | None = None) -> None:
        self.agi.start(env)
        deadline = time.monotonic() + 30
        while not port_open(self.settings.agi_host, self.settings.agi_port):
            if not self.agi.running or time.monotonic() > deadline:
                pytest.fail(f"FastAGI server did not start:\n{self.agi.log_since_start()}")
            time.sleep(0.1)

    def start_listener(self) -> None:
        self.listener.start()
        self.listener.wait_log("reconciled after login", timeout=30)


def _seed_database(url: str, now: datetime) -> None:
    from acikkapi.migrate import upgrade
    from services.catalogue_loader import load_catalogue, load_demo, load_holidays

    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            load_holidays(session)
            load_catalogue(session, now)
            load_demo(session, now)
            session.commit()
    finally:
        engine.dispose()


def _skip_old_queue_log(settings: Settings, layout: Layout) -> None:
    """The Asterisk root (and its queue_log) outlives test sessions: start the listener's
    queue_log offset at the current end, as for a listener that has been running all along,
    so that reconciliation brings only this session's calls into this session's database."""
    path = layout.log_dir / "queue_log"
    if not path.exists():
        return
    stat = path.stat()
    state = settings.instance_dir / "ami_listener" / "queue_log.offset.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"inode": stat.st_ino, "offset": stat.st_size}), "utf-8")


@pytest.fixture(scope="session")
def call_stack(pbx: PbxHandle) -> Iterator[CallStack]:
    """FastAGI server and AMI listener as subprocesses on a migrated, seeded SQLite file in the
    test instance, Redis database ``REDIS_TEST_DB``; both are stopped even when tests fail."""
    import redis

    instance = Path(pbx.environ["ACIKKAPI_INSTANCE_DIR"])
    db_url = f"sqlite:///{instance / 'calls.db'}"
    redis_url = f"redis://127.0.0.1:6379/{REDIS_TEST_DB}"
    try:
        redis.Redis.from_url(redis_url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis on 127.0.0.1:6379 is needed (scripts/lib.sh ak_redis_up): {exc}")
    if port_open(pbx.settings.agi_host, pbx.settings.agi_port):
        pytest.fail(f"something already listens on the FastAGI port {pbx.settings.agi_port}")
    _seed_database(db_url, datetime.now(UTC))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACIKKAPI_", "DATABASE_"))}
    env.update(pbx.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "ACIKKAPI_ASTERISK_ROOT": str(pbx.layout.root),
            "PYTHONUNBUFFERED": "1",
        }
    )
    settings = load_settings(env)
    _skip_old_queue_log(settings, pbx.layout)
    logdir = pbx.workdir.parent / "services"
    logdir.mkdir(exist_ok=True)
    agi = Service("agi", ["agi", "serve"], env, logdir)
    listener = Service("ami-listener", ["ami-listener", "run", "-v"], env, logdir)
    engine = make_engine(db_url)
    stack = CallStack(pbx, env, settings, engine, agi, listener)
    try:
        stack.start_agi()
        stack.start_listener()
        yield stack
    finally:
        listener.stop()
        agi.stop()
        engine.dispose()
