"""The ticket state machine: which status may follow which (R3.2)."""

from __future__ import annotations

from models import TicketStatus as S
from services.errors import InvalidTransition

TRANSITIONS: dict[S, frozenset[S]] = {
    S.NEW: frozenset(
        {
            S.FORWARDED,
            S.IN_PROGRESS,
            S.WAITING_ON_CITIZEN,
            S.REFERRED_EXTERNALLY,
            S.RESOLVED,
            S.MERGED,
        }
    ),
    S.FORWARDED: frozenset(
        {
            S.FORWARDED,
            S.IN_PROGRESS,
            S.WAITING_ON_CITIZEN,
            S.REFERRED_EXTERNALLY,
            S.RESOLVED,
            S.MERGED,
        }
    ),
    S.IN_PROGRESS: frozenset(
        {S.FORWARDED, S.WAITING_ON_CITIZEN, S.REFERRED_EXTERNALLY, S.RESOLVED, S.MERGED}
    ),
    S.WAITING_ON_CITIZEN: frozenset({S.IN_PROGRESS, S.FORWARDED, S.RESOLVED, S.CLOSED, S.MERGED}),
    S.REFERRED_EXTERNALLY: frozenset({S.IN_PROGRESS, S.FORWARDED, S.RESOLVED, S.CLOSED, S.MERGED}),
    S.RESOLVED: frozenset({S.CLOSED, S.REOPENED}),
    S.CLOSED: frozenset({S.REOPENED}),
    S.REOPENED: frozenset(
        {
            S.FORWARDED,
            S.IN_PROGRESS,
            S.WAITING_ON_CITIZEN,
            S.REFERRED_EXTERNALLY,
            S.RESOLVED,
            S.MERGED,
        }
    ),
    S.MERGED: frozenset(),
}

STATUS_NAMES_TR = {
    S.NEW: "yeni",
    S.FORWARDED: "müdürlüğe iletildi",
    S.IN_PROGRESS: "işlemde",
    S.WAITING_ON_CITIZEN: "vatandaştan bilgi bekleniyor",
    S.REFERRED_EXTERNALLY: "ilgili kuruma yönlendirildi",
    S.RESOLVED: "çözüldü",
    S.CLOSED: "kapatıldı",
    S.REOPENED: "yeniden açıldı",
    S.MERGED: "birleştirildi",
}


def can_move(current: S, target: S) -> bool:
    return target in TRANSITIONS[current]


def check_move(current: S, target: S) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed."""
    if not can_move(current, target):
        raise InvalidTransition(
            f"Başvuru '{STATUS_NAMES_TR[current]}' durumundan "
            f"'{STATUS_NAMES_TR[target]}' durumuna geçemez.",
            f"A ticket cannot move from '{current.value}' to '{target.value}'.",
            current=current.value,
            target=target.value,
        )
