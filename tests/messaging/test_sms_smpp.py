"""The SMPP gateway and receiver against the test SMSC over real TCP (tests/helpers/smsc.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import smpplib.consts as smpp_consts

from messaging.delivery import DeliveryError, OutgoingSms
from messaging.sms_encoding import reference_for
from messaging.sms_smpp import ESME_RX_P_APPN, ESME_RX_T_APPN, ROK, SmppConfig, SmppSmsGateway
from messaging.sms_smpp_receiver import DeliverSmHandler, SmppReceiver
from services.sms_channel import InboundSms
from tests.helpers.smsc import TestSmsc

LONG_TURKISH = (
    "Açık Kapı: Başvurunuz alındı. Ekiplerimiz sokağınızdaki çukuru inceleyecek; "
    "gelişmeleri size SMS ile bildireceğiz. Başvuru kodunuz 7KMQ-4XR9. Teşekkür ederiz."
)


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def smsc() -> Iterator[TestSmsc]:
    with TestSmsc() as server:
        yield server


def _config(smsc: TestSmsc, **overrides: Any) -> SmppConfig:
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "acikkapi",
        "password": "secret",
        "timeout": 5.0,
    }
    fields.update(overrides)
    return SmppConfig(**fields)


@pytest.fixture
def gateway(smsc: TestSmsc) -> Iterator[SmppSmsGateway]:
    gw = SmppSmsGateway(_config(smsc))
    yield gw
    gw.close()


def _sms(key: str = "ack:ticket:1", text: str = "Basvurunuz alindi: 7KMQ-4XR9") -> OutgoingSms:
    return OutgoingSms(recipient="+905321234567", text=text, idempotency_key=key, sender="ACIKKAPI")


# --- sending ---


def test_single_gsm7_message_is_one_submit_with_receipt_requested(
    smsc: TestSmsc, gateway: SmppSmsGateway
) -> None:
    result = gateway.send(_sms())
    [submit] = smsc.submits
    assert result.provider_message_id == submit.message_id and result.parts == 1
    assert not result.duplicate
    assert smsc.binds == [("transceiver", "acikkapi")]
    assert (submit.source_addr, submit.source_addr_ton) == ("ACIKKAPI", 5)
    assert (submit.destination_addr, submit.dest_addr_ton) == ("905321234567", 1)
    assert (submit.data_coding, submit.esm_class, submit.registered_delivery) == (0, 0, 1)
    assert submit.text == "Basvurunuz alindi: 7KMQ-4XR9"


def test_long_turkish_message_is_concatenated_ucs2(smsc: TestSmsc, gateway: SmppSmsGateway) -> None:
    result = gateway.send(_sms(key="ack:ticket:42", text=LONG_TURKISH))
    assert result.parts == len(smsc.submits) == 3
    assert result.provider_message_id == smsc.submits[0].message_id
    assert {s.data_coding for s in smsc.submits} == {8}
    assert {s.esm_class for s in smsc.submits} == {0x40}
    concat = [s.concatenation for s in smsc.submits]
    assert [(c.reference, c.total, c.number) for c in concat] == [
        (reference_for("ack:ticket:42"), 3, n) for n in (1, 2, 3)
    ]
    assert "".join(s.text for s in smsc.submits) == LONG_TURKISH


def test_one_bind_serves_many_messages(smsc: TestSmsc, gateway: SmppSmsGateway) -> None:
    for n in range(5):
        gateway.send(_sms(key=f"k{n}"))
    assert len(smsc.submits) == 5 and len(smsc.binds) == 1


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (smpp_consts.SMPP_ESME_RINVDSTADR, False),
        (smpp_consts.SMPP_ESME_RINVSRCADR, False),
        (smpp_consts.SMPP_ESME_RX_P_APPN, False),
        (smpp_consts.SMPP_ESME_RTHROTTLED, True),
        (smpp_consts.SMPP_ESME_RMSGQFUL, True),
        (smpp_consts.SMPP_ESME_RSYSERR, True),
        (0x0400, True),  # vendor-specific: not known to be permanent
    ],
)
def test_error_statuses_become_delivery_errors(
    smsc: TestSmsc, gateway: SmppSmsGateway, status: int, retryable: bool
) -> None:
    smsc.fail_next(status)
    with pytest.raises(DeliveryError) as caught:
        gateway.send(_sms())
    assert caught.value.retryable is retryable
    assert f"0x{status:08X}" in str(caught.value)
    assert gateway.send(_sms(key="next")).parts == 1  # the gateway keeps working
    assert [s.destination_addr for s in smsc.submits] == ["905321234567"]


def test_bad_credentials_are_not_retryable(smsc: TestSmsc) -> None:
    gw = SmppSmsGateway(_config(smsc, password="wrong"))
    with pytest.raises(DeliveryError) as caught:
        gw.send(_sms())
    assert caught.value.retryable is False
    assert smsc.refused_binds == 1 and smsc.submits == []
    gw.close()


def test_unreachable_smsc_is_retryable(smsc: TestSmsc) -> None:
    port = smsc.port
    smsc.__exit__(None, None, None)
    gw = SmppSmsGateway(_config(smsc, port=port, timeout=1.0))
    with pytest.raises(DeliveryError) as caught:
        gw.send(_sms())
    assert caught.value.retryable is True
    gw.close()


def test_after_a_failed_bind_messages_fail_fast_until_the_backoff_ends(smsc: TestSmsc) -> None:
    clock = FakeClock()
    gw = SmppSmsGateway(_config(smsc), reconnect_backoff=5.0, clock=clock)
    smsc.bind_status = smpp_consts.SMPP_ESME_RBINDFAIL
    for _ in range(3):
        with pytest.raises(DeliveryError) as caught:
            gw.send(_sms())
        assert caught.value.retryable is True
    assert smsc.refused_binds == 1  # one attempt, the other two failed fast
    clock.now += 5.0
    smsc.bind_status = 0
    assert gw.send(_sms()).parts == 1
    assert len(smsc.binds) == 1 and len(smsc.submits) == 1
    gw.close()


def test_a_dropped_link_is_rebound_before_the_next_message(
    smsc: TestSmsc, gateway: SmppSmsGateway
) -> None:
    gateway.send(_sms(key="before"))
    smsc.drop_all_sessions()
    assert smsc.wait_until(lambda: not smsc.live_sessions())
    result = gateway.send(_sms(key="after"))
    assert result.parts == 1
    assert len(smsc.binds) == 2
    assert [s.message_id for s in smsc.submits] == [
        smsc.submits[0].message_id,
        result.provider_message_id,
    ]


def test_a_link_lost_after_submit_is_a_retryable_unknown_outcome(
    smsc: TestSmsc, gateway: SmppSmsGateway
) -> None:
    smsc.drop_on_next_submit()
    with pytest.raises(DeliveryError) as caught:
        gateway.send(_sms())
    assert caught.value.retryable is True and "outcome unknown" in str(caught.value)
    assert gateway.send(_sms()).parts == 1  # the dispatcher's retry goes out on a new bind
    assert len(smsc.binds) == 2 and len(smsc.submits) == 1


def test_a_missing_submit_resp_times_out_and_the_link_is_replaced(smsc: TestSmsc) -> None:
    gw = SmppSmsGateway(_config(smsc, timeout=0.5))
    smsc.silent_on_next_submit()
    with pytest.raises(DeliveryError) as caught:
        gw.send(_sms())
    assert caught.value.retryable is True
    # SMPP has no idempotency key: the SMSC had the message, the retry sends it again.
    retry = gw.send(_sms())
    assert len(smsc.submits) == 2 and retry.provider_message_id == smsc.submits[1].message_id
    assert len(smsc.binds) == 2
    gw.close()


def test_an_idle_link_is_checked_with_enquire_link(smsc: TestSmsc) -> None:
    clock = FakeClock()
    gw = SmppSmsGateway(_config(smsc, enquire_link_interval=30.0), clock=clock)
    gw.send(_sms(key="one"))
    assert smsc.enquire_links == 0
    clock.now += 31
    gw.send(_sms(key="two"))
    assert smsc.enquire_links == 1 and len(smsc.binds) == 1 and len(smsc.submits) == 2
    gw.close()


def test_deliver_sm_on_the_sending_session_is_deferred_to_the_listener(
    smsc: TestSmsc, gateway: SmppSmsGateway
) -> None:
    gateway.send(_sms(key="bind"))
    [session] = smsc.live_sessions()
    answers: list[int] = []
    pdu = smsc.mo_pdus("+905321234567", "12345678901 Çukur var")[0]
    waiter = threading.Thread(target=lambda: answers.append(smsc.deliver(pdu, session)))
    waiter.start()
    assert smsc.wait_until(lambda: pdu.sequence > 0)
    gateway.send(_sms(key="after"))  # the gateway reads the deliver_sm before submitting
    waiter.join(timeout=10)
    assert answers == [ESME_RX_T_APPN]


def test_unbind_on_close(smsc: TestSmsc) -> None:
    gw = SmppSmsGateway(_config(smsc))
    gw.send(_sms())
    gw.close()
    assert smsc.wait_until(lambda: smsc.unbinds == 1)


@pytest.mark.parametrize("sender", ["ÇOK-UZUN-BAŞLIK", "ABCDEFGHIJKL", ""])
def test_an_unusable_sender_is_refused_for_good(
    smsc: TestSmsc, gateway: SmppSmsGateway, sender: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        gateway.send(OutgoingSms("+905321234567", "metin", "k", sender))
    assert caught.value.retryable is False and smsc.submits == []


# --- receiving ---


class Inbox:
    def __init__(self) -> None:
        self.messages: list[InboundSms] = []
        self.receipts: list[tuple[str, str, datetime | None]] = []
        self.fail_messages = 0

    def on_message(self, sms: InboundSms) -> None:
        if self.fail_messages:
            self.fail_messages -= 1
            raise RuntimeError("database unavailable")
        self.messages.append(sms)

    def on_receipt(self, message_id: str, state: str, done_at: datetime | None) -> None:
        self.receipts.append((message_id, state, done_at))


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def receiver(smsc: TestSmsc, inbox: Inbox) -> Iterator[SmppReceiver]:
    handler = DeliverSmHandler(on_message=inbox.on_message, on_receipt=inbox.on_receipt)
    rx = SmppReceiver(_config(smsc, enquire_link_interval=0.3), handler, poll_interval=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=rx.run, args=(stop,), daemon=True)
    thread.start()
    assert smsc.wait_until(lambda: len(smsc.binds) == 1)
    yield rx
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_citizen_message_reaches_on_message(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox
) -> None:
    [pdu] = smsc.mo_pdus("+905321234567", "12345678901 Sokak lambası yanmıyor")
    assert smsc.deliver(pdu) == ROK
    [message] = inbox.messages
    assert message.sender == "+905321234567"
    assert message.text == "12345678901 Sokak lambası yanmıyor"
    assert message.provider_message_id.startswith("smpp-")
    assert message.received_at.tzinfo is not None


def test_a_concatenated_message_is_handed_over_whole(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox
) -> None:
    text = "12345678901 " + LONG_TURKISH
    pdus = smsc.mo_pdus("+905321234567", text)
    assert len(pdus) == 3
    assert [smsc.deliver(p) for p in (pdus[2], pdus[0], pdus[1])] == [ROK] * 3  # any order
    assert [m.text for m in inbox.messages] == [text]


def test_a_redelivered_message_keeps_its_provider_id(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox
) -> None:
    for _ in range(2):
        [pdu] = smsc.mo_pdus("5321234567", "12345678901 aynı mesaj")
        assert smsc.deliver(pdu) == ROK
    first, second = inbox.messages
    assert first.sender == "5321234567"  # national form: the channel normalises it
    assert first.provider_message_id == second.provider_message_id
    [other] = smsc.mo_pdus("5321234567", "12345678901 başka mesaj")
    smsc.deliver(other)
    assert inbox.messages[2].provider_message_id != first.provider_message_id


def test_a_failing_callback_asks_the_smsc_to_deliver_again(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox
) -> None:
    inbox.fail_messages = 1
    pdus = smsc.mo_pdus("+905321234567", "12345678901 " + LONG_TURKISH)
    assert [smsc.deliver(p) for p in pdus] == [ROK, ROK, ESME_RX_T_APPN]
    assert inbox.messages == []
    assert smsc.deliver(pdus[2]) == ROK  # the SMSC's retry of the last part completes it
    assert len(inbox.messages) == 1


def test_an_undecodable_message_is_refused_for_good(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox
) -> None:
    [pdu] = smsc.mo_pdus("+905321234567", "ş")
    pdu.short_message = b"\x01\x5f\x00"  # odd number of octets in UCS-2
    assert smsc.deliver(pdu) == ESME_RX_P_APPN
    assert inbox.messages == []


@pytest.mark.parametrize("with_tlvs", [True, False])
@pytest.mark.parametrize("stat", ["DELIVRD", "UNDELIV", "EXPIRED"])
def test_delivery_receipts_reach_on_receipt(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox, with_tlvs: bool, stat: str
) -> None:
    done = datetime(2026, 11, 24, 7, 31, tzinfo=UTC)
    assert smsc.deliver(smsc.receipt_pdu("msg4242", stat, done, with_tlvs=with_tlvs)) == ROK
    assert inbox.receipts == [("msg4242", stat, done)]
    assert inbox.messages == []


def test_the_receiver_keeps_the_link_alive_and_rebinds_after_a_drop(
    smsc: TestSmsc, receiver: SmppReceiver, inbox: Inbox
) -> None:
    assert smsc.wait_until(lambda: smsc.enquire_links >= 1)  # quiet link: it asks
    smsc.drop_all_sessions()
    assert smsc.wait_until(lambda: len(smsc.binds) == 2)
    [pdu] = smsc.mo_pdus("+905321234567", "12345678901 bağlantı koptu mu")
    assert smsc.deliver(pdu) == ROK
    assert receiver.binds == 2 and len(inbox.messages) == 1


def test_stopping_the_receiver_unbinds(smsc: TestSmsc, inbox: Inbox) -> None:
    handler = DeliverSmHandler(on_message=inbox.on_message, on_receipt=inbox.on_receipt)
    rx = SmppReceiver(_config(smsc), handler, poll_interval=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=rx.run, args=(stop,))
    thread.start()
    assert smsc.wait_until(lambda: len(smsc.binds) == 1)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and smsc.unbinds == 1
