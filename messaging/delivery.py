"""What the dispatcher hands to a gateway and what it gets back (issue 5).

Every adapter (SMS: file, HTTP, SMPP; e-mail: SMTP) takes one of the ``Outgoing*`` values
and returns a :class:`SendResult`, or raises :class:`DeliveryError`. ``idempotency_key`` is
the outbox row's key: an adapter that can, passes it to the provider (or uses it as the file
name) so a resend after a crash between "provider accepted" and "outbox marked sent" is
recognised instead of delivered twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutgoingSms:
    recipient: str  # E.164, e.g. "+905321234567"
    text: str  # rendered, final text (UTF-8; the adapter picks GSM-7 or UCS-2)
    idempotency_key: str
    sender: str  # originator shown to the citizen


@dataclass(frozen=True)
class OutgoingEmail:
    recipient: str
    subject: str
    body_text: str
    idempotency_key: str  # also used to build a stable Message-ID
    sender: str  # From:
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str  # the provider's id (for SMS parts: the first part's id)
    parts: int = 1  # SMS segments submitted (1 for e-mail)
    duplicate: bool = False  # the provider/gateway already had this idempotency key


class DeliveryError(Exception):
    """The gateway did not accept the message.

    ``retryable`` is False for errors a retry cannot fix (invalid number, rejected
    content, bad credentials): the dispatcher then moves the row to the dead-letter list
    at once instead of spending its attempts.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
