"""The e-mail channel (R1.3): a message to the info@ mailbox becomes a ticket or a contact.

Channel code (``messaging.email_imap``) parses each message into an :class:`InboundEmail`
and calls :func:`handle_inbound_email` in its own transaction. A subject carrying the
reference code of an existing ticket (``[Başvuru 7KMQ-4XR9] ...``, also behind ``Re:``,
``YNT:``, ``Fwd:``, ``İLT:`` prefixes) adds the message to that ticket; any other message
goes through the one intake path (:func:`services.intake.open_ticket`) as an unclassified
(``genel``) ticket for the coordination desk. Attachments are stored with
:func:`services.attachments.add_attachment`; one that is refused is recorded on the
timeline, never dropped silently. See ``docs/email.md``.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, StaffUser, Ticket, TicketContact, TimelineAction
from services import reference_code, timeline
from services.actors import system_actor
from services.attachments import ALLOWED_MEDIA, add_attachment
from services.errors import DomainError, MissingField
from services.identity import normalise_email
from services.intake import open_ticket
from services.intake_request import DEFAULT_TICKET_TYPE, MAX_DESCRIPTION, IntakeRequest
from services.locks import lock_keys
from services.message_templates import render
from services.ticket_contacts import NewContact, add_contact
from services.ticket_photos import sniff_image

ACTOR_NAME = "email"  # the timeline names the system user ``system.email``
MAX_ATTACHMENTS = 20  # per message; the rest are recorded as refused
MAX_EXTERNAL_REF = 120  # TicketContact.external_ref
TRUNCATED_MARK = "\n\n[… metin kısaltıldı; iletinin tamamı posta kutusunda duruyor]"
EMPTY_MESSAGE = "(Konusu ve metni olmayan e-posta)"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class InboundAttachment:
    filename: str
    content_type: str  # as declared by the sender, e.g. "image/jpeg"
    data: bytes


@dataclass(frozen=True)
class InboundEmail:
    """One received message, already decoded (headers, text body, attachment bytes)."""

    message_id: str  # the Message-ID header (or a digest of the raw message when missing)
    from_address: str
    from_name: str
    subject: str
    body_text: str  # the text/plain part, or the HTML part converted to text
    received_at: datetime  # when the mailbox received it (timezone-aware)
    attachments: tuple[InboundAttachment, ...] = ()
    # RFC 3834 auto-replies, delivery reports, mailing lists: never a ticket, never answered
    # (answering an auto-responder is how mail loops start).
    auto_submitted: bool = False


class EmailDisposition(enum.StrEnum):
    TICKET_OPENED = "ticket_opened"
    ADDED_TO_OPEN_TICKET = "added_to_open_ticket"  # intake found the sender's open ticket
    REPLY_ADDED = "reply_added"  # the subject named the ticket
    REPLAYED = "replayed"  # this Message-ID was handled before: nothing written
    IGNORED = "ignored"  # auto-submitted: nothing written


@dataclass(frozen=True)
class RefusedAttachment:
    filename: str
    content_type: str
    size_bytes: int
    reason: str  # Turkish, as shown on the timeline
    code: str  # the DomainError code (or "too_many_attachments")


@dataclass(frozen=True)
class InboundEmailOutcome:
    """What became of one message. Plain values only: safe to use after the commit."""

    disposition: EmailDisposition
    external_ref: str
    ticket_id: int | None = None
    reference_code: str | None = None
    contact_id: int | None = None
    citizen_match: str | None = None
    attachment_ids: tuple[int, ...] = ()
    refused_attachments: tuple[RefusedAttachment, ...] = ()


def ticket_email_subject(reference_code: str | None, language: str, municipality: str) -> str:
    """The subject of every e-mail about a ticket: ``[Başvuru 7KMQ-4XR9] <municipality>``
    (English: ``[Application ...]``). :func:`reference_code_in_subject` finds the code again
    in the replies. Without a code the subject is the municipality's name."""
    if not reference_code:
        return municipality
    return render(
        "email_subject", language, {"reference_code": reference_code, "municipality": municipality}
    )


# "[Başvuru 7KMQ-4XR9]" as we write it, in any case, with or without the dash.
_MARKER = re.compile(
    r"\[\s*(?i:ba[sş]vuru|application)\s*(?i:kodu|no|code)?\s*[:#]?\s*"
    r"([A-Za-z0-9]{4}(?:[-\u2010-\u2015]|\s)?[A-Za-z0-9]{4})\s*\]"
)
# A code anywhere else in the subject (typed by the citizen): 4+4 characters, standing alone.
_BARE = re.compile(
    r"(?=(?<![A-Za-z0-9])([A-Za-z0-9]{4}(?:[-\u2010-\u2015]|\s)?[A-Za-z0-9]{4})(?![A-Za-z0-9]))"
)
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015"})


def reference_code_in_subject(subject: str) -> str | None:
    """The first reference code in ``subject`` whose check character is valid, canonical
    (``XXXX-XXXX``), or None. The ``[Başvuru ...]`` marker is preferred over a bare code;
    reply/forward prefixes and case do not matter. A wrong check character is not a code."""
    text = subject or ""
    for pattern in (_MARKER, _BARE):
        for match in pattern.finditer(text):
            candidate = "".join(match.group(1).translate(_DASHES).split())
            if reference_code.is_valid(candidate):
                return reference_code.normalise(candidate)
    return None


def external_ref_for(message_id: str) -> str:
    """The contact's ``external_ref``: the Message-ID without angle brackets, or its
    SHA-256 when it is longer than the column. Raises :class:`MissingField` when empty."""
    text = _clean_line(message_id).strip().strip("<>").strip()
    if not text:
        raise MissingField(
            "E-postanın ileti kimliği (Message-ID) yok.",
            "The e-mail has no Message-ID.",
            field="message_id",
        )
    if len(text) > MAX_EXTERNAL_REF:
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


def handle_inbound_email(
    session: Session, now: datetime, email: InboundEmail, *, attachment_dir: Path
) -> InboundEmailOutcome:
    """Turn one received e-mail into a ticket, or a contact on the ticket it names.

    Guarantees, within the caller's transaction (nothing is committed here):
    - the same Message-ID handled twice writes nothing the second time (``REPLAYED``);
    - auto-submitted mail (auto-replies, bounces, lists) writes nothing (``IGNORED``);
    - an invalid sender address raises a typed :class:`DomainError` before any write;
    - a subject carrying the valid reference code of an existing ticket adds the message to
      that ticket (or the ticket it was merged into) via
      :func:`services.ticket_contacts.add_contact`, whatever the ticket's status;
    - otherwise the message goes through :func:`services.intake.open_ticket` (channel
      e-mail, type ``genel``, sender matched to a citizen by the intake's rules, subject and
      text as description, Message-ID as ``external_ref``) — including its dedup onto the
      sender's open unclassified ticket and the acknowledgement in the outbox;
    - each attachment is stored on the ticket, or recorded on the timeline with the reason
      it was refused (type, size, content not matching its type, too many).
    The acting user is the system user ``system.email``.
    """
    if now.tzinfo is None or email.received_at.tzinfo is None:
        raise ValueError("now and received_at must be timezone-aware")
    external_ref = external_ref_for(email.message_id)
    if email.auto_submitted:
        return InboundEmailOutcome(EmailDisposition.IGNORED, external_ref)
    lock_keys(session, [f"ref:{Channel.EMAIL.value}:{external_ref}"])
    seen = session.scalar(
        select(TicketContact).where(
            TicketContact.channel == Channel.EMAIL, TicketContact.external_ref == external_ref
        )
    )
    if seen is not None:
        return _outcome(EmailDisposition.REPLAYED, external_ref, seen.ticket, seen)
    sender = normalise_email(_clean_line(email.from_address))
    actor = system_actor(session, ACTOR_NAME, now)
    received_at = min(email.received_at, now)
    description = _description(email.subject, email.body_text)
    first_name, last_name = split_display_name(email.from_name)
    named = _named_ticket(session, email.subject)
    if named is not None:
        result = add_contact(
            session,
            actor,
            now,
            named,
            NewContact(
                channel=Channel.EMAIL,
                description=description,
                received_at=received_at,
                external_ref=external_ref,
                email=sender,
                contact_name=" ".join(p for p in (first_name, last_name) if p) or None,
            ),
        )
        disposition, ticket, contact = EmailDisposition.REPLY_ADDED, result.ticket, result.contact
        match = contact.citizen_match
    else:
        intake = open_ticket(
            session,
            actor,
            now,
            IntakeRequest(
                channel=Channel.EMAIL,
                description=description,
                ticket_type_code=DEFAULT_TICKET_TYPE,
                email=sender,
                first_name=first_name,
                last_name=last_name,
                external_ref=external_ref,
                received_at=received_at,
            ),
        )
        ticket, contact, match = intake.ticket, intake.contact, intake.citizen_match
        disposition = (
            EmailDisposition.TICKET_OPENED
            if intake.created
            else EmailDisposition.ADDED_TO_OPEN_TICKET
        )
    stored, refused = _store_attachments(
        session, actor, now, ticket, email.attachments, attachment_dir
    )
    return InboundEmailOutcome(
        disposition=disposition,
        external_ref=external_ref,
        ticket_id=ticket.id,
        reference_code=ticket.reference_code,
        contact_id=contact.id,
        citizen_match=match,
        attachment_ids=tuple(stored),
        refused_attachments=tuple(refused),
    )


def _outcome(
    disposition: EmailDisposition, external_ref: str, ticket: Ticket, contact: TicketContact
) -> InboundEmailOutcome:
    return InboundEmailOutcome(
        disposition=disposition,
        external_ref=external_ref,
        ticket_id=ticket.id,
        reference_code=ticket.reference_code,
        contact_id=contact.id,
        citizen_match=contact.citizen_match,
    )


def _named_ticket(session: Session, subject: str) -> Ticket | None:
    """The ticket whose code the subject carries (``add_contact`` follows merges)."""
    code = reference_code_in_subject(subject)
    if code is None:
        return None
    return session.scalar(select(Ticket).where(Ticket.reference_code == code))


def _clean_line(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text or "").split())


def _clean_text(text: str) -> str:
    """Control characters out (PostgreSQL text cannot hold NUL), line breaks kept."""
    lines = _CONTROL.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    return re.sub(r"\n{3,}", "\n\n", lines).strip()


def _description(subject: str, body: str) -> str:
    parts = [p for p in (_clean_line(subject), _clean_text(body)) if p]
    text = "\n\n".join(parts) or EMPTY_MESSAGE
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - len(TRUNCATED_MARK)].rstrip() + TRUNCATED_MARK
    return text


def split_display_name(display_name: str) -> tuple[str | None, str | None]:
    """("Ayşe", "Yılmaz") from ``Ayşe Yılmaz`` or ``Yılmaz, Ayşe``; (None, None) when the
    display name does not look like a person's name (one word, digits, an address...)."""
    text = _clean_line(display_name).strip("\"' ")
    if "," in text:
        last, _, first = text.partition(",")
        text = f"{first.strip()} {last.strip()}"
    words = text.split()
    if len(words) < 2 or len(words) > 5 or len(text) > 120:
        return None, None
    if not all(w.replace("-", "").replace("'", "").replace(".", "").isalpha() for w in words):
        return None, None
    return " ".join(words[:-1]), words[-1]


# File signatures of the accepted media types (services.attachments.ALLOWED_MEDIA): the
# images as the desk's photo upload recognises them, and PDF and WAV.
def _sniff(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return sniff_image(data)


_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "image/heif": "image/heic",
}


def media_type_of(declared: str, data: bytes) -> tuple[str, bool]:
    """(media type to store, whether the content matches it).

    Mail programs often declare photos as ``application/octet-stream``: the content decides.
    A declared accepted type whose bytes are something else (an HTML page called
    ``photo.jpg``) does not match and is refused."""
    stated = declared.split(";", 1)[0].strip().lower()
    stated = _ALIASES.get(stated, stated)
    sniffed = _sniff(data)
    if sniffed is not None:
        return sniffed, True
    return stated, stated not in ALLOWED_MEDIA


def _store_attachments(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    attachments: tuple[InboundAttachment, ...],
    attachment_dir: Path,
) -> tuple[list[int], list[RefusedAttachment]]:
    stored: list[int] = []
    refused: list[RefusedAttachment] = []
    for index, item in enumerate(attachments):
        # Only the last path component: a name is metadata, never a path.
        name = re.split(r"[\\/]", _clean_line(item.filename))[-1][:255] or f"ek-{index + 1}"
        if index >= MAX_ATTACHMENTS:
            refused.append(
                RefusedAttachment(
                    name,
                    item.content_type,
                    len(item.data),
                    f"Bir e-postadan en fazla {MAX_ATTACHMENTS} ek alınır.",
                    "too_many_attachments",
                )
            )
            continue
        media, matches = media_type_of(item.content_type, item.data)
        if not matches:
            refused.append(
                RefusedAttachment(
                    name,
                    item.content_type,
                    len(item.data),
                    f"Dosyanın içeriği belirtilen türle ({media}) uyuşmuyor.",
                    "content_mismatch",
                )
            )
            continue
        try:
            attachment = add_attachment(
                session,
                actor,
                now,
                ticket,
                store_dir=attachment_dir,
                data=item.data,
                original_name=name,
                media_type=media,
            )
        except DomainError as exc:
            refused.append(
                RefusedAttachment(name, item.content_type, len(item.data), exc.message_tr, exc.code)
            )
            continue
        stored.append(attachment.id)
    if refused:
        listing = "; ".join(f"{r.filename} ({r.reason})" for r in refused)
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.NOTE,
            note=f"E-postadaki {len(refused)} ek kabul edilmedi: {listing} "
            "Özgün ileti posta kutusunda duruyor.",
            refused_attachments=[
                {
                    "filename": r.filename,
                    "content_type": r.content_type,
                    "size_bytes": r.size_bytes,
                    "code": r.code,
                }
                for r in refused
            ],
        )
    return stored, refused
