"""The file SMS gateway: one message per idempotency key, atomic, survives SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from acikkapi.settings import SettingsError, load_settings
from messaging.delivery import DeliveryError, OutgoingSms
from messaging.sms_factory import build_sms_gateway
from messaging.sms_file import FileSmsGateway, file_name, read_messages
from messaging.sms_http import HttpSmsGateway
from messaging.sms_smpp import SmppSmsGateway

REPO = Path(__file__).resolve().parents[2]
FIXED = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def _sms(key: str = "ack:ticket:1", text: str = "Başvurunuz alındı: 7KMQ-4XR9") -> OutgoingSms:
    return OutgoingSms(recipient="+905321234567", text=text, idempotency_key=key, sender="ACIKKAPI")


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def test_writes_one_json_message_with_encoding_and_public_information_mark(
    tmp_path: Path,
) -> None:
    gateway = FileSmsGateway(tmp_path / "out", clock=lambda: FIXED)
    result = gateway.send(_sms())
    assert not result.duplicate and result.parts == 1
    [path] = _files(tmp_path / "out")
    assert path.name == file_name("ack:ticket:1") and path.name.startswith("ack_ticket_1-")
    message = json.loads(path.read_text(encoding="utf-8"))
    assert message == {
        "provider_message_id": result.provider_message_id,
        "idempotency_key": "ack:ticket:1",
        "recipient": "+905321234567",
        "sender": "ACIKKAPI",
        "text": "Başvurunuz alındı: 7KMQ-4XR9",
        "encoding": "ucs2",
        "data_coding": 8,
        "characters": 28,
        "units": 28,
        "parts": 1,
        "segments": ["Başvurunuz alındı: 7KMQ-4XR9"],
        "iys_message_type": "BILGILENDIRME",
        "commercial": False,
        "written_at": FIXED.isoformat(),
    }


def test_second_send_with_the_same_key_writes_nothing_and_says_duplicate(
    tmp_path: Path,
) -> None:
    gateway = FileSmsGateway(tmp_path)
    first = gateway.send(_sms())
    before = (tmp_path / file_name("ack:ticket:1")).read_bytes()
    again = FileSmsGateway(tmp_path).send(_sms(text="a different text"))
    assert again.duplicate and again.provider_message_id == first.provider_message_id
    assert len(_files(tmp_path)) == 1
    assert (tmp_path / file_name("ack:ticket:1")).read_bytes() == before
    other = gateway.send(_sms(key="ack:ticket:2"))
    assert not other.duplicate and other.provider_message_id != first.provider_message_id
    assert sorted(m["idempotency_key"] for m in read_messages(tmp_path)) == [
        "ack:ticket:1",
        "ack:ticket:2",
    ]


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "sms:reply:a/b\\c", ".hidden", "ş" * 300, "ack:ticket:1 "]
)
def test_any_key_stays_inside_the_folder_with_a_distinct_name(tmp_path: Path, key: str) -> None:
    gateway = FileSmsGateway(tmp_path)
    gateway.send(_sms(key=key))
    [path] = _files(tmp_path)
    assert path.parent == tmp_path and not path.name.startswith(".")
    assert file_name(key) != file_name(key.strip() + "x")
    assert json.loads(path.read_text(encoding="utf-8"))["idempotency_key"] == key


def test_concurrent_sends_of_one_key_write_exactly_one_message(tmp_path: Path) -> None:
    gateway = FileSmsGateway(tmp_path)
    barrier = threading.Barrier(8)
    results = []

    def send() -> None:
        barrier.wait()
        results.append(gateway.send(_sms(key="ack:ticket:race")))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert len(_files(tmp_path)) == 1


@pytest.mark.parametrize(
    ("recipient", "text"), [("05321234567", "metin"), ("+905321234567", ""), ("", "metin")]
)
def test_invalid_messages_are_refused_for_good(tmp_path: Path, recipient: str, text: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        FileSmsGateway(tmp_path).send(
            OutgoingSms(recipient=recipient, text=text, idempotency_key="k", sender="ACIKKAPI")
        )
    assert caught.value.retryable is False
    assert _files(tmp_path) == []


def test_unwritable_folder_is_a_retryable_error(tmp_path: Path) -> None:
    gateway = FileSmsGateway(tmp_path / "out")
    (tmp_path / "out").rmdir()
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(DeliveryError) as caught:
        gateway.send(_sms())
    assert caught.value.retryable is True


# A sender process SIGKILLs itself at a chosen step of the send: before the message is
# published (only the temporary file exists) or right after (before the temp is removed).
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from messaging.delivery import OutgoingSms
    from messaging.sms_file import FileSmsGateway

    step, folder = sys.argv[1], Path(sys.argv[2])
    real_link, real_unlink = os.link, Path.unlink

    def link(src, dst, *a, **k):
        if step == "before_publish":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_link(src, dst, *a, **k)

    def unlink(self, *a, **k):
        if step == "after_publish" and self.name.endswith(".tmp"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unlink(self, *a, **k)

    os.link, Path.unlink = link, unlink
    FileSmsGateway(folder).send(OutgoingSms("+905321234567", "Başvurunuz alındı",
                                            "ack:ticket:9", "ACIKKAPI"))
    """
)


@pytest.mark.parametrize(
    ("step", "published"), [("before_publish", False), ("after_publish", True)]
)
def test_a_sender_killed_mid_send_leaves_no_loss_and_no_second_copy(
    tmp_path: Path, step: str, published: bool
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, step, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    final = tmp_path / file_name("ack:ticket:9")
    temps = [p for p in _files(tmp_path) if p.name.endswith(".tmp")]
    assert final.exists() is published
    assert len(temps) == 1  # the killed process left its temporary file behind
    if published:  # the file that exists is complete
        assert json.loads(final.read_text(encoding="utf-8"))["text"] == "Başvurunuz alındı"

    # The dispatcher's retry (same key, a new process) completes the job exactly once.
    gateway = FileSmsGateway(tmp_path)  # removes the dead sender's temporary file
    result = gateway.send(_sms(key="ack:ticket:9", text="Başvurunuz alındı"))
    assert result.duplicate is published
    assert _files(tmp_path) == [final]
    assert len(read_messages(tmp_path)) == 1


def test_temporary_files_of_live_senders_are_kept(tmp_path: Path) -> None:
    mine = tmp_path / f".x.json.{os.getpid()}.abc.tmp"
    mine.write_text("{}")
    assert FileSmsGateway(tmp_path).remove_abandoned_temp_files() == 0
    assert mine.exists()


def test_factory_builds_the_configured_gateway(tmp_path: Path) -> None:
    base = {"ACIKKAPI_INSTANCE_DIR": str(tmp_path)}
    file_gw = build_sms_gateway(load_settings(base))
    assert isinstance(file_gw, FileSmsGateway)
    assert file_gw.directory == (tmp_path / "sms-out").resolve()
    http_gw = build_sms_gateway(
        load_settings(
            {
                **base,
                "ACIKKAPI_SMS_GATEWAY": "http",
                "ACIKKAPI_SMS_HTTP_URL": "https://sms.example.invalid/send",
            }
        )
    )
    assert isinstance(http_gw, HttpSmsGateway)
    smpp_gw = build_sms_gateway(
        load_settings({**base, "ACIKKAPI_SMS_GATEWAY": "smpp", "ACIKKAPI_SMPP_SYSTEM_ID": "ak"})
    )
    assert isinstance(smpp_gw, SmppSmsGateway)
    smpp_gw.close()
    too_long = {"ACIKKAPI_SMPP_SYSTEM_ID": "ak", "ACIKKAPI_SMPP_PASSWORD": "123456789"}
    for missing in (
        {"ACIKKAPI_SMS_GATEWAY": "http"},
        {"ACIKKAPI_SMS_GATEWAY": "smpp"},
        {"ACIKKAPI_SMS_GATEWAY": "smpp", **too_long},  # smpplib would cut it silently
    ):
        with pytest.raises(SettingsError):
            build_sms_gateway(load_settings({**base, **missing}))
    with pytest.raises(SettingsError):  # credentials never travel over plain http
        build_sms_gateway(
            load_settings(
                {
                    **base,
                    "ACIKKAPI_SMS_GATEWAY": "http",
                    "ACIKKAPI_SMS_HTTP_URL": "http://sms.example.invalid/send",
                }
            )
        )
