"""Photos taken with a tablet or phone camera and attached to a ticket (R1.1, R1.7, R7.4).

Browsers report whatever media type the file name suggests, so the type is taken from the
file's own first bytes instead: only real JPEG, PNG, WebP and HEIC images are accepted.
Storing goes through :func:`services.attachments.add_attachment` (content-addressed files,
sha256, timeline entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from models import Attachment, StaffUser, Ticket
from services.attachments import add_attachment
from services.errors import InvalidField

MAX_PHOTOS = 10  # per form submission
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


@dataclass(frozen=True)
class PhotoUpload:
    """One file as a form sent it."""

    name: str
    data: bytes


def sniff_image(data: bytes) -> str | None:
    """The media type of an image by its magic bytes (``None``: not an accepted image)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def attachment_store(instance_dir: Path) -> Path:
    """Where attachment files live (``<instance>/attachments``; the database keeps paths
    relative to it), the same store the e-mail channel uses."""
    return instance_dir / "attachments"


def check_photos(uploads: Sequence[PhotoUpload]) -> list[tuple[PhotoUpload, str]]:
    """The non-empty uploads with their media types, checked before anything is written:
    at most :data:`MAX_PHOTOS`, each an image by its content (:class:`InvalidField` naming
    the file otherwise). Empty uploads (a file input left empty) are skipped. Pure."""
    photos = [u for u in uploads if u.data]
    if len(photos) > MAX_PHOTOS:
        raise InvalidField(
            f"Bir seferde en çok {MAX_PHOTOS} fotoğraf eklenebilir.",
            f"At most {MAX_PHOTOS} photos can be added at once.",
            field="photos",
        )
    typed = []
    for upload in photos:
        media_type = sniff_image(upload.data)
        if media_type is None:
            raise InvalidField(
                f"{upload.name or 'Dosya'} bir fotoğraf değil (JPEG, PNG, WebP veya HEIC).",
                f"{upload.name or 'The file'} is not a photo (JPEG, PNG, WebP or HEIC).",
                field="photos",
            )
        typed.append((upload, media_type))
    return typed


def add_photos(
    session: Session,
    actor: StaffUser,
    now: datetime,
    ticket: Ticket,
    uploads: Sequence[PhotoUpload],
    *,
    store_dir: Path,
) -> list[Attachment]:
    """Attach the images among ``uploads`` to ``ticket``.

    Guarantees: every upload is checked by :func:`check_photos` before anything is stored,
    so a refused form stores nothing; then each is stored by :func:`add_attachment` (its
    own checks: permission, size) and recorded on the timeline. Never commits.
    """
    return [
        add_attachment(
            session,
            actor,
            now,
            ticket,
            store_dir=store_dir,
            data=upload.data,
            original_name=upload.name,
            media_type=media_type,
        )
        for upload, media_type in check_photos(uploads)
    ]
