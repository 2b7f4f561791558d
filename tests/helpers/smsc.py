"""A small SMSC speaking SMPP 3.4 over real TCP, for the SMPP adapter's tests.

It binds ESMEs (transmitter, receiver, transceiver; checks system id and password), records
every ``submit_sm`` and answers it with a message id, answers ``enquire_link`` and
``unbind``, and can be told to refuse (an error status), to drop the connection on the next
submit, to stay silent, or to drop every live session. It emits delivery receipts and
mobile-originated messages as ``deliver_sm`` and records the ESME's answers. PDUs are
encoded and decoded with smpplib's PDU classes.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import smpplib.consts as smpp_consts
import smpplib.smpp

from messaging.sms_encoding import decode_body, encode_sms, split_udh

ISTANBUL = ZoneInfo("Europe/Istanbul")


class _Sequence:
    def __init__(self) -> None:
        self.sequence = 0
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            self.sequence += 1
            return self.sequence


@dataclass(frozen=True)
class Submit:
    """One ``submit_sm`` as the SMSC received it."""

    system_id: str
    source_addr: str
    source_addr_ton: int
    destination_addr: str
    dest_addr_ton: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    message_id: str

    @property
    def concatenation(self) -> Any:
        if self.esm_class & 0x40:
            return split_udh(self.short_message)[0]
        return None

    @property
    def text(self) -> str:
        body = self.short_message
        if self.esm_class & 0x40:
            body = split_udh(body)[1]
        return decode_body(body, self.data_coding)


@dataclass
class Session:
    sock: socket.socket
    mode: str | None = None  # "transmitter", "receiver", "transceiver" once bound
    system_id: str = ""
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    @property
    def can_receive(self) -> bool:
        return self.mode in {"receiver", "transceiver"} and not self.closed


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


class TestSmsc:
    """Start with ``with TestSmsc() as smsc:``; ``smsc.port`` is the listening port."""

    __test__ = False  # not a pytest test class

    def __init__(self, system_id: str = "acikkapi", password: str = "secret") -> None:
        self.system_id = system_id
        self.password = password
        self.sequence = _Sequence()
        self.submits: list[Submit] = []  # accepted (including those never answered)
        self.refused: list[Submit] = []  # answered with an error status
        self.binds: list[tuple[str, str]] = []  # (mode, system_id) of successful binds
        self.refused_binds = 0
        self.bind_status = 0  # non-zero: refuse every bind with this status
        self.enquire_links = 0
        self.unbinds = 0
        self.sessions: list[Session] = []
        self._answers: dict[int, int] = {}  # deliver_sm sequence -> deliver_sm_resp status
        self._fail: list[int] = []  # statuses for the next submits
        self._drop_next = 0
        self._silent_next = 0
        self._next_id = 1000
        self._cond = threading.Condition()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)  # so that stopping never waits on accept()
        self.port: int = self._server.getsockname()[1]
        self._running = False
        self._threads: list[threading.Thread] = []

    # --- life cycle ---

    def __enter__(self) -> TestSmsc:
        self._running = True
        accept = threading.Thread(target=self._accept_loop, name="smsc-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self._server.close()
        self.drop_all_sessions()
        for thread in self._threads:
            thread.join(timeout=5)

    # --- what the tests tell it ---

    def fail_next(self, status: int, count: int = 1) -> None:
        with self._cond:
            self._fail.extend([status] * count)

    def drop_on_next_submit(self, count: int = 1) -> None:
        """Close the connection when the next ``submit_sm`` arrives, without answering it."""
        with self._cond:
            self._drop_next += count

    def silent_on_next_submit(self, count: int = 1) -> None:
        """Record the next ``submit_sm`` but never answer it."""
        with self._cond:
            self._silent_next += count

    def drop_all_sessions(self) -> None:
        """Cut every live connection (a network failure as the ESME sees it)."""
        with self._cond:
            sessions = list(self.sessions)
        for session in sessions:
            self._close(session)

    def live_sessions(self) -> list[Session]:
        with self._cond:
            return [s for s in self.sessions if not s.closed and s.mode is not None]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait for ``predicate`` (checked on every SMSC event); False on time-out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.2))
        return True

    # --- what it sends to ESMEs ---

    def receipt_pdu(
        self,
        message_id: str,
        stat: str = "DELIVRD",
        done_at: datetime | None = None,
        *,
        with_tlvs: bool = True,
        recipient: str = "905321234567",
    ) -> Any:
        done = (done_at or datetime.now(UTC)).astimezone(ISTANBUL).strftime("%y%m%d%H%M")
        text = (
            f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:{done} done date:{done} stat:{stat} err:000 text:"
        )
        fields: dict[str, Any] = {
            "service_type": "",
            "source_addr_ton": smpp_consts.SMPP_TON_INTL,
            "source_addr_npi": smpp_consts.SMPP_NPI_ISDN,
            "source_addr": recipient,
            "dest_addr_ton": smpp_consts.SMPP_TON_ALNUM,
            "dest_addr_npi": smpp_consts.SMPP_NPI_UNK,
            "destination_addr": "ACIKKAPI",
            "esm_class": 0x04,
            "data_coding": 0,
            "short_message": text.encode("ascii"),
        }
        if with_tlvs:
            states = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "REJECTD": 8}
            fields["receipted_message_id"] = message_id
            fields["message_state"] = states.get(stat, 7)
        return smpplib.smpp.make_pdu("deliver_sm", client=self.sequence, **fields)

    def mo_pdus(
        self, source: str, text: str, destination: str = "4448007", *, reference: int = 7
    ) -> list[Any]:
        """The ``deliver_sm`` PDUs of a message a citizen sends (concatenated if long)."""
        encoded = encode_sms(text, reference=reference)
        international = source.startswith("+")
        return [
            smpplib.smpp.make_pdu(
                "deliver_sm",
                client=self.sequence,
                service_type="",
                source_addr_ton=smpp_consts.SMPP_TON_INTL
                if international
                else smpp_consts.SMPP_TON_UNK,
                source_addr_npi=smpp_consts.SMPP_NPI_ISDN,
                source_addr=source.removeprefix("+"),
                dest_addr_ton=smpp_consts.SMPP_TON_UNK,
                dest_addr_npi=smpp_consts.SMPP_NPI_ISDN,
                destination_addr=destination,
                esm_class=encoded.esm_class,
                data_coding=encoded.data_coding,
                short_message=part.payload,
            )
            for part in encoded.parts
        ]

    def deliver(self, pdu: Any, session: Session | None = None, timeout: float = 10.0) -> int:
        """Send ``pdu`` to ``session`` (default: the newest session that can receive) and
        return the status of the ESME's ``deliver_sm_resp``."""
        target = session or self._receiver()
        pdu.sequence = self.sequence.next_sequence()  # a re-delivery is a new PDU
        self._write(target, pdu)
        if not self.wait_until(lambda: pdu.sequence in self._answers, timeout):
            raise TimeoutError(f"no deliver_sm_resp for sequence {pdu.sequence}")
        with self._cond:
            return self._answers[pdu.sequence]

    def _receiver(self) -> Session:
        if not self.wait_until(lambda: any(s.can_receive for s in self.sessions)):
            raise TimeoutError("no ESME bound as receiver or transceiver")
        with self._cond:
            return [s for s in self.sessions if s.can_receive][-1]

    # --- the server ---

    def _accept_loop(self) -> None:
        while self._running:
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            session = Session(sock=sock)
            with self._cond:
                self.sessions.append(session)
                self._cond.notify_all()
            thread = threading.Thread(target=self._serve, args=(session,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read_pdu(self, session: Session) -> Any | None:
        header = self._recv(session.sock, 4)
        if header is None:
            return None
        (length,) = struct.unpack(">L", header)
        rest = self._recv(session.sock, length - 4)
        if rest is None:
            return None
        return smpplib.smpp.parse_pdu(
            header + rest, client=self.sequence, allow_unknown_opt_params=True
        )

    @staticmethod
    def _recv(sock: socket.socket, size: int) -> bytes | None:
        chunks = b""
        while len(chunks) < size:
            try:
                chunk = sock.recv(size - len(chunks))
            except OSError:
                return None
            if not chunk:
                return None
            chunks += chunk
        return chunks

    def _write(self, session: Session, pdu: Any) -> None:
        data = pdu.generate()
        with session.write_lock:
            session.sock.sendall(data)

    def _respond(self, session: Session, request: Any, command: str, **fields: Any) -> None:
        pdu = smpplib.smpp.make_pdu(command, client=self.sequence, **fields)
        pdu.sequence = request.sequence
        self._write(session, pdu)

    def _close(self, session: Session) -> None:
        with self._cond:
            session.closed = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            session.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            session.sock.close()

    def _serve(self, session: Session) -> None:
        try:
            while self._running and not session.closed:
                pdu = self._read_pdu(session)
                if pdu is None:
                    break
                self._handle(session, pdu)
        except OSError:
            pass
        finally:
            self._close(session)

    def _handle(self, session: Session, pdu: Any) -> None:
        command = pdu.command
        if command.startswith("bind_"):
            mode = command.removeprefix("bind_")
            ok = _text(pdu.system_id) == self.system_id and _text(pdu.password) == self.password
            status = smpp_consts.SMPP_ESME_ROK if ok else smpp_consts.SMPP_ESME_RINVPASWD
            if ok and self.bind_status:
                ok, status = False, self.bind_status
            with self._cond:  # recorded before the answer: the ESME may look at once
                if ok:
                    session.mode, session.system_id = mode, _text(pdu.system_id)
                    self.binds.append((mode, session.system_id))
                else:
                    self.refused_binds += 1
                self._cond.notify_all()
            self._respond(session, pdu, f"{command}_resp", status=status, system_id="TESTSMSC")
        elif command == "submit_sm":
            self._submit(session, pdu)
        elif command == "enquire_link":
            with self._cond:
                self.enquire_links += 1
                self._cond.notify_all()
            self._respond(session, pdu, "enquire_link_resp")
        elif command == "unbind":
            with self._cond:
                self.unbinds += 1
            self._respond(session, pdu, "unbind_resp")
            self._close(session)
        elif command == "deliver_sm_resp":
            with self._cond:
                self._answers[pdu.sequence] = int(pdu.status)
                self._cond.notify_all()
        elif command == "enquire_link_resp":
            pass
        else:
            self._respond(session, pdu, "generic_nack", status=smpp_consts.SMPP_ESME_RINVCMDID)

    def _submit(self, session: Session, pdu: Any) -> None:
        with self._cond:
            drop = self._drop_next > 0
            self._drop_next -= 1 if drop else 0
            silent = not drop and self._silent_next > 0
            self._silent_next -= 1 if silent else 0
            status = self._fail.pop(0) if not (drop or silent) and self._fail else 0
            if session.mode not in {"transmitter", "transceiver"}:
                status = smpp_consts.SMPP_ESME_RINVBNDSTS
            message_id = ""
            if not (drop or status):  # a silent SMSC accepted the message, the answer is lost
                self._next_id += 1
                message_id = f"msg{self._next_id}"
        if drop:
            self._close(session)
            with self._cond:
                self._cond.notify_all()
            return
        submit = Submit(
            system_id=session.system_id,
            source_addr=_text(pdu.source_addr),
            source_addr_ton=int(pdu.source_addr_ton or 0),
            destination_addr=_text(pdu.destination_addr),
            dest_addr_ton=int(pdu.dest_addr_ton or 0),
            esm_class=int(pdu.esm_class or 0),
            data_coding=int(pdu.data_coding or 0),
            registered_delivery=int(pdu.registered_delivery or 0),
            short_message=pdu.short_message or b"",
            message_id=message_id,
        )
        with self._cond:
            (self.submits if message_id else self.refused).append(submit)
            self._cond.notify_all()
        if silent:
            return
        self._respond(session, pdu, "submit_sm_resp", status=status, message_id=message_id)
