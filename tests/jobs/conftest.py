"""Real Redis, real RQ workers, real databases for the worker tests (issue 5).

Each test gets its own ``redis-server`` (append-only file on, random port) that it may kill
and restart, and its own instance folder with the file SMS gateway. ``acikkapi worker run``
and ``acikkapi worker schedule`` run as subprocesses exactly as ``scripts/run`` starts them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis, RedisError
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.migrate import upgrade
from tests.conftest import DEFAULT_PG_URL, _seed
from tests.helpers.net import free_port

ACIKKAPI = str(Path(sys.executable).with_name("acikkapi"))


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, what: str | Callable[[], str]
) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` (a bound, not a timing assertion).

    ``what`` may be a callable: it is then evaluated at the time-out, so the failure shows
    the logs and states as they were when the wait gave up, not when it began."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    described = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {described}")


@dataclass
class RedisServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (scripts/test installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self.answers, timeout=20, what="redis-server to answer")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def queues(self) -> str:
        """The RQ queue lengths and registries, for a failure message."""
        try:
            with Redis.from_url(self.url, socket_timeout=5, decode_responses=True) as client:
                kinds = {str(k): str(client.type(k)) for k in client.keys("rq:*")}
                found = {
                    k: client.llen(k) if kind == "list" else client.zcard(k)
                    for k, kind in sorted(kinds.items())
                    if kind in ("list", "zset")
                }
        except RedisError as exc:
            return f"--- redis: {exc} ---"
        return f"--- redis: {found} ---"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Process:
    """An ``acikkapi …`` subprocess in its own process group (so SIGKILL reaches the
    RQ work horse too)."""

    name: str
    args: list[str]
    env: dict[str, str]
    logdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = (self.logdir / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(
            [ACIKKAPI, *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def descendants(self) -> list[int]:
        """Child processes, recursively (RQ's work horse runs in its own session)."""
        if self.proc is None:
            return []
        parents: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, todo = [], [self.proc.pid]
        while todo:
            for child in parents.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def kill_tree(self) -> None:
        """SIGKILL the process and every descendant at once: nothing gets to clean up."""
        for pid in [*self.descendants(), *([self.proc.pid] if self.proc else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=20)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def state(self) -> str:
        """How the process is doing, for a failure message: exit code, or the kernel's
        run state and where it waits."""
        if self.proc is None:
            return "not started"
        if self.proc.poll() is not None:
            return f"exited with {self.proc.returncode}"
        pid = self.proc.pid
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except OSError as exc:
            return f"pid {pid}: {exc}"
        return f"pid {pid}, state {stat}, waiting in {wchan or '-'}"

    def log(self) -> str:
        path = self.logdir / f"{self.name}.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""


@dataclass
class WorkerStack:
    engine: Engine
    env: dict[str, str]
    redis: RedisServer
    sms_dir: Path
    logdir: Path
    processes: list[Process] = field(default_factory=list)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def worker(self, name: str = "worker") -> Process:
        p = Process(
            name, ["worker", "run", "-v", "--name", f"{name}-{free_port()}"], self.env, self.logdir
        ).start()
        self.processes.append(p)
        return p

    def scheduler(self) -> Process:
        p = Process("scheduler", ["worker", "schedule", "-v"], self.env, self.logdir).start()
        self.processes.append(p)
        return p

    def logs(self) -> str:
        return "\n".join(
            [self.redis.queues()]
            + [f"--- {p.name} ({p.state()}) ---\n{p.log()[-4000:]}" for p in self.processes]
        )

    def stop(self) -> None:
        for p in self.processes:
            p.kill(signal.SIGTERM)


def _database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'jobs.db'}"
    else:
        base = make_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_PG_URL))
        name = f"{base.database}_jobs"
        admin = make_engine(
            base.render_as_string(hide_password=False),
        )
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerStack]:
    yield from _stack(request.param, tmp_path)


@pytest.fixture
def pg_stack(tmp_path: Path) -> Iterator[WorkerStack]:
    yield from _stack("postgresql", tmp_path)


def _stack(kind: str, tmp_path: Path) -> Iterator[WorkerStack]:
    url = _database(kind, tmp_path)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    sms_dir = tmp_path / "sms-out"
    logdir = tmp_path / "logs"
    logdir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACIKKAPI_", "DATABASE_", "REDIS_"))
    }
    env.update(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "ACIKKAPI_INSTANCE_DIR": str(tmp_path / "instance"),
            "ACIKKAPI_SMS_GATEWAY": "file",
            "ACIKKAPI_SMS_FILE_DIR": str(sms_dir),
            "ACIKKAPI_OUTBOX_LEASE_SECONDS": "6",
            "PYTHONUNBUFFERED": "1",
        }
    )
    engine = make_engine(url)
    stack = WorkerStack(engine=engine, env=env, redis=redis, sms_dir=sms_dir, logdir=logdir)
    try:
        yield stack
    finally:
        stack.stop()
        redis.kill()
        engine.dispose()
