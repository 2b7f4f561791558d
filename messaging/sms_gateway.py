"""The one interface every SMS gateway implements (issue 5).

The outbox dispatcher holds a :class:`SmsGateway` per process and calls :meth:`send` once
per outbox row; :func:`messaging.sms_factory.build_sms_gateway` picks the implementation
from ``settings.sms_gateway``.
"""

from __future__ import annotations

import re
from typing import Final, Protocol

from messaging.delivery import DeliveryError, OutgoingSms, SendResult
from messaging.sms_encoding import EncodedSms, SmsEncodingError, encode_sms, reference_for

# İYS: every SMS this system sends is public information about the citizen's own application
# (bilgilendirme), never commercial (ticari). Gateways that can say so, do.
IYS_MESSAGE_TYPE: Final = "BILGILENDIRME"


class SmsGateway(Protocol):
    """Hands one SMS to a provider.

    ``send`` returns a :class:`~messaging.delivery.SendResult` once the provider has
    accepted the message (``duplicate=True`` when it already had the idempotency key) or
    raises :class:`~messaging.delivery.DeliveryError`, whose ``retryable`` says whether a
    later attempt can succeed. ``close`` releases connections; the gateway is not used after.
    """

    def send(self, sms: OutgoingSms) -> SendResult: ...

    def close(self) -> None: ...


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def prepare(sms: OutgoingSms, *, reference: int | None = None) -> EncodedSms:
    """Check ``sms`` and encode it; refusals are non-retryable :class:`DeliveryError`.

    Every gateway calls this first, so an invalid recipient, an empty text or a text of
    more than 255 parts is refused the same way whatever the provider.
    """
    if not _E164.match(sms.recipient or ""):
        raise DeliveryError(f"recipient is not an E.164 number: {sms.recipient!r}", retryable=False)
    if not sms.idempotency_key:
        raise DeliveryError("missing idempotency key", retryable=False)
    try:
        return encode_sms(
            sms.text,
            reference=reference_for(sms.idempotency_key) if reference is None else reference,
        )
    except SmsEncodingError as exc:
        raise DeliveryError(f"SMS text refused: {exc}", retryable=False) from exc
