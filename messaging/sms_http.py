"""HTTP SMS gateway for Turkish SMS aggregators (issue 5).

One JSON ``POST`` per message to ``ACIKKAPI_SMS_HTTP_URL`` with HTTP Basic credentials
(``ACIKKAPI_SMS_HTTP_USERNAME`` / ``_PASSWORD``) and the sender header (SMS başlığı,
``ACIKKAPI_SMS_SENDER``)::

    {"reference": "<idempotency key>", "sender": "ACIKKAPI", "recipient": "+905321234567",
     "text": "...", "encoding": "ucs2", "parts": 2,
     "message_type": "BILGILENDIRME", "commercial": false}

The idempotency key also travels as the ``Idempotency-Key`` header; the provider is expected
to answer a repeated reference with the earlier message id (``"duplicate": true`` or HTTP
409). A 2xx answer is a JSON object carrying ``message_id`` (or ``id``/``messageId``), or an
``error`` with an optional ``retryable`` flag. Outcomes: 4xx → not retryable (bad number,
bad credentials, rejected content) except 408 and 429; 5xx, time-outs and network errors →
retryable; redirects are refused (a moved endpoint is a configuration error). An aggregator
with another request shape is served by a subclass overriding :meth:`build_request` and
:meth:`parse_response`. Standard library only: one request per message needs no client
library.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import IO, Any

from messaging.delivery import DeliveryError, OutgoingSms, SendResult
from messaging.net import is_loopback
from messaging.sms_encoding import EncodedSms
from messaging.sms_gateway import IYS_MESSAGE_TYPE, prepare

_RETRYABLE_4XX = {408, 429}
_MAX_BODY = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None  # the 3xx response surfaces as an HTTPError


class HttpSmsGateway:
    """Sends each SMS with one HTTP request; see the module docstring for the contract."""

    def __init__(
        self, url: str, username: str = "", password: str = "", *, timeout: float = 10.0
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError(f"ACIKKAPI_SMS_HTTP_URL is not an http(s) URL: {url!r}")
        if parsed.scheme == "http" and not is_loopback(parsed.hostname):
            raise ValueError("ACIKKAPI_SMS_HTTP_URL must use https (credentials travel with it)")
        self.url = url
        self.timeout = timeout
        self._auth = (
            "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            if username
            else None
        )
        self._opener = urllib.request.build_opener(_NoRedirect())

    def build_request(self, sms: OutgoingSms, encoded: EncodedSms) -> urllib.request.Request:
        """The HTTP request for one message (override for another aggregator's API)."""
        body = {
            "reference": sms.idempotency_key,
            "sender": sms.sender,
            "recipient": sms.recipient,
            "text": sms.text,
            "encoding": encoded.encoding.value,
            "parts": len(encoded.parts),
            "message_type": IYS_MESSAGE_TYPE,
            "commercial": False,
        }
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "Idempotency-Key": sms.idempotency_key,
        }
        if self._auth is not None:
            headers["Authorization"] = self._auth
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return urllib.request.Request(self.url, data=data, headers=headers, method="POST")

    def parse_response(self, status: int, body: bytes, encoded: EncodedSms) -> SendResult:
        """Turn a provider answer (any status) into a result or a :class:`DeliveryError`."""
        document = _json_object(body)
        if status == 409:  # the provider already has this reference
            message_id = _message_id(document) if document is not None else None
            if message_id is None:
                raise DeliveryError("HTTP 409 without the earlier message id", retryable=False)
            return SendResult(
                provider_message_id=message_id, parts=len(encoded.parts), duplicate=True
            )
        if not 200 <= status < 300:
            detail = _error_text(document, body)
            retryable = status >= 500 or status in _RETRYABLE_4XX
            raise DeliveryError(f"HTTP {status}: {detail}", retryable=retryable)
        if document is None:
            # Accepted or not, we cannot tell: a retry with the same reference is safe.
            raise DeliveryError("provider answer is not a JSON object", retryable=True)
        if document.get("error"):
            raise DeliveryError(
                f"provider error: {_error_text(document, body)}",
                retryable=document.get("retryable") is True,
            )
        message_id = _message_id(document)
        if message_id is None:
            raise DeliveryError("provider answer carries no message id", retryable=True)
        return SendResult(
            provider_message_id=message_id,
            parts=_int(document.get("parts"), len(encoded.parts)),
            duplicate=document.get("duplicate") is True,
        )

    def send(self, sms: OutgoingSms) -> SendResult:
        encoded = prepare(sms)
        request = self.build_request(sms, encoded)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(_MAX_BODY)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(_MAX_BODY) if exc.fp is not None else b""
            exc.close()
        except TimeoutError as exc:
            raise DeliveryError(f"SMS provider timed out: {exc}", retryable=True) from exc
        except urllib.error.URLError as exc:
            raise DeliveryError(f"SMS provider unreachable: {exc.reason}", retryable=True) from exc
        except (OSError, ValueError) as exc:  # reset connection, malformed answer
            raise DeliveryError(f"SMS provider request failed: {exc}", retryable=True) from exc
        return self.parse_response(status, body, encoded)

    def close(self) -> None:
        """Nothing to release: urllib opens one connection per request."""


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _message_id(document: dict[str, Any]) -> str | None:
    for name in ("message_id", "messageId", "id"):
        value = document.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _error_text(document: dict[str, Any] | None, body: bytes) -> str:
    if document is not None:
        for name in ("error", "message", "detail", "description"):
            if document.get(name):
                return str(document[name])[:300]
    return body[:300].decode("utf-8", "replace") or "(no body)"


def _int(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )
