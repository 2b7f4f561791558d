"""Staff sign-in: argon2 password hashes, lock-out after repeated failures (R9.1, KVKK).

The console (or any other front end) calls :func:`authenticate` and commits whatever it
returns: failed attempts and lock-outs must be stored even though the sign-in failed.
Nothing here knows about HTTP, cookies or Flask.

Rules:

- passwords are hashed with argon2id (``argon2-cffi`` defaults, RFC 9106 low-memory
  profile); a hash made with older parameters is replaced at the next successful sign-in;
- :data:`MAX_FAILURES` wrong passwords in a row lock the account for :data:`LOCK_FOR`;
  while locked even the right password is refused (and not checked);
- unknown user names, system actors, inactive accounts and accounts without a password get
  the same answer as a wrong password, after the same amount of hashing work, so the
  answer does not tell which user names exist;
- every attempt is in the audit log (:mod:`services.audit`).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditAction, Role, StaffUser
from services import audit
from services.errors import InvalidField

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
PASSWORD_MIN = 10

_HASHER = PasswordHasher()
# Verified against when there is no real hash, so that every refusal costs the same work.
_DUMMY_HASH = _HASHER.hash("acikkapi: no such account")


class SignInOutcome(enum.StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"  # unknown user, wrong password, no access: one answer
    LOCKED = "locked"


@dataclass(frozen=True)
class SignIn:
    """The answer to one sign-in attempt."""

    outcome: SignInOutcome
    user: StaffUser | None = None  # set only when ``outcome`` is OK
    locked_until: datetime | None = None  # set when ``outcome`` is LOCKED


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _HASHER.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def session_token(user: StaffUser) -> str:
    """A short fingerprint of the user's password hash: part of the console's session id,
    so that changing a password ends every session signed in with the old one."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def can_sign_in(user: StaffUser) -> bool:
    """Active human staff with a password (system actors never sign in)."""
    return user.is_active and user.role is not Role.SYSTEM and bool(user.password_hash)


def find_user(session: Session, username: str) -> StaffUser | None:
    """The staff user called ``username`` (case and surrounding spaces ignored)."""
    name = username.strip().lower()
    if not name or len(name) > 80:
        return None
    return session.scalar(select(StaffUser).where(func.lower(StaffUser.username) == name))


def authenticate(
    session: Session, now: datetime, username: str, password: str, ip: str | None = None
) -> SignIn:
    """Check ``username``/``password`` at ``now`` and record the attempt.

    Guarantees: see the module doc. On success the failure counter is reset, ``last_login_at``
    is ``now`` and an outdated hash is upgraded. Writes (flushes) but never commits: the
    caller commits in every case, also when the answer is a refusal.
    """
    user = find_user(session, username)
    if user is not None and user.locked_until is not None and now < user.locked_until:
        audit.record(session, user, now, AuditAction.SIGN_IN_FAILED, ip=ip, reason="account locked")
        return SignIn(SignInOutcome.LOCKED, locked_until=user.locked_until)
    usable = user is not None and can_sign_in(user)
    matches = _verify(user.password_hash if usable and user is not None else None, password)
    if user is None or not usable:
        audit.record(
            session,
            user,
            now,
            AuditAction.SIGN_IN_FAILED,
            username=username.strip()[:80],
            ip=ip,
            reason="unknown user" if user is None else "no access",
        )
        return SignIn(SignInOutcome.BAD_CREDENTIALS)
    if not matches:
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILURES:
            user.failed_logins = 0
            user.locked_until = now + LOCK_FOR
            audit.record(
                session,
                user,
                now,
                AuditAction.ACCOUNT_LOCKED,
                ip=ip,
                reason=f"{MAX_FAILURES} failed sign-ins",
                locked_until=user.locked_until.isoformat(),
            )
            return SignIn(SignInOutcome.LOCKED, locked_until=user.locked_until)
        audit.record(
            session,
            user,
            now,
            AuditAction.SIGN_IN_FAILED,
            ip=ip,
            reason="wrong password",
            failures=user.failed_logins,
        )
        return SignIn(SignInOutcome.BAD_CREDENTIALS)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if user.password_hash and _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, user, now, AuditAction.SIGN_IN, ip=ip)
    return SignIn(SignInOutcome.OK, user=user)


def set_password(user: StaffUser, password: str) -> None:
    """Give ``user`` a new password (at least :data:`PASSWORD_MIN` characters); clears a
    lock-out. Ends the user's console sessions (see :func:`session_token`)."""
    if len(password) < PASSWORD_MIN:
        raise InvalidField(
            f"Parola en az {PASSWORD_MIN} karakter olmalıdır.",
            f"A password needs at least {PASSWORD_MIN} characters.",
            field="password",
        )
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None


def set_demo_passwords(session: Session, users: Iterable[StaffUser], password: str) -> int:
    """Give ``password`` to each of ``users`` that has no password yet (a password someone
    set is never overwritten); system actors are skipped. Returns how many were set."""
    count = 0
    for user in users:
        if user.password_hash or user.role is Role.SYSTEM:
            continue
        set_password(user, password)
        count += 1
    if count:
        session.flush()
    return count
