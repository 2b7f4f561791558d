"""Helpers shared by the console benchmarks (bench/console_*.py); not a test, not app code.

- :func:`console_server`: a real ``acikkapi console run`` (waitress) subprocess on a free
  port, with its own instance directory, database, Redis database and a PBX port where
  nothing listens (the console's AMI calls fail fast, as with Asterisk down).
- :class:`Http`: one keep-alive HTTP/1.1 connection with a cookie jar, sign-in with the
  CSRF token, timing of each request at the client.
- :func:`prepare_small_database`: a fresh, migrated and seeded database of the benchmark's
  own (name must contain ``bench``), with extra agents.
- :func:`give_passwords`: a password for chosen staff of a database (only users without
  one, or whose password already is the benchmark's: other people's sessions are kept).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, libpq_dsn, percentile

SMALL_DB_URL = "postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_bench_console"
REDIS_URL = "redis://127.0.0.1:6379/11"  # a Redis database of the console benchmarks' own
PASSWORD = "konsol-bench-parola-2026"
ACIKKAPI = ROOT / ".venv" / "bin" / "acikkapi"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p95, p99, max and mean of ``values`` (milliseconds)."""
    return {
        "n": float(len(values)),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def machine() -> str:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}"


def postgres(url: str) -> str:
    import psycopg

    with psycopg.connect(libpq_dsn(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
    assert row and sync and buffers
    return (
        f"PostgreSQL {str(row[0]).split(' ')[0]} (shared_buffers {buffers[0]}, "
        f"synchronous_commit {sync[0]}, same machine)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# databases


def prepare_small_database(url: str, extra_agents: int) -> list[str]:
    """Drop and rebuild ``url``'s schema through the migrations, load holidays, catalogue
    and demo data, add ``extra_agents`` agents (``bench.agent.NN``, extensions 19NN) and
    give every human staff member :data:`PASSWORD`. Returns the agents' user names."""
    from sqlalchemy import select, text
    from sqlalchemy.engine import make_url

    from acikkapi.db import make_engine
    from acikkapi.migrate import upgrade
    from models import Role, StaffUser
    from services.catalogue_loader import load_catalogue, load_demo, load_holidays
    from services.staff_auth import hash_password

    name = make_url(url).database or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to rebuild {name!r}: the name must contain 'bench'")
    import psycopg

    with psycopg.connect(libpq_dsn(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    now = datetime.now(UTC)
    digest = hash_password(PASSWORD)
    with Session(engine) as session:
        load_holidays(session)
        load_catalogue(session, now)
        load_demo(session, now)
        session.flush()
        for k in range(extra_agents):
            session.add(
                StaffUser(
                    username=f"bench.agent.{k:02d}",
                    full_name=f"Bench Temsilci {k:02d}",
                    staff_code=f"BA-{k:04d}",
                    role=Role.AGENT,
                    languages=["tr"],
                    sip_extension=f"19{k:02d}",
                    is_active=True,
                    created_at=now,
                )
            )
        session.flush()
        for user in session.scalars(select(StaffUser).where(StaffUser.role != Role.SYSTEM)):
            user.password_hash = digest
        session.commit()
        agents = list(
            session.scalars(
                select(StaffUser.username)
                .where(StaffUser.role == Role.AGENT, StaffUser.username.like("bench.agent.%"))
                .order_by(StaffUser.username)
            )
        )
    engine.dispose()
    return agents


def give_passwords(url: str, wanted: dict[str, int]) -> dict[str, list[str]]:
    """For each role name in ``wanted``, up to that many active users who can sign in with
    :data:`PASSWORD`: users without a password get it; users whose password is already the
    benchmark's are reused; users with another password are left alone."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from acikkapi.db import make_engine
    from models import Role, StaffUser
    from services.staff_auth import _verify, hash_password

    engine = make_engine(url)
    digest = hash_password(PASSWORD)
    found: dict[str, list[str]] = {}
    with Session(engine) as session:
        for role_name, count in wanted.items():
            users = session.scalars(
                select(StaffUser)
                .where(StaffUser.role == Role(role_name), StaffUser.is_active)
                .order_by(StaffUser.id)
            )
            names: list[str] = []
            for user in users:
                if len(names) >= count:
                    break
                if user.password_hash is None:
                    user.password_hash = digest
                elif not _verify(user.password_hash, PASSWORD):
                    continue
                user.failed_logins = 0
                user.locked_until = None
                names.append(user.username)
            found[role_name] = names
        session.commit()
    engine.dispose()
    return found


# --------------------------------------------------------------------------------------------
# the console server


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def pid(self) -> int:
        return int(self.process.pid)


@contextlib.contextmanager
def console_server(
    database_url: str,
    instance: Path,
    *,
    threads: int = 64,
    redis_url: str = REDIS_URL,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """``acikkapi console run`` in a subprocess until the block ends (SIGTERM)."""
    instance.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACIKKAPI_")}
    env.update(
        {
            "ACIKKAPI_INSTANCE_DIR": str(instance),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ACIKKAPI_AMI_PORT": str(free_port()),  # nothing listens there: PBX "down"
            "ACIKKAPI_CONSOLE_SECRET_KEY": "console-bench-secret-key",
        }
    )
    env.update(extra_env or {})
    log_path = instance / "console.log"
    out = log_path.open("wb")
    cmd = [
        str(ACIKKAPI),
        "console",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]
    process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server("127.0.0.1", port, process, log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise SystemExit(f"console exited: {log_path.read_text()[-2000:]}")
            try:
                probe = Http(server.host, port, timeout=5)
                if probe.get("/login").status == 200:
                    probe.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("console did not start within 90 s")
            time.sleep(0.3)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        out.close()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --------------------------------------------------------------------------------------------
# HTTP client


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    ms: float  # request sent -> whole body received, at the client

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')


@dataclass
class Http:
    """One keep-alive connection with a cookie jar (the browser of one signed-in user)."""

    host: str
    port: int
    timeout: float = 60.0
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    _conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept-Language": "tr"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _remember(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0]
            name, _eq, value = pair.partition("=")
            self.cookies[name.strip()] = value.strip()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            conn = self._connection()
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=self.headers(headers))
                raw = conn.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
                continue
            ms = (time.perf_counter() - t0) * 1000
            self._remember(raw)
            if raw.getheader("Connection", "").lower() == "close":
                self.close()
            response = Response(raw.status, dict(raw.getheaders()), data, ms)
            found = _CSRF.search(response.text) if b"csrf" in data[:4000] else None
            if found:
                self.csrf = found.group(1) or found.group(2)
            return response
        raise AssertionError("unreachable")

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def post(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> Response:
        body = urllib.parse.urlencode({**data, "csrf_token": self.csrf}).encode()
        extra = {"Content-Type": "application/x-www-form-urlencoded"}
        extra.update(headers or {})
        return self.request("POST", path, body=body, headers=extra)

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.get("/login")
        response = self.post("/login", {"username": username, "password": password})
        if response.status != 302:
            raise SystemExit(f"sign-in of {username} failed: {response.status}")


def sign_in(host: str, port: int, username: str) -> Http:
    client = Http(host, port)
    client.login(username)
    return client


def fmt_ms(value: float) -> str:
    return "—" if value != value else f"{value:.1f}"  # nan -> dash


def cookie_header(client: Http) -> str:
    return client.headers().get("Cookie", "")


def describe(result: dict[str, Any]) -> str:
    s = result
    return (
        f"p50 {fmt_ms(s['p50'])} ms, p95 {fmt_ms(s['p95'])} ms, p99 {fmt_ms(s['p99'])} ms, "
        f"max {fmt_ms(s['max'])} ms (n={int(s['n'])})"
    )
