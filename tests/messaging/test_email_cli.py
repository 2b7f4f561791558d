"""``acikkapi email poll | send-test`` end to end: fresh SQLite instance, real dovecot, real
SMTP server (aiosmtpd), and the daemon stopped with SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from click.testing import CliRunner

from acikkapi.cli import main
from acikkapi.settings import REPO_ROOT, load_settings
from messaging.email_cli import OFF_MESSAGE, poll_once
from tests.helpers.dovecot import Dovecot, running_dovecot
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpServer

CODE = re.compile(r"ticket_opened ([2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4})")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1d1e3c70000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    with running_dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


def _mail(n: int) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Emine Öztürk <emine@eposta.example>"
    message["To"] = "info@belediye.example"
    message["Subject"] = "Ağaç budama talebi"
    message["Message-ID"] = f"<cli-{n}@eposta.example>"
    message.set_content("Şehit Ömer Sokak'taki ağaç dalları elektrik tellerine değiyor.")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="ağaç.png")
    return message.as_bytes()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh embedded instance, migrated and loaded through the CLI itself."""
    values = {"ACIKKAPI_INSTANCE_DIR": str(tmp_path / "instance")}
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name in [k for k in os.environ if k.startswith(("ACIKKAPI_IMAP_", "ACIKKAPI_SMTP_"))]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    for command in (["db", "upgrade"], ["catalogue", "load"]):
        result = runner.invoke(main, command, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return values


def _imap(server: Dovecot) -> dict[str, str]:
    return {
        "ACIKKAPI_IMAP_HOST": server.host,
        "ACIKKAPI_IMAP_PORT": str(server.port),
        "ACIKKAPI_IMAP_USERNAME": server.username,
        "ACIKKAPI_IMAP_PASSWORD": server.password,
    }


def _invoke(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> tuple[int, str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_poll_without_imap_host_does_nothing_and_says_so(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _invoke(monkeypatch, "email", "poll")
    assert code == 0 and OFF_MESSAGE in out
    report = poll_once(load_settings({**env, "ACIKKAPI_IMAP_HOST": ""}))
    assert report.skipped == OFF_MESSAGE and report.handled == []


def test_poll_once_opens_tickets_and_stores_attachments(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, dovecot: Dovecot
) -> None:
    server = dovecot.new_user()
    uid = server.append(_mail(1))

    code, out, err = _invoke(monkeypatch, "email", "poll", **_imap(server))

    assert code == 0, err
    assert f"uid {uid}: ticket_opened" in out
    found = CODE.search(out)
    assert found is not None
    code, shown, _ = _invoke(monkeypatch, "ticket", "show", found.group(1))
    assert code == 0 and "via email" in shown and "contacts   : 1" in shown
    assert "attachment_added" in shown
    stored = list((Path(env["ACIKKAPI_INSTANCE_DIR"]) / "attachments").rglob("*.png"))
    assert [p.read_bytes() for p in stored] == [PNG]
    assert "\\Seen" in server.flags(uid)

    code, again, _ = _invoke(monkeypatch, "email", "poll", **_imap(server))
    assert code == 0 and "unseen=0" in again


def test_poll_once_reports_an_unreachable_mailbox(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _invoke(
        monkeypatch,
        "email",
        "poll",
        ACIKKAPI_IMAP_HOST="127.0.0.1",
        ACIKKAPI_IMAP_PORT=str(free_port()),
    )
    assert code == 1 and "cannot connect" in err


def test_send_test_through_smtp(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    smtp = SmtpServer()
    smtp.start()
    try:
        code, out, err = _invoke(
            monkeypatch,
            "email",
            "send-test",
            "--to",
            "Büşra <busra@eposta.example>",
            ACIKKAPI_SMTP_HOST="127.0.0.1",
            ACIKKAPI_SMTP_PORT=str(smtp.port),
            ACIKKAPI_MUNICIPALITY="Çamlıbel Belediyesi",
        )
    finally:
        smtp.stop()
    assert code == 0, err
    (got,) = smtp.recorder.received
    assert got.rcpt_tos == ["busra@eposta.example"]
    assert got.message["Subject"] == "Çamlıbel Belediyesi: e-posta denemesi / test message"
    assert got.message["Message-ID"] in out


def test_send_test_to_nowhere_is_a_clear_error(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _invoke(
        monkeypatch,
        "email",
        "send-test",
        "--to",
        "busra@eposta.example",
        ACIKKAPI_SMTP_HOST="127.0.0.1",
        ACIKKAPI_SMTP_PORT=str(free_port()),
    )
    assert code == 1 and "retryable" in err


def _lines(stream: object, sink: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.put(line)


def _wait_for(lines: queue.Queue[str], seen: list[str], pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    pytest.fail(f"no line matching {pattern!r}; got:\n{''.join(seen)}")


def test_daemon_polls_until_sigterm_and_stops_cleanly(
    env: dict[str, str], dovecot: Dovecot
) -> None:
    server = dovecot.new_user()
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ACIKKAPI_")},
        **env,
        **_imap(server),
    }
    child_env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "acikkapi.cli", "email", "poll", "--every", "1"],
        cwd=REPO_ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        _wait_for(lines, seen, r"unseen=0")  # first, empty poll done: the daemon is up
        uid = server.append(_mail(2))
        _wait_for(lines, seen, rf"uid {uid}: ticket_opened")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        reader.join(timeout=10)
        while not lines.empty():
            seen.append(lines.get())
        assert "Durduruldu / stopped" in "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
