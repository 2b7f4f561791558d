"""The live console and Debian's Chromium for the browser tests of tests/console.

:func:`start_console` runs ``acikkapi db upgrade`` + ``acikkapi demo load`` on a fresh SQLite
instance (every demo user's password is ``acikkapi-demo``), lets the test write its own data
through the services (``seed``), then starts ``acikkapi console run`` (a subprocess,
waitress) on a free port and waits for ``/login``. :func:`launch_chromium`,
:func:`sign_in` and :func:`logged_in_page` drive Chromium through Playwright; every page
collects the Content-Security-Policy violations in ``page.csp_errors``. :func:`shot` saves
a screenshot to test-artifacts/screenshots/ and docs/screenshots/. Every wait is bounded;
nothing asserts wall-clock speed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from acikkapi.settings import Settings, load_settings
from tests.console.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
SHOTS = [REPO / "test-artifacts" / "screenshots", REPO / "docs" / "screenshots"]
DEMO_PASSWORD = "acikkapi-demo"
WAIT_MS = 30_000
DESKTOP = {"viewport": {"width": 1366, "height": 900}}

T = TypeVar("T")


@dataclass
class LiveConsole(Generic[T]):
    """A running console: its address, its settings and what ``seed`` returned."""

    base: str
    settings: Settings
    seeded: T

    @property
    def database_url(self) -> str:
        return self.settings.database_url


def require_chromium() -> None:
    """Skip the module's tests when Playwright or Debian's Chromium is missing."""
    pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is needed (apt-get install chromium)")


def _cli(env: Mapping[str, str], *args: str) -> None:
    acikkapi = Path(sys.executable).with_name("acikkapi")
    subprocess.run(
        [str(acikkapi), *args], env=dict(env), check=True, capture_output=True, timeout=300
    )


@contextmanager
def start_console(
    tmp_dir: Path,
    *,
    secret: str,
    seed: Callable[[Settings], T],
    ami_port: int | None = None,
    redis_db: int = 14,
    threads: int = 4,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[LiveConsole[T]]:
    """A console on a fresh demo instance under ``tmp_dir``, seeded by ``seed`` before it
    starts; terminated on exit. ``ami_port`` defaults to a free port nobody listens on
    (no PBX); ``secret`` is the session-cookie key."""
    require_chromium()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ACIKKAPI_", "DATABASE_URL"))},
        "ACIKKAPI_INSTANCE_DIR": str(tmp_dir / "instance"),
        "ACIKKAPI_AMI_PORT": str(free_port() if ami_port is None else ami_port),
        **(extra_env or {}),
        "ACIKKAPI_CONSOLE_PORT": str(port),
        "ACIKKAPI_CONSOLE_SECRET_KEY": secret,
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
    }
    settings = load_settings(env)
    _cli(env, "db", "upgrade")
    _cli(env, "demo", "load")
    seeded = seed(settings)
    acikkapi = Path(sys.executable).with_name("acikkapi")
    server = subprocess.Popen(
        [str(acikkapi), "console", "run", "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/login", timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            errors = server.stderr.read().decode()[-2000:] if server.stderr else ""
            pytest.fail(f"console did not start: {errors}")
        time.sleep(0.2)
    try:
        yield LiveConsole(base, settings, seeded)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Any, base: str, username: str, **context: Any) -> Any:
    """A new page (Turkish locale, ``context`` options) signed in as ``username`` with the
    demo password; CSP violations are collected in ``page.csp_errors``."""
    page = browser.new_context(locale="tr-TR", **context).new_page()
    page.set_default_timeout(WAIT_MS)
    page.csp_errors = []
    page.on(
        "console",
        lambda message: (
            page.csp_errors.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    return page


@contextmanager
def logged_in_page(base: str, username: str, **context: Any) -> Iterator[Any]:
    """:func:`sign_in` on a desktop-sized page of its own browser, closed on exit."""
    with launch_chromium() as browser:
        yield sign_in(browser, base, username, **{**DESKTOP, **context})


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot as ``name``.png in both screenshot folders."""
    SHOTS[0].mkdir(parents=True, exist_ok=True)
    path = SHOTS[0] / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS[1].mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS[1] / path.name)
