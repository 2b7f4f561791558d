"""Typed domain errors. Every rejection carries a stable code and a Turkish and English message.

Channel code renders ``message(lang)``; tests and APIs match on ``code``. A service that
raises one of these has written nothing that the caller would need to undo beyond rolling
back its own transaction (services never commit).
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class: a request the domain refuses, with a reason a person can read."""

    code: ClassVar[str] = "domain_error"

    def __init__(self, message_tr: str, message_en: str, **details: object) -> None:
        super().__init__(message_en)
        self.message_tr = message_tr
        self.message_en = message_en
        self.details = details

    def message(self, language: str = "tr") -> str:
        return self.message_en if language == "en" else self.message_tr


class InvalidTcNumber(DomainError):
    code = "invalid_tc_number"


class InvalidPhoneNumber(DomainError):
    code = "invalid_phone_number"


class InvalidEmail(DomainError):
    code = "invalid_email"


class InvalidReferenceCode(DomainError):
    code = "invalid_reference_code"


class MissingField(DomainError):
    code = "missing_field"


class InvalidField(DomainError):
    code = "invalid_field"


class UnknownEntity(DomainError):
    code = "unknown_entity"


class IdentityConflict(DomainError):
    code = "identity_conflict"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class NotPermitted(DomainError):
    code = "not_permitted"
