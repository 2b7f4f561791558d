"""Helpers shared by the benchmark scripts (not a test, not application code)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
DEFAULT_URL = "postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_bench"
_CLI = "import sys; from acikkapi.cli import main; sys.exit(main())"


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def pbx_environ(instance: Path, trunk_port: int) -> dict[str, str]:
    """The settings of a bench PBX in ``instance``: the demo phones, no qualify, the SIP
    trunk at 127.0.0.1:``trunk_port`` (sipp), and the caller's ``ACIKKAPI_ASTERISK_ROOT``."""
    environ = {
        "ACIKKAPI_INSTANCE_DIR": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'no-database.db'}",  # demo phones
        "ACIKKAPI_SIP_QUALIFY_FREQUENCY": "0",
        "ACIKKAPI_SIP_TRUNK_MATCH": f"127.0.0.1:{trunk_port}",
        "ACIKKAPI_SIP_TRUNK_CONTACT": f"sip:127.0.0.1:{trunk_port}",
    }
    if "ACIKKAPI_ASTERISK_ROOT" in os.environ:
        environ["ACIKKAPI_ASTERISK_ROOT"] = os.environ["ACIKKAPI_ASTERISK_ROOT"]
    return environ


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of unsorted ``values`` (``nan`` when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def libpq_dsn(url: str, database: str | None = None) -> str:
    """The libpq form of a SQLAlchemy URL (optionally for another database)."""
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def replace_docs_section(title: str, content: str) -> Path:
    """Put ``content`` in place of the ``title`` section of docs/benchmarks.md (appended
    when the section is missing); the other sections are kept as they are."""
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: content.rstrip("\n") + "\n\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + content
    DOCS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
    return DOCS


class Service:
    """``acikkapi <args>`` as a subprocess, output to a log file (stopped by its pid only)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.offset = 0

    def start(self) -> None:
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CLI, *self.args],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def text(self) -> str:
        with self.log_path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", "replace")

    def wait_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {needle!r} not logged:\n{self.text()[-2000:]}")
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
