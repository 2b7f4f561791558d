"""``acikkapi sms`` end to end on an embedded (SQLite) instance, the listener as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from acikkapi.cli import main
from acikkapi.db import make_engine
from messaging.sms_smpp import ROK
from models import Channel, Notification, OutboxStatus, TicketContact
from tests.factories import valid_tc
from tests.helpers.smsc import TestSmsc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sms-instance")
    runner = CliRunner()
    for args in (["db", "upgrade"], ["demo", "load"]):
        result = runner.invoke(main, args, env=_env(folder), catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return folder


def _env(folder: Path, **extra: str) -> dict[str, str]:
    return {"ACIKKAPI_INSTANCE_DIR": str(folder), "DATABASE_URL": "", **extra}


def _run(instance: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["sms", *args], env=_env(instance), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _db(instance: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{instance / 'acikkapi.db'}")
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def test_receive_opens_a_ticket_and_ignores_the_same_id_twice(instance: Path) -> None:
    args = ("receive", "--from", "0532 811 00 01", "--id", "demo-1")
    code, out, _ = _run(instance, *args, "--text", f"{valid_tc(8101)} Parkta ışık yanmıyor")
    assert code == 0, out
    assert out.startswith("ticket_opened  id=demo-1")
    reference = out.split("ticket : ")[1].split()[0]
    assert f"Başvuru kodunuz {reference}" in out and "+905328110001" in out
    code, out, _ = _run(instance, *args, "--text", "başka bir metin")
    assert code == 0 and out.startswith("duplicate") and reference in out


def test_receive_without_a_tc_number_explains_the_format(instance: Path) -> None:
    code, out, _ = _run(instance, "receive", "--from", "05328110002", "--text", "ışık yok")
    assert code == 0 and out.startswith("format_help_sent")
    assert "TC kimlik numaranızı ve ardından mesajınızı yazın" in out


def test_send_test_goes_through_the_file_gateway(instance: Path) -> None:
    code, out, _ = _run(instance, "send-test", "--to", "0532 811 00 03", "--text", "Deneme ğüş")
    assert code == 0, out
    assert "ucs2, 10 characters, 1 part(s) to +905328110003" in out and "sent:" in out
    [path] = (instance / "sms-out").glob("test_*.json")
    message = json.loads(path.read_text(encoding="utf-8"))
    assert (message["recipient"], message["text"]) == ("+905328110003", "Deneme ğüş")


def test_send_test_reports_a_refused_number(instance: Path) -> None:
    code, _, err = _run(instance, "send-test", "--to", "12", "--text", "x")
    assert code != 0 and "telefon" in err.lower()


def test_listen_turns_smpp_messages_and_receipts_into_service_calls(instance: Path) -> None:
    with TestSmsc() as smsc:
        env = {
            **os.environ,
            **_env(
                instance,
                ACIKKAPI_SMPP_PORT=str(smsc.port),
                ACIKKAPI_SMPP_SYSTEM_ID="acikkapi",
                ACIKKAPI_SMPP_PASSWORD="secret",
            ),
            "PYTHONPATH": str(REPO),
        }
        env.pop("DATABASE_URL")
        proc = subprocess.Popen(
            [sys.executable, "-m", "acikkapi.cli", "sms", "listen"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert smsc.wait_until(lambda: len(smsc.binds) == 1, timeout=60), (
                "listener did not bind"
            )
            text = f"{valid_tc(8201)} Çöp konteyneri taştı, lütfen boşaltın"
            [pdu] = smsc.mo_pdus("+905328120001", text)
            assert smsc.deliver(pdu) == ROK
            for session in _db(instance):
                contact = session.scalar(
                    select(TicketContact).where(
                        TicketContact.channel == Channel.SMS,
                        TicketContact.phone_e164 == "+905328120001",
                    )
                )
                assert contact is not None and contact.description.startswith("Çöp konteyneri")
                assert contact.external_ref is not None and contact.external_ref.startswith("smpp-")
                ack = session.scalar(
                    select(Notification).where(Notification.ticket_id == contact.ticket_id)
                )
                assert ack is not None and ack.template == "ticket_opened"
                # What the dispatcher does once the SMSC accepted the acknowledgement:
                session.execute(
                    update(Notification)
                    .where(Notification.id == ack.id)
                    .values(status=OutboxStatus.SENT, provider_message_id="msg-ack-1")
                )
                session.commit()
                ack_id = ack.id
            assert smsc.deliver(smsc.receipt_pdu("msg-ack-1", "DELIVRD")) == ROK
            assert smsc.deliver(pdu) == ROK  # an SMSC re-delivery: recognised, nothing new
            for session in _db(instance):
                delivered = session.get(Notification, ack_id)
                assert delivered is not None and delivered.delivery_status == "delivered"
                assert delivered.delivered_at is not None
                contacts = session.scalars(
                    select(TicketContact).where(TicketContact.phone_e164 == "+905328120001")
                ).all()
                assert len(contacts) == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        assert smsc.unbinds == 1
        assert "SMPP listener stopped" in output
