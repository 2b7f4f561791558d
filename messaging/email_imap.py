"""Inbound e-mail: one poll of the info@ mailbox over IMAP (issue 5, R1.3).

``poll_mailbox(settings, handle)`` connects (implicit TLS when ``ACIKKAPI_IMAP_SSL=yes``,
otherwise plain with STARTTLS whenever the server offers it — and never a password in
clear text to a host that is not loopback), selects ``ACIKKAPI_IMAP_MAILBOX``, and for each
unseen message, oldest UID first:

1. fetches it with ``BODY.PEEK[]`` (fetching does not mark it read),
2. parses it (:func:`messaging.email_parse.parse_message`),
3. calls ``handle(inbound)`` — the CLI runs :func:`services.email_channel.handle_inbound_email`
   and commits —
4. and only then marks it ``\\Seen``.

A crash between 3 and 4 loses nothing: the message is still unseen, the next poll hands it
over again and the Message-ID (the contact's ``external_ref``) makes that a no-op.

Messages that can never succeed (malformed, too large, refused by the domain with a typed
error) are **kept**: marked ``\\Seen`` and ``\\Flagged`` plus the keyword ``$AcikKapiHata``
(when the server allows keywords), logged with the reason and listed in the report, so
they never block the mailbox and a person can open them in a mail client. Unexpected
errors (database down, a bug) leave the message unseen for the next poll and go on with
the others. Auto-replies and bounces are marked seen with ``$AcikKapiOtomatik``.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from acikkapi.settings import Settings
from messaging.email_parse import MalformedEmail, parse_message
from messaging.net import is_loopback
from services.email_channel import EmailDisposition, InboundEmail, InboundEmailOutcome
from services.errors import DomainError

log = logging.getLogger("acikkapi.email.imap")

MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # attachments are refused above 20 MiB anyway
DEFAULT_LIMIT = 200  # messages per poll; the rest wait for the next one
DEFAULT_TIMEOUT = 60.0
REJECTED_KEYWORD = "$AcikKapiHata"
AUTOMATIC_KEYWORD = "$AcikKapiOtomatik"

Handle = Callable[[InboundEmail], InboundEmailOutcome]


class MailboxError(Exception):
    """The mailbox could not be reached, logged into or read; ``report`` says what was done
    before the failure (every handled message is committed and marked)."""

    def __init__(self, message: str, report: PollReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class HandledMessage:
    uid: int
    message_id: str
    disposition: str  # services.email_channel.EmailDisposition value
    reference_code: str | None
    refused_attachments: int = 0


@dataclass(frozen=True)
class ProblemMessage:
    uid: int
    message_id: str | None
    error: str


@dataclass
class PollReport:
    """What one poll did. Plain values only (the RQ job returns it)."""

    mailbox: str
    unseen: int = 0  # unseen messages found (including those left for the next poll)
    handled: list[HandledMessage] = field(default_factory=list)
    rejected: list[ProblemMessage] = field(default_factory=list)  # flagged, kept, seen
    failed: list[ProblemMessage] = field(default_factory=list)  # left unseen: next poll
    left_for_next_poll: int = 0
    stopped: bool = False  # should_stop() asked to end early
    skipped: str | None = None  # why nothing was polled (e.g. no IMAP host configured)

    def summary(self) -> str:
        if self.skipped:
            return self.skipped
        counts: dict[str, int] = {}
        for item in self.handled:
            counts[item.disposition] = counts.get(item.disposition, 0) + 1
        parts = [f"{name}={n}" for name, n in sorted(counts.items())]
        parts += [f"rejected={len(self.rejected)}", f"failed={len(self.failed)}"]
        if self.left_for_next_poll:
            parts.append(f"left_for_next_poll={self.left_for_next_poll}")
        return f"{self.mailbox}: unseen={self.unseen} " + " ".join(parts)


def poll_mailbox(
    settings: Settings,
    handle: Handle,
    *,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = DEFAULT_LIMIT,
    should_stop: Callable[[], bool] = lambda: False,
    timeout: float = DEFAULT_TIMEOUT,
) -> PollReport:
    """Hand every unseen message of the configured mailbox to ``handle`` (see the module).

    Raises :class:`MailboxError` when the server cannot be reached, refuses the login or
    the mailbox, or drops the connection half-way (``error.report`` then holds the part
    done). ``handle`` raising a :class:`DomainError` rejects that message for good; any
    other exception leaves it for the next poll.
    """
    if not settings.imap_host:
        raise MailboxError("ACIKKAPI_IMAP_HOST is empty: inbound e-mail is off")
    report = PollReport(mailbox=settings.imap_mailbox)
    conn = _connect(settings, ssl_context, timeout)
    try:
        _login_and_select(conn, settings)
        uids = _unseen(conn)
        report.unseen = len(uids)
        report.left_for_next_poll = max(0, len(uids) - limit)
        batch = uids[:limit]
        for index, uid in enumerate(batch):
            if should_stop():
                report.stopped = True
                report.left_for_next_poll += len(batch) - index
                break
            _process(conn, uid, handle, report)
    except (imaplib.IMAP4.abort, OSError) as exc:
        raise MailboxError(f"IMAP connection lost: {exc!r}", report) from exc
    finally:
        _logout(conn)
    return report


# -- connection -----------------------------------------------------------------------


def _connect(
    settings: Settings, ssl_context: ssl.SSLContext | None, timeout: float
) -> imaplib.IMAP4:
    context = ssl_context or ssl.create_default_context()
    host, port = settings.imap_host, settings.imap_port
    try:
        if settings.imap_ssl:
            return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
        conn = imaplib.IMAP4(host, port, timeout=timeout)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise MailboxError(f"cannot connect to IMAP {host}:{port}: {exc!r}") from exc
    try:
        if "STARTTLS" in conn.capabilities:
            conn.starttls(ssl_context=context)
        elif not is_loopback(host):
            raise MailboxError(
                f"IMAP {host}:{port} offers no STARTTLS; refusing to send the password in "
                "clear text (set ACIKKAPI_IMAP_SSL=yes for implicit TLS)"
            )
    except MailboxError:
        _logout(conn)
        raise
    except (imaplib.IMAP4.error, OSError) as exc:
        _logout(conn)
        raise MailboxError(f"IMAP STARTTLS with {host}:{port} failed: {exc!r}") from exc
    return conn


def _login_and_select(conn: imaplib.IMAP4, settings: Settings) -> None:
    username, password = settings.imap_username, settings.imap_password
    try:
        if (username + password).isascii():
            conn.login(username, password)
        else:  # imaplib's LOGIN is ASCII-only; SASL PLAIN carries UTF-8 (RFC 4616)
            credentials = f"\0{username}\0{password}".encode()
            conn.authenticate("PLAIN", lambda _challenge: credentials)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise MailboxError(f"IMAP login as {settings.imap_username!r} refused: {reason}") from exc
    try:
        typ, data = conn.select(quote_mailbox(settings.imap_mailbox))
    except imaplib.IMAP4.error as exc:
        raise MailboxError(f"IMAP mailbox {settings.imap_mailbox!r}: {exc}") from exc
    if typ != "OK":
        raise MailboxError(f"IMAP mailbox {settings.imap_mailbox!r}: {data!r}")


def _logout(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(imaplib.IMAP4.error, OSError):
        conn.logout()


def quote_mailbox(name: str) -> str:
    """A mailbox name as an IMAP astring: modified UTF-7 (RFC 3501 §5.1.3), quoted."""
    encoded: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            encoded.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            encoded.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    text = "".join(encoded)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- messages -------------------------------------------------------------------------


def _unseen(conn: imaplib.IMAP4) -> list[int]:
    typ, data = conn.uid("SEARCH", "UNSEEN")
    if typ != "OK":
        raise MailboxError(f"IMAP SEARCH UNSEEN failed: {data!r}")
    return sorted(int(u) for u in (data[0] or b"").split())


_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}


def _parse_internaldate(text: str) -> datetime | None:
    """``" 8-Nov-2026 09:30:00 +0300"`` → aware datetime (month names are never localised)."""
    found = re.fullmatch(
        r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})", text
    )
    if found is None or found.group(2).title() not in _MONTHS:
        return None
    day, month, year = int(found.group(1)), _MONTHS[found.group(2).title()], int(found.group(3))
    offset = timedelta(hours=int(found.group(8)), minutes=int(found.group(9)))
    zone = timezone(-offset if found.group(7) == "-" else offset)
    hour, minute, second = (int(found.group(i)) for i in (4, 5, 6))
    return datetime(year, month, day, hour, minute, second, tzinfo=zone).astimezone(UTC)


def _fetch_meta(conn: imaplib.IMAP4, uid: int) -> tuple[int | None, datetime | None]:
    typ, data = conn.uid("FETCH", str(uid), "(RFC822.SIZE INTERNALDATE)")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH meta failed: {data!r}")
    blob = b" ".join(
        part if isinstance(part, bytes) else part[0] for part in data if part is not None
    )
    size = _SIZE.search(blob)
    date = _INTERNALDATE.search(blob)
    return (
        int(size.group(1)) if size else None,
        _parse_internaldate(date.group(1).decode("ascii", "replace")) if date else None,
    )


def _fetch_raw(conn: imaplib.IMAP4, uid: int) -> bytes | None:
    typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH body failed: {data!r}")
    for part in data:
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
            return part[1]
    return None  # expunged meanwhile by someone else


def _store(conn: imaplib.IMAP4, uid: int, flags: str, keyword: str | None = None) -> bool:
    """Add ``flags`` (and ``keyword`` when the server takes it); False when not stored."""
    attempts = [f"({flags} {keyword})"] if keyword is not None else []
    attempts.append(f"({flags})")
    data: object = None
    for flag_list in attempts:
        try:
            typ, data = conn.uid("STORE", str(uid), "+FLAGS.SILENT", flag_list)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # BAD: e.g. keywords not allowed here
            typ, data = "BAD", exc
        if typ == "OK":
            return True
    log.error("could not mark message uid=%s with %s: %r", uid, flags, data)
    return False


def _reject(
    conn: imaplib.IMAP4, uid: int, message_id: str | None, error: str, report: PollReport
) -> None:
    log.error("e-mail uid=%s message-id=%s rejected and flagged: %s", uid, message_id, error)
    _store(conn, uid, "\\Seen \\Flagged", REJECTED_KEYWORD)
    report.rejected.append(ProblemMessage(uid, message_id, error))


def _process(conn: imaplib.IMAP4, uid: int, handle: Handle, report: PollReport) -> None:
    try:
        size, internaldate = _fetch_meta(conn, uid)
        if size is not None and size > MAX_MESSAGE_BYTES:
            _reject(conn, uid, None, f"too large: {size} bytes", report)
            return
        raw = _fetch_raw(conn, uid)
    except imaplib.IMAP4.abort:
        raise  # the connection is gone: poll_mailbox reports it
    except imaplib.IMAP4.error as exc:
        log.error("e-mail uid=%s could not be fetched: %s", uid, exc)
        report.failed.append(ProblemMessage(uid, None, f"fetch: {exc}"))
        return
    if raw is None:
        return
    received_at = internaldate or datetime.now(UTC)
    try:
        inbound = parse_message(raw, received_at=received_at)
    except MalformedEmail as exc:
        _reject(conn, uid, None, f"malformed: {exc}", report)
        return
    try:
        outcome = handle(inbound)
    except DomainError as exc:
        _reject(conn, uid, inbound.message_id, f"refused [{exc.code}]: {exc.message_en}", report)
        return
    except Exception as exc:  # database down, a bug: try again next poll, go on with others
        log.exception("e-mail uid=%s message-id=%s failed; left unseen", uid, inbound.message_id)
        report.failed.append(ProblemMessage(uid, inbound.message_id, repr(exc)))
        return
    ignored = outcome.disposition is EmailDisposition.IGNORED
    _store(conn, uid, "\\Seen", AUTOMATIC_KEYWORD if ignored else None)
    report.handled.append(
        HandledMessage(
            uid=uid,
            message_id=inbound.message_id,
            disposition=outcome.disposition.value,
            reference_code=outcome.reference_code,
            refused_attachments=len(outcome.refused_attachments),
        )
    )
    log.info(
        "e-mail uid=%s message-id=%s: %s %s",
        uid,
        inbound.message_id,
        outcome.disposition.value,
        outcome.reference_code or "",
    )
