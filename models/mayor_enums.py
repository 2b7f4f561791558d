"""Enums of the mayor's weekly call list (R5.4), kept apart from ``models.enums``."""

from __future__ import annotations

import enum


class MayorCallResult(enum.StrEnum):
    """What happened when the mayor's office (Özel Kalem) called the citizen of an entry."""

    PENDING = "pending"  # not called yet
    REACHED = "reached"
    NOT_REACHED = "not_reached"
    WRONG_NUMBER = "wrong_number"
