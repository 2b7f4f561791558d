"""Raw RFC 5322 bytes → :class:`services.email_channel.InboundEmail` (issue 5, R1.3).

Parsed with ``email.policy.default``. Lenient where a person would still read the message
(unknown charsets, raw UTF-8 headers as RFC 6532 allows, broken base64), strict only where
the channel cannot work: a message without a usable sender is :class:`MalformedEmail`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser

from services.email_channel import InboundAttachment, InboundEmail

# Parts that are not the citizen's files: signatures of signed mail.
_SIGNATURES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})


class MalformedEmail(Exception):
    """The bytes cannot be turned into a message the channel can answer."""


def parse_message(raw: bytes, *, received_at: datetime) -> InboundEmail:
    """Parse one message as fetched from the mailbox.

    ``received_at`` is the server's arrival time (IMAP INTERNALDATE): the ``Date:`` header
    is written by the sender and may be missing or wrong. Raises :class:`MalformedEmail`.
    """
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        if not isinstance(message, EmailMessage) or not message.keys():
            raise MalformedEmail("başlık yok / no headers: not an e-mail message")
        auto = is_auto_submitted(message)
        from_address, from_name = _sender(message, lenient=auto)
        body, attachments = _content(message)
        return InboundEmail(
            message_id=_header(message, "Message-ID")
            or "sha256:" + hashlib.sha256(raw).hexdigest(),
            from_address=from_address,
            from_name=from_name,
            subject=_header(message, "Subject"),
            body_text=body,
            received_at=received_at,
            attachments=tuple(attachments),
            auto_submitted=auto or _is_daemon(from_address),
        )
    except MalformedEmail:
        raise
    except Exception as exc:  # the standard parser has its own bugs on hostile input
        raise MalformedEmail(f"ayrıştırılamadı / cannot be parsed: {exc!r}") from exc


def is_auto_submitted(message: Message) -> bool:
    """RFC 3834 auto-replies, delivery and read reports, mailing-list traffic."""
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if _header(message, "Precedence").lower() in _AUTO_PRECEDENCE:
        return True
    if any(message.get(name) is not None for name in ("X-Autoreply", "X-Autorespond", "List-Id")):
        return True
    if _header(message, "Return-Path") == "<>":
        return True
    return message.get_content_type() == "multipart/report"


def _is_daemon(address: str) -> bool:
    return address.split("@", 1)[0].lower() in _DAEMONS


def _unescape(text: str) -> str:
    """Raw UTF-8 in headers (RFC 6532) arrives as surrogate escapes: decode it."""
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    return " ".join(_unescape(str(value)).split())


def _sender(message: Message, *, lenient: bool) -> tuple[str, str]:
    header = message.get("From")
    addresses = getattr(header, "addresses", ()) if header is not None else ()
    for address in addresses:
        spec = _unescape(address.addr_spec or "")
        if "@" in spec and address.domain:
            return spec, _unescape(address.display_name or "")
    if lenient:  # an auto-reply is ignored anyway: do not refuse it for its sender
        return _header(message, "From"), ""
    if header is None:
        raise MalformedEmail("gönderen (From) yok / no From header")
    raise MalformedEmail(
        f"gönderen adresi okunamadı / unreadable From: {_header(message, 'From')!r}"
    )


def _leaves(part: Message) -> Iterator[tuple[Message, Message | None]]:
    """Every non-multipart part with its parent (attached messages stay whole)."""
    stack: list[tuple[Message, Message | None]] = [(part, None)]
    while stack:
        current, parent = stack.pop(0)
        if current.get_content_maintype() == "multipart" and isinstance(current, EmailMessage):
            stack[0:0] = [(sub, current) for sub in current.iter_parts()]
        else:
            yield current, parent


def _content(message: EmailMessage) -> tuple[str, list[InboundAttachment]]:
    body_part = message.get_body(preferencelist=("plain", "html"))
    texts: list[str] = []
    if body_part is not None:
        texts.append(_text_of(body_part))
    attachments: list[InboundAttachment] = []
    for part, parent in _leaves(message):
        if part is body_part:
            continue
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = _unescape(part.get_filename() or "")
        if ctype in _SIGNATURES:
            continue
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            alternative = (
                parent is not None and parent.get_content_type() == "multipart/alternative"
            )
            if alternative and body_part is not None and _is_sibling(parent, body_part):
                continue  # the other rendering of the body
            texts.append(_text_of(part))  # e.g. Apple Mail's text around inline photos
            continue
        data = _bytes_of(part)
        if ctype == "message/rfc822" and not filename:
            filename = "ileti.eml"
        attachments.append(InboundAttachment(filename=filename, content_type=ctype, data=data))
    return "\n\n".join(t.strip() for t in texts if t.strip()), attachments


def _is_sibling(parent: Message | None, body_part: Message) -> bool:
    if not isinstance(parent, EmailMessage):
        return False
    return any(sub is body_part for sub in parent.iter_parts())


def _bytes_of(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _text_of(part: Message) -> str:
    try:
        text = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, UnicodeError, ValueError):
        text = None
    if not isinstance(text, str):
        raw = _bytes_of(part)
        charset = part.get_content_charset() or "utf-8"
        try:
            text = raw.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            text = raw.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    return text.replace("\r\n", "\n")


_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "blockquote", "section", "article"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "address", "header", "footer"}
)
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.chunks.append("\n")
            if tag == "li":
                self.chunks.append("- ")
        elif tag in ("td", "th"):
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: tags, scripts and styles out, paragraphs kept."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
