"""The dialer's side of the PBX: ``Originate`` through AMI (R5.6, decision 0021).

:func:`originate` sends one ``Originate`` with ``Async: true`` and returns as soon as
Asterisk accepts or refuses it (the first ``Response``); the call's outcome comes later
as events (``OriginateResponse``, ``Hangup``, the ``AkAttemptResult`` user event) that
the AMI listener reads (ami_listener/outbound_events.py). ``ChannelId`` is the attempt id,
so every event of the originated channel carries it as ``Uniqueid``.

``manager`` is anything with an ``async action(fields, *, timeout, as_list)`` method: the
listener's supervised :class:`ami_listener.client.AmiClient` or the one-shot
:class:`DialerSession` below (user ``dialer``: ``originate,call`` only — never an
``Application=``, which would need ``system``; asterisk-conf/manager.conf.in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from acikkapi.settings import Settings
from ami_listener.client import BoundedAMIProtocol, send_action
from ami_listener.framing import AmiEvent

log = logging.getLogger(__name__)

DIALER_USER = "dialer"
MAX_UNIQUEID = 149  # AST_MAX_UNIQUEID (150) minus the terminating NUL


class ActionSender(Protocol):
    """What :func:`originate` needs from an AMI connection."""

    async def action(
        self,
        fields: Mapping[str, Any],
        *,
        timeout: float | None = None,
        as_list: bool | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class OriginateRequest:
    """One ``Originate`` (``Async: true``) into a dialplan context.

    ``channel`` is what Asterisk dials first (``Local/<digits>@acikkapi-outbound-dial`` for
    a citizen, ``PJSIP/1001`` for an agent-first callback); when it answers, it runs
    ``exten@context``. ``channel_id`` becomes its ``Uniqueid``; ``other_channel_id`` the
    ``Uniqueid`` of a Local channel's second half. ``variables`` are set on the channel
    (a Local channel copies them to its second half). ``timeout_ms`` bounds the ringing.
    """

    channel: str
    context: str
    exten: str
    priority: int = 1
    channel_id: str | None = None
    other_channel_id: str | None = None
    caller_id: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    timeout_ms: int = 30_000
    action_id: str | None = None  # default: a fresh one; the dialer uses the attempt's

    def fields(self) -> dict[str, Any]:
        """The AMI action's headers (``Variable`` repeated once per variable)."""
        out: dict[str, Any] = {
            "Action": "Originate",
            "Channel": self.channel,
            "Context": self.context,
            "Exten": self.exten,
            "Priority": str(self.priority),
            "Timeout": str(self.timeout_ms),
            "Async": "true",
        }
        if self.action_id:
            out["ActionID"] = self.action_id
        if self.channel_id:
            out["ChannelId"] = self.channel_id
        if self.other_channel_id:
            out["OtherChannelId"] = self.other_channel_id
        if self.caller_id:
            out["CallerID"] = self.caller_id
        if self.variables:
            out["Variable"] = [f"{k}={v}" for k, v in self.variables.items()]
        for key, value in out.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if "\r" in item or "\n" in item:
                    raise ValueError(f"AMI field {key} contains a line break")
        for uid in (self.channel_id, self.other_channel_id):
            if uid is not None and len(uid) > MAX_UNIQUEID:
                raise ValueError("channel id longer than Asterisk's Uniqueid")
        return out


@dataclass(frozen=True)
class OriginateReply:
    """Asterisk's answer to the action: ``accepted`` when it queued the call."""

    accepted: bool
    message: str
    action_id: str | None = None


async def originate(
    manager: ActionSender, request: OriginateRequest, *, timeout: float
) -> OriginateReply:
    """Send ``request`` and wait at most ``timeout`` seconds for Asterisk's ``Response``.

    Returns ``accepted=True`` when Asterisk queued the call (``Response: Success``) and
    ``accepted=False`` with its message when it refused (unknown channel technology,
    permission, bad context). Raises ``TimeoutError`` or ``ConnectionError`` when the
    answer never came: the caller cannot know whether the call was placed and must leave
    the attempt to the listener and recovery (never re-send the same attempt).
    """
    reply = await manager.action(request.fields(), timeout=timeout, as_list=False)
    if isinstance(reply, list):  # defensive: some senders return the whole exchange
        reply = reply[0]
    response = str(reply.get("Response", ""))
    return OriginateReply(
        accepted=response == "Success",
        message=str(reply.get("Message", "")),
        action_id=reply.get("ActionID"),
    )


class DialerSession:
    """A one-shot AMI connection for a burst of actions (``async with``).

    Logs in with ``Events: off`` (the dialer needs no events: the listener has them), sends
    actions matched by ``ActionID`` with a deadline each, logs off and closes on exit.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        connect_timeout: float = 3.0,
        action_timeout: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self._secret = username, secret
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout
        self.protocol: BoundedAMIProtocol | None = None
        self._transport: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, username: str = DIALER_USER) -> DialerSession:
        """A session for ``username`` with the secret the PBX was rendered with."""
        from telephony.secrets import load_secrets

        secret = load_secrets(settings).ami_password(username)
        return cls(settings.ami_host, settings.ami_port, username, secret)

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()

        def ignore(_event: AmiEvent) -> None:
            return None

        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: BoundedAMIProtocol(ignore), self.host, self.port),
            self.connect_timeout,
        )
        self._transport, self.protocol = transport, protocol
        try:
            reply = await self.action(
                {
                    "Action": "Login",
                    "Username": self.username,
                    "Secret": self._secret,
                    "Events": "off",
                }
            )
        except BaseException:
            transport.abort()
            raise
        if reply.get("Response") != "Success":
            transport.abort()
            raise ConnectionError(f"AMI login refused for {self.username!r}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.protocol is not None and not self.protocol.closed:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self.action({"Action": "Logoff"}, timeout=1.0)
        if self._transport is not None:
            self._transport.abort()
        self.protocol = None

    async def action(
        self,
        fields: Mapping[str, Any],
        *,
        timeout: float | None = None,
        as_list: bool | None = None,
    ) -> Any:
        """Send one action; its response (bounded by ``timeout``)."""
        return await send_action(
            self.protocol, fields, timeout=timeout or self.action_timeout, as_list=as_list
        )
