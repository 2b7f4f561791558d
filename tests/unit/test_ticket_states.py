"""Unit tests for services.ticket_states (pure logic, no database)."""

from __future__ import annotations

from collections import deque

import pytest

from models import TicketStatus as S
from services.errors import InvalidTransition
from services.ticket_states import STATUS_NAMES_TR, TRANSITIONS, can_move, check_move


def _reachable(start: S) -> set[S]:
    """Statuses reachable from ``start`` in one or more moves (breadth-first search)."""
    seen: set[S] = set()
    queue = deque(TRANSITIONS[start])
    while queue:
        status = queue.popleft()
        if status in seen:
            continue
        seen.add(status)
        queue.extend(TRANSITIONS[status] - seen)
    return seen


def test_every_status_has_transitions_and_a_turkish_name() -> None:
    assert set(TRANSITIONS) == set(S)
    assert set(STATUS_NAMES_TR) == set(S)
    assert all(name.strip() for name in STATUS_NAMES_TR.values())
    assert len(set(STATUS_NAMES_TR.values())) == len(S)


def test_transition_targets_are_statuses() -> None:
    for targets in TRANSITIONS.values():
        assert targets <= set(S)


def test_merged_is_terminal() -> None:
    assert TRANSITIONS[S.MERGED] == frozenset()
    assert _reachable(S.MERGED) == set()
    for target in S:
        assert not can_move(S.MERGED, target)


@pytest.mark.parametrize("status", [s for s in S if s is not S.MERGED])
def test_every_live_status_can_reach_resolved_or_closed(status: S) -> None:
    assert _reachable(status) & {S.RESOLVED, S.CLOSED}


def test_closed_only_to_reopened() -> None:
    assert TRANSITIONS[S.CLOSED] == frozenset({S.REOPENED})


def test_nothing_goes_back_to_new() -> None:
    assert all(S.NEW not in targets for targets in TRANSITIONS.values())


def test_reopened_only_after_resolved_or_closed() -> None:
    sources = {s for s, targets in TRANSITIONS.items() if S.REOPENED in targets}
    assert sources == {S.RESOLVED, S.CLOSED}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.NEW, S.FORWARDED),
        (S.NEW, S.RESOLVED),
        (S.RESOLVED, S.CLOSED),
        (S.RESOLVED, S.REOPENED),
        (S.CLOSED, S.REOPENED),
        (S.REOPENED, S.IN_PROGRESS),
        (S.WAITING_ON_CITIZEN, S.CLOSED),
    ],
)
def test_allowed_moves(current: S, target: S) -> None:
    assert can_move(current, target)
    check_move(current, target)  # does not raise


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.CLOSED, S.IN_PROGRESS),
        (S.CLOSED, S.RESOLVED),
        (S.MERGED, S.NEW),
        (S.MERGED, S.REOPENED),
        (S.NEW, S.CLOSED),
        (S.NEW, S.REOPENED),
        (S.IN_PROGRESS, S.NEW),
        (S.RESOLVED, S.IN_PROGRESS),
    ],
)
def test_forbidden_moves_raise_in_both_languages(current: S, target: S) -> None:
    assert not can_move(current, target)
    with pytest.raises(InvalidTransition) as info:
        check_move(current, target)
    error = info.value
    assert error.code == "invalid_transition"
    assert STATUS_NAMES_TR[current] in error.message_tr
    assert STATUS_NAMES_TR[target] in error.message_tr
    assert current.value in error.message_en
    assert target.value in error.message_en
    assert error.message_tr != error.message_en
    assert error.message("en") == error.message_en
    assert error.message("tr") == error.message_tr
    assert error.details == {"current": current.value, "target": target.value}


def test_check_move_agrees_with_can_move_for_every_pair() -> None:
    for current in S:
        for target in S:
            if can_move(current, target):
                check_move(current, target)
            else:
                with pytest.raises(InvalidTransition):
                    check_move(current, target)
