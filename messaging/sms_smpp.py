"""SMPP 3.4 SMS gateway over smpplib (issue 5).

:class:`SmppLink` is one bound session (``bind_transceiver`` by default) built on smpplib's
``Client`` for the socket and PDU encoding; it adds bounded reads (``select`` before every
read, so a silent SMSC never blocks a worker), and turns every socket or framing problem
into :class:`LinkLost`. :class:`SmppSmsGateway` sends one message at a time:

- parts from :mod:`messaging.sms_encoding`: ``data_coding`` 0 (GSM-7) or 8 (UCS-2),
  concatenation by UDH (``esm_class`` 0x40) with a reference derived from the idempotency
  key, ``registered_delivery`` 1 so the SMSC sends a delivery receipt;
- one ``submit_sm`` at a time, waiting for its ``submit_sm_resp`` (answering
  ``enquire_link`` meanwhile); the result carries the first part's ``message_id``;
- error statuses → :class:`DeliveryError` (permanent ones, such as an invalid destination or
  bad credentials, are not retryable; throttling, queue full and system errors are);
- after a failed connect or bind, messages fail fast (retryable) for ``reconnect_backoff``
  seconds, so a batch never waits out one connect time-out per message;
- a link idle for longer than the enquire-link interval is checked with ``enquire_link``
  before use and re-bound if dead; a link found dead before the first ``submit_sm`` was
  written is re-opened once and the message sent; once a ``submit_sm`` is on the wire, a
  lost link or a missing answer raises a retryable error (the SMSC may or may not have the
  message: SMPP has no idempotency key, so the retry is at-least-once).

``deliver_sm`` PDUs that arrive on the gateway's session go to ``on_deliver`` when given
(see :mod:`messaging.sms_smpp_receiver`); otherwise they are answered with
``ESME_RX_T_APPN`` (temporary error) so the SMSC delivers them again, to the listener.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import smpplib.client  # type: ignore[import-untyped]
import smpplib.consts  # type: ignore[import-untyped]
import smpplib.exceptions  # type: ignore[import-untyped]
import smpplib.smpp  # type: ignore[import-untyped]

from messaging.delivery import DeliveryError, OutgoingSms, SendResult
from messaging.sms_gateway import prepare

if TYPE_CHECKING:
    from acikkapi.settings import Settings

log = logging.getLogger(__name__)

C = smpplib.consts
ROK: Final[int] = C.SMPP_ESME_ROK
ESME_RX_T_APPN: Final[int] = C.SMPP_ESME_RX_T_APPN  # "try again later"
ESME_RX_P_APPN: Final[int] = C.SMPP_ESME_RX_P_APPN  # "never deliver this again"

# Statuses a retry cannot fix: the message, the addresses or the account are wrong.
PERMANENT_STATUSES: Final = frozenset(
    {
        C.SMPP_ESME_RINVMSGLEN,
        C.SMPP_ESME_RINVCMDLEN,
        C.SMPP_ESME_RINVCMDID,
        C.SMPP_ESME_RINVPRTFLG,
        C.SMPP_ESME_RINVREGDLVFLG,
        C.SMPP_ESME_RINVSRCADR,
        C.SMPP_ESME_RINVDSTADR,
        C.SMPP_ESME_RINVPASWD,
        C.SMPP_ESME_RINVSYSID,
        C.SMPP_ESME_RINVSERTYP,
        C.SMPP_ESME_RINVESMCLASS,
        C.SMPP_ESME_RINVSRCTON,
        C.SMPP_ESME_RINVSRCNPI,
        C.SMPP_ESME_RINVDSTTON,
        C.SMPP_ESME_RINVDSTNPI,
        C.SMPP_ESME_RINVSYSTYP,
        C.SMPP_ESME_RINVDFTMSGID,
        C.SMPP_ESME_RX_P_APPN,
        C.SMPP_ESME_RX_R_APPN,
        C.SMPP_ESME_RINVOPTPARSTREAM,
        C.SMPP_ESME_ROPTPARNOTALLWD,
        C.SMPP_ESME_RINVPARLEN,
        C.SMPP_ESME_RMISSINGOPTPARAM,
        C.SMPP_ESME_RINVOPTPARAMVAL,
    }
)
# Statuses after which the session itself is suspect: re-bind before the next message.
_REBIND_STATUSES: Final = frozenset({C.SMPP_ESME_RINVBNDSTS, C.SMPP_ESME_RSYSERR})

BindMode = Literal["transceiver", "transmitter", "receiver"]


def status_text(status: int) -> str:
    return f"0x{status:08X} {C.DESCRIPTIONS.get(status, 'unknown status')}"


def is_retryable(status: int) -> bool:
    """True unless ``status`` says the message or the account is wrong. Unknown statuses
    are retryable: the dispatcher's attempt limit bounds them, no message is dropped early."""
    return status not in PERMANENT_STATUSES


class LinkLost(Exception):
    """The SMPP session is unusable (socket closed, time-out mid-PDU, unreadable PDU)."""


@dataclass(frozen=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    timeout: float = 10.0  # connect, bind and submit_sm_resp
    enquire_link_interval: float = 30.0  # idle time before the link is checked

    def __post_init__(self) -> None:
        # SMPP 3.4 field sizes; smpplib would silently cut longer values.
        if len(self.system_id) > 15 or len(self.password) > 8 or len(self.system_type) > 12:
            raise ValueError("SMPP system id (15), password (8) or system type (12) is too long")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmppConfig:
        return cls(
            host=settings.smpp_host,
            port=settings.smpp_port,
            system_id=settings.smpp_system_id,
            password=settings.smpp_password,
        )


class _Sequence:
    """Sequence numbers 1..0x7FFFFFFF, as smpplib's PDUs ask their client for them."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence


class SmppLink:
    """One bound SMPP session. Not thread-safe: one user at a time."""

    def __init__(
        self,
        config: SmppConfig,
        *,
        bind: BindMode = "transceiver",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.bind_mode = bind
        self._clock = clock
        self._client: Any = None
        self.last_io = clock()

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def idle_for(self) -> float:
        return self._clock() - self.last_io

    def open(self) -> None:
        """Connect and bind. Raises :class:`DeliveryError` (bad credentials: not retryable)."""
        self.close()
        client = smpplib.client.Client(
            self.config.host,
            self.config.port,
            timeout=self.config.timeout,
            sequence_generator=_Sequence(),
            allow_unknown_opt_params=True,
        )
        try:
            client.connect()
            binder = getattr(client, f"bind_{self.bind_mode}")
            binder(
                system_id=self.config.system_id,
                password=self.config.password,
                system_type=self.config.system_type,
            )
        except smpplib.exceptions.PDUError as exc:
            _disconnect(client)
            status = exc.args[1] if len(exc.args) > 1 else C.SMPP_ESME_RBINDFAIL
            raise DeliveryError(
                f"SMPP bind refused: {status_text(status)}", retryable=is_retryable(status)
            ) from exc
        except (smpplib.exceptions.ConnectionError, OSError, ValueError) as exc:
            _disconnect(client)
            raise DeliveryError(
                f"SMPP connection to {self.config.host}:{self.config.port} failed: {exc!r}"
            ) from exc
        self._client = client
        self.last_io = self._clock()
        log.info("SMPP bound (%s) to %s:%s", self.bind_mode, self.config.host, self.config.port)

    def make(self, command: str, **fields: Any) -> Any:
        """A request PDU with the next sequence number."""
        return smpplib.smpp.make_pdu(command, client=self._require(), **fields)

    def send(self, pdu: Any) -> None:
        client = self._require()
        try:
            client.send_pdu(pdu)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
            self.close(unbind=False)
            raise LinkLost(f"send failed: {exc!r}") from exc
        self.last_io = self._clock()

    def respond(self, request: Any, command: str, status: int = ROK, **fields: Any) -> None:
        """Answer ``request`` with its sequence number."""
        pdu = smpplib.smpp.make_pdu(command, client=self._require(), status=status, **fields)
        pdu.sequence = request.sequence
        self.send(pdu)

    def read(self, timeout: float) -> Any | None:
        """The next PDU, or None when nothing arrived within ``timeout`` seconds."""
        client = self._require()
        try:
            ready, _, _ = select.select([client._socket], [], [], max(timeout, 0.0))
        except (OSError, ValueError) as exc:
            self.close(unbind=False)
            raise LinkLost(f"select failed: {exc!r}") from exc
        if not ready:
            return None
        try:
            pdu = client.read_pdu()
        except Exception as exc:  # closed socket, time-out mid-PDU, unparsable PDU
            self.close(unbind=False)
            raise LinkLost(f"read failed: {exc!r}") from exc
        if pdu is None:
            self.close(unbind=False)
            raise LinkLost("unknown PDU")
        self.last_io = self._clock()
        return pdu

    def serve_control(self, pdu: Any) -> bool:
        """Answer the session-level requests every user must answer; True if handled.

        ``enquire_link`` is answered; an ``unbind`` from the SMSC is answered and the link
        is then closed (:class:`LinkLost`).
        """
        if pdu.command == "enquire_link":
            self.respond(pdu, "enquire_link_resp")
            return True
        if pdu.command == "unbind":
            self.respond(pdu, "unbind_resp")
            self.close(unbind=False)
            raise LinkLost("SMSC unbound the session")
        return pdu.command in {"enquire_link_resp", "generic_nack", "unbind_resp"}

    def enquire(self) -> bool:
        """Round-trip an ``enquire_link``; False (and the link closed) when it fails."""
        try:
            request = self.make("enquire_link")
            self.send(request)
            deadline = self._clock() + self.config.timeout
            while (remaining := deadline - self._clock()) > 0:
                pdu = self.read(remaining)
                if pdu is None:
                    break
                if pdu.command == "enquire_link_resp" and pdu.sequence == request.sequence:
                    return True
                self.serve_control(pdu)
        except LinkLost:
            return False
        self.close(unbind=False)
        return False

    def close(self, *, unbind: bool = True) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if unbind:
            try:
                request = smpplib.smpp.make_pdu("unbind", client=client)
                client.send_pdu(request)
                deadline = self._clock() + min(self.config.timeout, 2.0)
                while (remaining := deadline - self._clock()) > 0:
                    ready, _, _ = select.select([client._socket], [], [], remaining)
                    if not ready or client.read_pdu().command == "unbind_resp":
                        break
            except Exception:  # best effort: the socket is closed below either way
                log.debug("SMPP unbind did not complete", exc_info=True)
        _disconnect(client)

    def _require(self) -> Any:
        if self._client is None:
            raise LinkLost("not connected")
        return self._client


def _disconnect(client: Any) -> None:
    try:
        if client._socket is not None:
            client._socket.close()
    except OSError:
        pass
    client._socket = None
    client.state = C.SMPP_CLIENT_STATE_CLOSED


def source_address(sender: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for the originator: alphanumeric, international or short code."""
    text = (sender or "").strip()
    if text.startswith("+") and text[1:].isdigit():
        return C.SMPP_TON_INTL, C.SMPP_NPI_ISDN, text[1:]
    if text.isascii() and text.isdigit() and len(text) <= 20:
        return C.SMPP_TON_UNK, C.SMPP_NPI_ISDN, text
    if text and text.isascii() and text.isprintable() and len(text) <= 11:
        return C.SMPP_TON_ALNUM, C.SMPP_NPI_UNK, text
    raise DeliveryError(
        f"sender {sender!r} is not a valid SMS originator (digits, or 1-11 ASCII characters)",
        retryable=False,
    )


class SmppSmsGateway:
    """Sends SMS through one SMPP session, opened on first use; see the module docstring."""

    def __init__(
        self,
        config: SmppConfig,
        *,
        on_deliver: Callable[[Any], int] | None = None,
        bind: BindMode = "transceiver",
        reconnect_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.on_deliver = on_deliver
        self.reconnect_backoff = reconnect_backoff
        self._clock = clock
        self._link = SmppLink(config, bind=bind, clock=clock)
        self._lock = threading.Lock()
        self._down_until = float("-inf")

    def send(self, sms: OutgoingSms) -> SendResult:
        encoded = prepare(sms)
        ton, npi, source = source_address(sms.sender)
        destination = sms.recipient.removeprefix("+")
        with self._lock:
            ids: list[str] = []
            reopened = False
            index = 0
            while index < len(encoded.parts):
                part = encoded.parts[index]
                link = self._usable_link()
                request = link.make(
                    "submit_sm",
                    service_type="",
                    source_addr_ton=ton,
                    source_addr_npi=npi,
                    source_addr=source,
                    dest_addr_ton=C.SMPP_TON_INTL,
                    dest_addr_npi=C.SMPP_NPI_ISDN,
                    destination_addr=destination,
                    esm_class=encoded.esm_class,
                    registered_delivery=C.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
                    data_coding=encoded.data_coding,
                    short_message=part.payload,
                )
                try:
                    link.send(request)
                except LinkLost as exc:
                    if index == 0 and not reopened:  # nothing of this message is out yet
                        reopened = True
                        continue
                    raise DeliveryError(
                        f"SMPP link lost while sending part {index + 1}: {exc}"
                    ) from exc
                ids.append(self._await_submit_resp(link, request, index + 1))
                index += 1
        return SendResult(provider_message_id=ids[0], parts=len(ids))

    def _usable_link(self) -> SmppLink:
        """The bound link, checked: whatever the SMSC sent meanwhile is served (a closed
        socket shows up here, before anything is submitted); a link idle for longer than
        the enquire-link interval must answer ``enquire_link``; a dead link is re-bound."""
        link = self._link
        try:
            while link.is_open and (pdu := link.read(0)) is not None:
                self._serve(link, pdu)
        except LinkLost as exc:
            log.warning("SMPP link closed while idle (%s); re-binding", exc)
        idle = link.is_open and link.idle_for() >= self.config.enquire_link_interval
        if idle and not link.enquire():
            log.warning("SMPP link did not answer enquire_link; re-binding")
        if not link.is_open:
            if self._clock() < self._down_until:  # a batch must not wait on a dead SMSC
                raise DeliveryError("SMSC unreachable moments ago; not trying again yet")
            try:
                link.open()
            except DeliveryError as exc:
                if exc.retryable:
                    self._down_until = self._clock() + self.reconnect_backoff
                raise
        return link

    def _serve(self, link: SmppLink, pdu: Any) -> None:
        if pdu.command == "deliver_sm":
            link.respond(pdu, "deliver_sm_resp", status=self._deliver(pdu))
        elif not link.serve_control(pdu):
            log.info("SMPP: ignoring unexpected %s", pdu.command)

    def _await_submit_resp(self, link: SmppLink, request: Any, number: int) -> str:
        deadline = self._clock() + self.config.timeout
        try:
            while (remaining := deadline - self._clock()) > 0:
                pdu = link.read(remaining)
                if pdu is None:
                    break
                if pdu.sequence == request.sequence and pdu.command in {
                    "submit_sm_resp",
                    "generic_nack",
                }:
                    return self._accepted(link, pdu, number)
                self._serve(link, pdu)
        except LinkLost as exc:
            raise DeliveryError(
                f"SMPP link lost before submit_sm_resp of part {number} (outcome unknown): {exc}"
            ) from exc
        link.close(unbind=False)  # the answer may still come: never mix it with the next one
        raise DeliveryError(f"no submit_sm_resp for part {number} in {self.config.timeout} s")

    def _accepted(self, link: SmppLink, pdu: Any, number: int) -> str:
        status = int(pdu.status)
        if pdu.command == "generic_nack" or status != ROK:
            if status in _REBIND_STATUSES or pdu.command == "generic_nack":
                link.close()
            raise DeliveryError(
                f"SMSC refused part {number}: {status_text(status)}",
                retryable=is_retryable(status),
            )
        raw = pdu.message_id or b""
        message_id = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        if not message_id:
            raise DeliveryError(f"SMSC accepted part {number} without a message_id")
        return message_id

    def _deliver(self, pdu: Any) -> int:
        if self.on_deliver is None:
            return ESME_RX_T_APPN  # not ours to handle: the SMSC retries, to the listener
        try:
            return self.on_deliver(pdu)
        except Exception:
            log.exception("deliver_sm handler failed on the sending session")
            return ESME_RX_T_APPN

    def close(self) -> None:
        with self._lock:
            self._link.close()
