"""Attaching files (tablet photos, scanned petitions) to tickets (R1.7, R7.4)."""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from models import Attachment, AttachmentKind, StaffUser, Ticket, TimelineAction
from services import timeline
from services.errors import InvalidField
from services.permissions import require_can_change

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
ALLOWED_MEDIA = {
    "image/jpeg": AttachmentKind.PHOTO,
    "image/png": AttachmentKind.PHOTO,
    "image/heic": AttachmentKind.PHOTO,
    "image/webp": AttachmentKind.PHOTO,
    "application/pdf": AttachmentKind.DOCUMENT,
    "audio/wav": AttachmentKind.AUDIO,
    "audio/x-wav": AttachmentKind.AUDIO,
}


def add_attachment(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    *,
    store_dir: Path,
    data: bytes,
    original_name: str,
    media_type: str,
    taken_at: datetime | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Attachment:
    """Store ``data`` content-addressed under ``store_dir`` and record it on ``ticket``.

    Guarantees: the file is written (atomically, by rename) before the row is added, its
    sha256 and size are recorded, only known media types up to 20 MiB are accepted. A
    rolled-back transaction may leave an unreferenced file, never a row without a file.
    """
    require_can_change(actor, ticket)
    kind = ALLOWED_MEDIA.get(media_type)
    if kind is None:
        raise InvalidField(
            f"Bu dosya türü kabul edilmiyor: {media_type}.",
            f"This file type is not accepted: {media_type}.",
            field="media_type",
        )
    if not data or len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidField(
            "Dosya boş ya da 20 MB'tan büyük.",
            "The file is empty or larger than 20 MB.",
            field="data",
        )
    digest = hashlib.sha256(data).hexdigest()
    suffix = mimetypes.guess_extension(media_type) or ".bin"
    relative = Path(digest[:2]) / f"{digest}{suffix}"
    target = store_dir / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(target)
    attachment = Attachment(
        ticket_id=ticket.id,
        kind=kind,
        path=str(relative),
        original_name=original_name[:255] or None,
        media_type=media_type,
        size_bytes=len(data),
        sha256=digest,
        taken_at=taken_at,
        latitude=latitude,
        longitude=longitude,
        uploaded_by_id=actor.id,
        uploaded_at=now,
    )
    session.add(attachment)
    session.flush()
    ticket.updated_at = now
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.ATTACHMENT_ADDED,
        attachment_id=attachment.id,
        sha256=digest,
        media_type=media_type,
    )
    return attachment
