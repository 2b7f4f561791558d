"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 over TCP, recording what it accepts.

Used by the SMTP adapter's tests, the ``email send-test`` command's and the workers' (the
e-mail acknowledgement leaving through the outbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from acikkapi.settings import Settings, load_settings
from tests.helpers.net import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any
    tls: bool
    smtp_utf8: bool

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """aiosmtpd handler: records accepted mail; replies can be scripted per recipient."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                peer=session.peer,
                tls=session.ssl is not None,
                smtp_utf8=envelope.smtp_utf8,
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, **kwargs: Any) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self.kwargs = kwargs
        self.controller = self._controller()

    def _controller(self) -> Controller:
        return Controller(self.recorder, hostname="127.0.0.1", port=self.port, **self.kwargs)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Drop every connection and listen again on the same port."""
        self.controller.stop()
        self.controller = self._controller()
        self.controller.start()

    def settings(self, **env: str) -> Settings:
        return load_settings(
            {"ACIKKAPI_SMTP_HOST": "127.0.0.1", "ACIKKAPI_SMTP_PORT": str(self.port), **env}
        )
