"""Automated actors (web form, SMS gateway, AMI listener, workers) as staff rows.

Every timeline entry names an actor; automated channels act as a ``system.<name>`` user
with role ``system`` so that "who did it" is never empty.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Role, StaffUser
from services.turkish_text import tr_upper


def system_actor(session: Session, name: str, now: datetime) -> StaffUser:
    """Return the system user ``system.<name>``, creating it (flushed, not committed) once."""
    username = f"system.{name}"
    actor = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if actor is None:
        actor = StaffUser(
            username=username,
            full_name=f"Sistem ({name})",
            staff_code=f"SYS-{tr_upper(name)[:16]}",
            role=Role.SYSTEM,
            languages=["tr", "en"],
            created_at=now,
        )
        session.add(actor)
        session.flush()
    return actor
