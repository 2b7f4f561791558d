"""Staff user with a role of R9.1, an Açık Kapı staff code and spoken languages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_type
from models.enums import Role


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(160))
    staff_code: Mapped[str] = mapped_column(String(20), unique=True)  # e.g. AK-0007
    role: Mapped[Role] = mapped_column(enum_type(Role))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", use_alter=True), index=True
    )
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["tr"])
    email: Mapped[str | None] = mapped_column(String(254))
    phone_e164: Mapped[str | None] = mapped_column(String(16))
    sip_extension: Mapped[str | None] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Console sign-in (issue 4): lock-out after repeated failures, language of the screens.
    failed_logins: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ui_language: Mapped[str | None] = mapped_column(String(5))  # None: the default (tr)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def first_name(self) -> str:
        """The name used in greeting scripts (R9.2)."""
        return self.full_name.split(" ", 1)[0]
