"""SMPP receiver: delivery receipts and citizens' messages from ``deliver_sm`` (issue 5).

:class:`DeliverSmHandler` turns one ``deliver_sm`` into a callback and returns the status
for its ``deliver_sm_resp``:

- a delivery receipt (``esm_class`` bit 0x04) → ``on_receipt(provider_message_id, state,
  done_at)``; the id and state come from the ``receipted_message_id`` / ``message_state``
  TLVs when present, else from the receipt text (``id:… stat:DELIVRD … done date:…``);
  ``state`` is the SMPP word (``DELIVRD``, ``UNDELIV``…), ``done_at`` is read in the SMSC's
  time zone and returned aware;
- a mobile-originated message → ``on_message(InboundSms)`` once all its parts arrived
  (concatenated messages are reassembled by UDH reference); its provider id is
  ``smpp-<hash of sender, short number, local date and text>``, so an SMSC re-delivering
  the same message gives the same id and the channel ignores it.

A callback that raises makes the answer ``ESME_RX_T_APPN`` (temporary): the SMSC delivers
the message again later, so a database outage loses nothing. A message that cannot be
decoded is answered ``ESME_RX_P_APPN`` (the SMSC gives up; retrying cannot help).

:class:`SmppReceiver` keeps one bound session open (``bind_transceiver``), answers
``enquire_link``, sends its own when the link is quiet and re-binds with capped exponential
backoff when the link drops, until its stop event is set.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from messaging.delivery import DeliveryError
from messaging.sms_encoding import Concatenation, decode_body, split_udh
from messaging.sms_smpp import (
    ESME_RX_P_APPN,
    ESME_RX_T_APPN,
    ROK,
    BindMode,
    LinkLost,
    SmppConfig,
    SmppLink,
)
from services.sms_channel import InboundSms

log = logging.getLogger(__name__)

ESM_CLASS_RECEIPT = 0x04  # SMSC delivery receipt (esm_class message type bits 2-5 = 0001)
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_UDHI = 0x40
TON_INTERNATIONAL = 1
MAX_PENDING_MESSAGES = 256  # incomplete concatenated messages kept in memory

# SMPP 3.4 message_state values (TLV 0x0427) and the receipt-text words they stand for.
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_RECEIPT_FIELD = re.compile(
    r"(?P<name>id|sub|dlvrd|submit date|done date|stat|err):\s*(?P<value>\S*)", re.IGNORECASE
)

ReceiptCallback = Callable[[str, str, datetime | None], None]
MessageCallback = Callable[[InboundSms], None]


@dataclass(frozen=True)
class DeliveryReceipt:
    provider_message_id: str
    state: str  # SMPP word: DELIVRD, UNDELIV, EXPIRED...
    done_at: datetime | None
    error: str | None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00")
    return str(value)


def _receipt_time(value: str, tz: ZoneInfo) -> datetime | None:
    """``YYMMDDhhmm`` or ``YYMMDDhhmmss`` in the SMSC's local time → aware UTC."""
    if not value.isdigit() or len(value) not in (10, 12):
        return None
    fmt = "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M"
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


def parse_receipt(pdu: Any, tz: ZoneInfo) -> DeliveryReceipt | None:
    """The receipt carried by ``pdu``, or None when it names no message."""
    text = _text(pdu.short_message) or _text(getattr(pdu, "message_payload", None))
    fields = {m["name"].lower(): m["value"] for m in _RECEIPT_FIELD.finditer(text)}
    message_id = _text(getattr(pdu, "receipted_message_id", None)) or fields.get("id", "")
    state_code = getattr(pdu, "message_state", None)
    state = MESSAGE_STATES.get(state_code, "") if isinstance(state_code, int) else ""
    state = state or fields.get("stat", "").upper() or "UNKNOWN"
    if not message_id:
        return None
    return DeliveryReceipt(
        provider_message_id=message_id,
        state=state,
        done_at=_receipt_time(fields.get("done date", ""), tz),
        error=fields.get("err"),
    )


def _sender(pdu: Any) -> str:
    address = _text(pdu.source_addr).strip()
    if pdu.source_addr_ton == TON_INTERNATIONAL and address.isdigit():
        return "+" + address
    return address


class DeliverSmHandler:
    """Turns ``deliver_sm`` PDUs into callbacks; see the module docstring."""

    def __init__(
        self,
        *,
        on_message: MessageCallback,
        on_receipt: ReceiptCallback,
        timezone: str = "Europe/Istanbul",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.on_message = on_message
        self.on_receipt = on_receipt
        self.tz = ZoneInfo(timezone)
        self._clock = clock
        self._pending: OrderedDict[tuple[str, str, int, int], dict[int, str]] = OrderedDict()

    def __call__(self, pdu: Any) -> int:
        return self.handle(pdu)

    def handle(self, pdu: Any) -> int:
        """Process one ``deliver_sm``; returns the ``deliver_sm_resp`` status."""
        esm_class = int(pdu.esm_class or 0)
        if (esm_class & ESM_CLASS_TYPE_MASK) == ESM_CLASS_RECEIPT:
            receipt = parse_receipt(pdu, self.tz)
            if receipt is None:
                log.warning("delivery receipt without a message id: %r", pdu.short_message)
                return ROK
            return self._call(
                self.on_receipt, receipt.provider_message_id, receipt.state, receipt.done_at
            )
        try:
            payload = pdu.short_message or getattr(pdu, "message_payload", None) or b""
            concat: Concatenation | None = None
            if esm_class & ESM_CLASS_UDHI:
                concat, payload = split_udh(payload)
            text = decode_body(payload, int(pdu.data_coding or 0))
        except ValueError:
            log.warning("undecodable message from %r dropped", pdu.source_addr, exc_info=True)
            return ESME_RX_P_APPN
        sender = _sender(pdu)
        destination = _text(pdu.destination_addr)
        if concat is not None and concat.total > 1:
            key = (sender, destination, concat.reference, concat.total)
            parts = self._pending.setdefault(key, {})
            self._pending.move_to_end(key)
            parts[concat.number] = text
            while len(self._pending) > MAX_PENDING_MESSAGES:
                dropped, _ = self._pending.popitem(last=False)
                log.warning("incomplete concatenated message from %s dropped", dropped[0])
            if len(parts) < concat.total:
                return ROK  # the whole message is handed over with its last part
            text = "".join(parts[n] for n in sorted(parts))
        received_at = self._clock()
        message = InboundSms(
            sender=sender,
            text=text,
            provider_message_id=mo_message_id(sender, destination, text, received_at, self.tz),
            received_at=received_at,
        )
        status = self._call(self.on_message, message)
        if status == ROK and concat is not None:
            self._pending.pop((sender, destination, concat.reference, concat.total), None)
        return status

    def _call(self, callback: Callable[..., None], *args: Any) -> int:
        try:
            callback(*args)
        except Exception:
            log.exception("deliver_sm callback failed; the SMSC will deliver it again")
            return ESME_RX_T_APPN
        return ROK


def mo_message_id(
    sender: str, destination: str, text: str, received_at: datetime, tz: ZoneInfo
) -> str:
    """Stable id of a mobile-originated message (SMPP 3.4 gives MO messages none).

    The same text from the same number to the same short number on the same local day is
    one message: an SMSC re-delivery is recognised; a citizen repeating a text on another
    day is heard again.
    """
    day = received_at.astimezone(tz).date().isoformat()
    digest = hashlib.sha256("\x1f".join((sender, destination, day, text)).encode("utf-8"))
    return f"smpp-{digest.hexdigest()[:32]}"


class SmppReceiver:
    """Keeps an SMPP session bound and feeds ``deliver_sm`` to ``handler`` until stopped."""

    def __init__(
        self,
        config: SmppConfig,
        handler: Callable[[Any], int],
        *,
        bind: BindMode = "transceiver",
        poll_interval: float = 0.5,
        first_retry: float = 0.5,
        max_retry: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.handler = handler
        self.bind_mode = bind
        self.poll_interval = poll_interval
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._clock = clock
        self.binds = 0  # successful binds (a re-bind after a dropped link counts again)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; the session is unbound before returning."""
        delay = self.first_retry
        while not stop.is_set():
            link = SmppLink(self.config, bind=self.bind_mode, clock=self._clock)
            try:
                link.open()
            except DeliveryError as exc:
                log.warning("SMPP receiver cannot bind (%s); retrying in %.1f s", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, self.max_retry)
                continue
            self.binds += 1
            delay = self.first_retry
            try:
                self._serve(link, stop)
            except LinkLost as exc:
                log.warning("SMPP receiver lost its link (%s); re-binding", exc)
            finally:
                link.close()

    def _serve(self, link: SmppLink, stop: threading.Event) -> None:
        enquiry: tuple[int, float] | None = None  # (sequence, sent at)
        while not stop.is_set():
            pdu = link.read(self.poll_interval)
            now = self._clock()
            if pdu is None:
                if enquiry is not None and now - enquiry[1] > self.config.timeout:
                    raise LinkLost("no enquire_link_resp")
                if enquiry is None and link.idle_for() >= self.config.enquire_link_interval:
                    request = link.make("enquire_link")
                    link.send(request)
                    enquiry = (request.sequence, now)
                continue
            if pdu.command == "deliver_sm":
                status = self.handler(pdu)
                link.respond(pdu, "deliver_sm_resp", status=status)
            elif pdu.command == "enquire_link_resp":
                enquiry = None
            elif not link.serve_control(pdu):
                log.info("SMPP receiver ignores %s", pdu.command)
