"""Outbound e-mail over SMTP (issue 5): the dispatcher's e-mail adapter.

``SmtpEmailSender(settings).send(OutgoingEmail)`` builds a UTF-8 message (RFC 2047 encoded
words in headers, RFC 6532/SMTPUTF8 only when an address needs it), optionally upgrades the
connection with STARTTLS and authenticates (``ACIKKAPI_SMTP_*``), and returns the
Message-ID as the provider id. The Message-ID is derived from the outbox row's idempotency
key, so a message re-sent after a crash carries the same id and the recipient's mail
system (and a person) can recognise it. Errors map to :class:`DeliveryError`: permanent
``5xx`` replies are not retryable, ``4xx`` replies and connection failures are.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, getaddresses

from acikkapi.settings import Settings
from messaging.delivery import DeliveryError, OutgoingEmail, SendResult
from messaging.net import is_loopback

log = logging.getLogger("acikkapi.email.smtp")

DEFAULT_TIMEOUT = 30.0
FALLBACK_DOMAIN = "acikkapi.local"
# Headers the adapter owns; a template or caller cannot override them.
_RESERVED = frozenset(
    {"from", "to", "cc", "bcc", "subject", "message-id", "date", "mime-version", "content-type"}
    | {"content-transfer-encoding", "sender", "return-path"}
)


def message_id_for(idempotency_key: str, sender: str) -> str:
    """``<ak.<sha256(key)[:40]>@<sender's domain>>``: the same key, the same Message-ID."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    domain = _address(sender).rsplit("@", 1)[-1] if "@" in _address(sender) else ""
    return f"<ak.{digest}@{domain or FALLBACK_DOMAIN}>"


def _address(value: str) -> str:
    pairs = getaddresses([value])
    return pairs[0][1] if pairs else ""


def _code(exc: smtplib.SMTPResponseException) -> int:
    return int(exc.smtp_code)


def _text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def _login(conn: smtplib.SMTP, username: str, password: str) -> None:
    """``SMTP.login``, but credentials with Turkish letters work too: smtplib encodes them as
    ASCII and fails, so those go as UTF-8 in AUTH PLAIN (RFC 4616) or AUTH LOGIN."""
    if (username + password).isascii():
        conn.login(username, password)
        return
    offered = conn.esmtp_features.get("auth", "").upper().split()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    if "PLAIN" in offered:
        code, reply = conn.docmd("AUTH", "PLAIN " + b64(f"\0{username}\0{password}".encode()))
    elif "LOGIN" in offered:
        code, reply = conn.docmd("AUTH", "LOGIN " + b64(username.encode()))
        if code == 334:
            code, reply = conn.docmd(b64(password.encode()))
    else:
        raise smtplib.SMTPNotSupportedError(
            "the SMTP server offers neither AUTH PLAIN nor LOGIN for non-ASCII credentials"
        )
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)


class SmtpEmailSender:
    """One SMTP connection, opened on first use and reused until :meth:`close`.

    Not thread-safe: one sender per worker process (the dispatcher's runtime holds one).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._conn: smtplib.SMTP | None = None

    # -- public -----------------------------------------------------------------------

    def send(self, email: OutgoingEmail) -> SendResult:
        """Hand ``email`` to the SMTP server; the returned id is the Message-ID.

        Raises :class:`DeliveryError` (``retryable=False`` for a refused address, a
        refused message, bad credentials, a missing STARTTLS or SMTPUTF8 the message
        needs, or an invalid header; ``True`` for 4xx replies and network failures).
        """
        sender = email.sender or self._settings.mail_from
        message = self._build(email, sender)
        message_id = str(message["Message-ID"])
        envelope_from = _address(sender)
        try:
            conn = self._connection()
            refused = conn.send_message(
                message, from_addr=envelope_from, to_addrs=[_address(email.recipient)]
            )
        except smtplib.SMTPRecipientsRefused as exc:
            self._discard()
            code, reply = next(iter(exc.recipients.values()))
            raise DeliveryError(
                f"recipient refused ({code} {_text(reply)})", retryable=code < 500
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            self._discard()
            raise DeliveryError(
                f"SMTP authentication failed ({_code(exc)} {_text(exc.smtp_error)})",
                retryable=_code(exc) < 500,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            self._discard()
            raise DeliveryError(
                f"SMTP server lacks a required extension: {exc}", retryable=False
            ) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, HELO...
            self._discard()
            raise DeliveryError(
                f"SMTP server replied {_code(exc)} {_text(exc.smtp_error)}",
                retryable=not 500 <= _code(exc) < 600,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            self._discard()
            raise DeliveryError(
                f"SMTP server certificate not trusted: {exc}", retryable=False
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refusals
            self._discard()
            raise DeliveryError(f"SMTP connection failed: {exc!r}", retryable=True) from exc
        if refused:  # only one recipient: refused here means refused at all
            self._discard()
            code, reply = next(iter(refused.values()))
            raise DeliveryError(f"recipient refused ({code} {_text(reply)})", retryable=code < 500)
        log.info("sent %s to %s", message_id, email.recipient)
        return SendResult(provider_message_id=message_id)

    def close(self) -> None:
        """Say QUIT and drop the connection (safe to call at any time, also twice)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    # -- internals --------------------------------------------------------------------

    def _build(self, email: OutgoingEmail, sender: str) -> EmailMessage:
        for role, value in (("recipient", email.recipient), ("sender", sender)):
            local, _, domain = _address(value).rpartition("@")
            if not local or not domain:
                raise DeliveryError(f"invalid {role} address: {value!r}", retryable=False)
        message = EmailMessage(policy=SMTP)
        try:
            message["From"] = sender
            message["To"] = email.recipient
            message["Subject"] = email.subject
            message["Date"] = formatdate(localtime=False, usegmt=True)
            message["Message-ID"] = message_id_for(email.idempotency_key, sender)
            # RFC 3834: automatic notifications; auto-responders must not answer them.
            message["Auto-Submitted"] = "auto-generated"
            for name, value in email.headers.items():
                if name.lower() in _RESERVED or name.lower() == "auto-submitted":
                    raise ValueError(f"header {name!r} is set by the adapter")
                message[name] = value
            message.set_content(email.body_text, charset="utf-8", cte="quoted-printable")
        except (ValueError, TypeError, IndexError) as exc:
            raise DeliveryError(f"invalid e-mail: {exc}", retryable=False) from exc
        return message

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            try:
                code, _ = self._conn.noop()
                if code == 250:
                    return self._conn
            except (smtplib.SMTPException, OSError):
                pass
            self._discard()
        settings = self._settings
        conn = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=self._timeout)
        try:
            conn.ehlo()
            if settings.smtp_starttls:
                if not conn.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "ACIKKAPI_SMTP_STARTTLS=yes but the server offers no STARTTLS"
                    )
                conn.starttls(context=self._ssl_context or ssl.create_default_context())
                conn.ehlo()
            if settings.smtp_username:
                if not settings.smtp_starttls and not is_loopback(settings.smtp_host):
                    log.warning("SMTP password sent without TLS to %s", settings.smtp_host)
                _login(conn, settings.smtp_username, settings.smtp_password)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
