"""The console's side of the PBX: a small blocking AMI client for the user ``console``
(read ``call,agent``; write ``agent,call`` — asterisk-conf/manager.conf.in).

Each operation opens a connection, logs in with ``Events: off``, sends its actions (matched
to replies by ``ActionID``), logs off and closes: a console action is rare and short, and
a fresh connection cannot be left half-open between requests. Every read has a deadline;
a PBX that does not answer becomes :class:`PbxUnavailable`, a refused action
:class:`PbxRefused` (both typed domain errors with Turkish and English messages).

Queue membership follows docs/telephony.md: members are static, so signing in to the queues
tries ``QueueAdd`` (for dynamic members) and then unpauses; signing out tries
``QueueRemove`` and otherwise pauses with the reason :data:`SIGNED_OUT`. Pausing with a
reason (break, lunch, training, wrap-up) is ``QueuePause`` — the reason is in queue_log and
``QueueStatus``, so Asterisk stays the one source of truth for agent states (R4.6).
Transfers use ``BlindTransfer`` on the agent's leg, so the PBX reports the transfer and the
AMI listener writes it into the call's transfer chain (R4.2).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from acikkapi.settings import Settings
from models import CallRecord, StaffUser
from services.errors import DomainError, InvalidField

Message = dict[str, str]

SIGNED_OUT = "oturum-kapali"
WRAP_UP = "son-islem"
INTERNAL_CONTEXT = "acikkapi-internal"  # the dialplan context of staff phones and transfers
MAX_FRAME = 64 * 1024
_ids = itertools.count(1)


class PbxUnavailable(DomainError):
    code = "pbx_unavailable"


class PbxRefused(DomainError):
    code = "pbx_refused"


def _unavailable(detail: str) -> PbxUnavailable:
    return PbxUnavailable(
        "Santral (Asterisk) şu anda yanıt vermiyor; lütfen biraz sonra yeniden deneyin.",
        "The PBX (Asterisk) is not answering; please try again shortly.",
        detail=detail,
    )


def parse_frame(frame: bytes) -> Message:
    """``Key: value`` lines of one AMI frame (the first value of a repeated key wins, except
    ``ChanVariable`` entries, which become ``ChanVariable(NAME)`` keys)."""
    message: Message = {}
    for line in frame.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "ChanVariable" and "=" in value:
            name, _eq, var = value.partition("=")
            message[f"ChanVariable({name})"] = var
        else:
            message.setdefault(key, value)
    return message


def int_field(value: str | None) -> int:
    """An integer field of an AMI event (``0`` when missing or malformed)."""
    try:
        return int(value or 0)
    except ValueError:
        return 0


def member_interface(event: Message) -> str:
    """The interface of a ``QueueMember`` event (``PJSIP/1001``)."""
    return event.get("Location") or event.get("Interface") or ""


@dataclass(frozen=True)
class MemberState:
    """One queue membership of an interface, from ``QueueStatus`` (``QueueMember``)."""

    queue: str
    interface: str
    paused: bool
    reason: str
    in_call: bool
    device_status: int  # Asterisk device state: 1 idle, 2 in use, 5 unavailable, 6 ringing...

    @classmethod
    def from_event(cls, event: Message) -> MemberState:
        """The membership a ``QueueMember`` event describes."""
        return cls(
            queue=event.get("Queue", ""),
            interface=member_interface(event),
            paused=event.get("Paused") == "1",
            reason=event.get("PausedReason", ""),
            in_call=event.get("InCall") == "1",
            device_status=int_field(event.get("Status")),
        )

    @property
    def signed_out(self) -> bool:
        return self.paused and self.reason == SIGNED_OUT


@dataclass(frozen=True)
class AgentState:
    """An agent's state over all their queues (the agent screen and the wallboard)."""

    code: str  # ready, in_call, paused, wrap_up, signed_out, phone_offline, no_queue, unknown
    reason: str
    queues: tuple[str, ...]


def summarise(members: list[MemberState]) -> AgentState:
    """One state for the memberships of one interface: signed out of every queue, paused
    (with its reason; wrap-up is a pause), in a call, phone offline, else ready."""
    queues = tuple(m.queue for m in members)
    if not members:
        return AgentState("no_queue", "", queues)
    if all(m.signed_out for m in members):
        return AgentState("signed_out", "", queues)
    paused = [m for m in members if m.paused]
    if paused:
        reason = paused[0].reason
        return AgentState("wrap_up" if reason == WRAP_UP else "paused", reason, queues)
    if any(m.in_call for m in members) or any(m.device_status in (2, 3, 6, 7) for m in members):
        return AgentState("in_call", "", queues)
    if all(m.device_status in (4, 5) for m in members):
        return AgentState("phone_offline", "", queues)
    return AgentState("ready", "", queues)


def call_id_of(channel: Message) -> str:
    """The ``CALL_ID`` of a ``Status`` event (``ChanVariable`` or ``Variable`` form)."""
    value = channel.get("ChanVariable(CALL_ID)", "")
    if not value:
        name, _sep, var = channel.get("Variable", "").partition("=")
        value = var if name == "CALL_ID" else ""
    return value


def interface_of(staff: StaffUser) -> str | None:
    """The PBX interface of ``staff``'s phone (``PJSIP/1001``), if they have one."""
    return f"PJSIP/{staff.sip_extension}" if staff.sip_extension else None


def require_interface(staff: StaffUser) -> str:
    """:func:`interface_of`, or :class:`InvalidField` for a user without an extension."""
    interface = interface_of(staff)
    if interface is None:
        raise InvalidField(
            "Size tanımlı bir dahili numara yok.",
            "You have no phone extension.",
            field="sip_extension",
        )
    return interface


class ConsoleAmi:
    """Blocking AMI operations for the console (see the module doc)."""

    def __init__(
        self, host: str, port: int, username: str, secret: str, timeout: float = 3.0
    ) -> None:
        self.host, self.port = host, port
        self.username, self.secret = username, secret
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleAmi:
        from telephony.secrets import load_secrets

        try:
            secret = load_secrets(settings).ami_password("console")
        except (FileNotFoundError, KeyError) as exc:
            raise _unavailable(f"no AMI secret: {exc}") from exc
        return cls(settings.ami_host, settings.ami_port, "console", secret)

    # --- connection ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self._sock = socket.create_connection((self.host, self.port), self.timeout)
            self._sock.settimeout(self.timeout)
            self._read_line()  # banner
        except OSError as exc:
            self.close()
            raise _unavailable(str(exc)) from exc
        reply = self._send("Login", Username=self.username, Secret=self.secret, Events="off")
        if reply.get("Response") != "Success":
            self.close()
            raise _unavailable("login refused")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._sock is not None:
            with contextlib.suppress(DomainError):
                self._send("Logoff")
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            self._recv()
        line, _sep, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _recv(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(65536)
        except OSError as exc:
            raise _unavailable(str(exc)) from exc
        if not chunk:
            raise _unavailable("connection closed")
        self._buffer += chunk
        if len(self._buffer) > MAX_FRAME and b"\r\n\r\n" not in self._buffer:
            raise _unavailable("oversized frame")

    def _read_frame(self, deadline: float) -> Message:
        while b"\r\n\r\n" not in self._buffer:
            if time.monotonic() > deadline:
                raise _unavailable("timed out")
            self._recv()
        frame, _sep, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return parse_frame(frame)

    def _write(self, action: str, fields: dict[str, str]) -> str:
        assert self._sock is not None
        action_id = f"console-{next(_ids)}"
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"AMI field {key} contains a line break")
            lines.append(f"{key}: {value}")
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        except OSError as exc:
            raise _unavailable(str(exc)) from exc
        return action_id

    def _send(self, action: str, **fields: str) -> Message:
        """Send one action and return its response (other frames are skipped)."""
        if self._sock is None:
            raise _unavailable("not connected")
        action_id = self._write(action, fields)
        deadline = time.monotonic() + self.timeout
        while True:
            frame = self._read_frame(deadline)
            if frame.get("ActionID") == action_id and "Response" in frame:
                return frame

    def _list(self, action: str, **fields: str) -> list[Message]:
        """Send a list action; return its events up to ``EventList: Complete``."""
        if self._sock is None:
            raise _unavailable("not connected")
        action_id = self._write(action, fields)
        deadline = time.monotonic() + self.timeout
        events: list[Message] = []
        while True:
            frame = self._read_frame(deadline)
            if frame.get("ActionID") != action_id:
                continue
            if frame.get("Response") == "Error":
                raise _refused(action, frame)
            if frame.get("EventList") == "Complete":
                return events
            if "Event" in frame:
                events.append(frame)

    # --- queue membership ------------------------------------------------------------------

    def queue_overview(self) -> list[Message]:
        """``QueueStatus`` of every queue: its ``QueueParams``, ``QueueMember`` and
        ``QueueEntry`` events (the supervisor's wallboard, agent_console/wallboard_pbx.py)."""
        return self._list("QueueStatus")

    def queue_status(self, interface: str) -> list[MemberState]:
        """Every queue membership of ``interface`` (e.g. ``PJSIP/1001``)."""
        return [
            MemberState.from_event(event)
            for event in self._list("QueueStatus", Member=interface)
            if event.get("Event") == "QueueMember" and member_interface(event) == interface
        ]

    def queue_pause(self, interface: str, paused: bool, reason: str = "") -> None:
        """Pause (with ``reason``) or unpause ``interface`` in every queue it belongs to."""
        fields = {"Interface": interface, "Paused": "true" if paused else "false"}
        if paused and reason:
            fields["Reason"] = reason
        reply = self._send("QueuePause", **fields)
        if reply.get("Response") != "Success":
            raise _refused("QueuePause", reply)

    def queue_add(self, queue: str, interface: str, member_name: str) -> bool:
        """Add ``interface`` to ``queue`` as a dynamic member; ``False`` when it is already
        a member (static members always are)."""
        reply = self._send(
            "QueueAdd",
            Queue=queue,
            Interface=interface,
            MemberName=member_name,
            StateInterface=interface,
            Paused="false",
        )
        if reply.get("Response") == "Success":
            return True
        if "already there" in reply.get("Message", "").lower():
            return False
        raise _refused("QueueAdd", reply)

    def queue_remove(self, queue: str, interface: str) -> bool:
        """Remove dynamic member ``interface`` from ``queue``; ``False`` when it cannot be
        removed because it is static or not a member."""
        reply = self._send("QueueRemove", Queue=queue, Interface=interface)
        if reply.get("Response") == "Success":
            return True
        message = reply.get("Message", "").lower()
        if "not dynamic" in message or "not there" in message or "unable to remove" in message:
            return False
        raise _refused("QueueRemove", reply)

    # --- calls -----------------------------------------------------------------------------

    def channels(self) -> list[Message]:
        """Every live channel with its ``CALL_ID`` (``Status`` needs only ``call``)."""
        return [e for e in self._list("Status", Variables="CALL_ID") if e.get("Event") == "Status"]

    def agent_channel(self, call_id: str, interface: str) -> str | None:
        """The agent's leg of call ``call_id`` on ``interface`` (``PJSIP/1001-0000002a``)."""
        prefix = interface + "-"
        for channel in self.channels():
            name = channel.get("Channel", "")
            if name.startswith(prefix) and call_id_of(channel) == call_id:
                return name
        return None

    def blind_transfer(self, channel: str, exten: str, context: str) -> None:
        """Transfer the party bridged with ``channel`` to ``exten@context``."""
        reply = self._send("BlindTransfer", Channel=channel, Exten=exten, Context=context)
        if reply.get("Response") != "Success":
            raise _refused("BlindTransfer", reply)


def transfer_live_call(
    connect: Callable[[], ConsoleAmi], staff: StaffUser, record: CallRecord, exten: str
) -> None:
    """Blind-transfer call ``record`` from ``staff``'s phone to the internal extension
    ``exten`` (R1.11): refused (:class:`InvalidField`) when the call has ended, when
    ``staff`` has no extension, or when the call is not on their line now; the PBX's own
    refusal is :class:`PbxRefused`. ``exten`` must already be an allowed target."""
    if record.ended_at is not None:
        raise InvalidField("Görüşme sona ermiş.", "The call has ended.", field="call_id")
    interface = require_interface(staff)
    with connect() as pbx:
        channel = pbx.agent_channel(record.call_id, interface)
        if channel is None:
            raise InvalidField(
                "Bu görüşme şu anda sizin hattınızda değil.",
                "This call is not on your line now.",
                field="call_id",
            )
        pbx.blind_transfer(channel, exten, INTERNAL_CONTEXT)


def _refused(action: str, reply: Message) -> PbxRefused:
    message = reply.get("Message", "")
    return PbxRefused(
        f"Santral işlemi reddetti ({action}): {message}",
        f"The PBX refused {action}: {message}",
        action=action,
    )
