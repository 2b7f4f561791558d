"""The pure, seeded, stratified draw of the mayor's weekly call list (R5.4).

No database here: :func:`select_entries` takes plain :class:`Candidate` values, so the
properties of the draw (stratification, exclusions, reproducibility) are tested with
Hypothesis (tests/unit/test_mayor_draw_properties.py). ``services.mayor_calls`` builds the
candidates from the past week's tickets and stores the result.

The rule (decision 0022), for a list of ``size`` entries:

1. Excluded candidates (``excluded`` set: opted out, on a recent list, no reachable phone)
   are dropped. The rest are sorted by ticket id, then shuffled with ``random.Random(seed)``:
   the same seed over the same pool, in any order, gives the same sequence.
2. Two entries never share a person (the ``person`` key: the citizen, or the phone number
   for a ticket without a citizen) nor a phone number.
3. Let *t* be the largest number (at most ``size``) of candidates with pairwise different
   people, phones, neighbourhoods **and** departments (a missing neighbourhood or department
   counts as one value, "unknown"). The first such *t*-set found by a depth-first search in
   the shuffled order is taken. So whenever the pool allows a list whose neighbourhoods and
   departments are all different, the list has that property.
4. Remaining places are filled in shuffled order, first with candidates that bring a new
   neighbourhood or a new department, then with any other (different person and phone).

The search of step 3 is bounded (:data:`SEARCH_BUDGET` steps, deterministic): a pool that
exhausts it keeps the best set found so far, which is still reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RULE_VERSION = "stratified-v1"  # recorded in the list's criteria; change it with the rule
SEARCH_BUDGET = 200_000


@dataclass(frozen=True)
class Candidate:
    """One ticket of the week that the mayor's office might call about."""

    ticket_id: int
    person: str  # "c:<citizen id>" or "p:<e164>": the same person is never picked twice
    phone_e164: str
    neighbourhood_id: int | None
    department_id: int | None
    citizen_id: int | None = None
    excluded: str | None = None  # why it cannot be drawn (None: eligible)


def eligible(pool: Iterable[Candidate]) -> list[Candidate]:
    """The candidates that may be drawn, in canonical order (ticket id)."""
    return sorted((c for c in pool if c.excluded is None), key=lambda c: c.ticket_id)


def select_entries(pool: Iterable[Candidate], *, size: int, seed: int) -> list[Candidate]:
    """Draw at most ``size`` candidates from ``pool`` by the rule of this module (R5.4).

    Guarantees: the result is a subset of the eligible candidates of ``pool``; no two
    entries share a person or a phone number; it has ``size`` entries when the pool holds
    that many different people with different phones (fewer otherwise); its neighbourhoods
    and departments are pairwise different whenever the eligible pool holds such a set of
    that size; and it depends only on ``seed`` and the set of candidates, not on their order.
    """
    if size <= 0:
        return []
    order = eligible(pool)
    random.Random(seed).shuffle(order)
    picked = _stratified_core(order, size)
    taken = {c.ticket_id for c in picked}
    hoods = {c.neighbourhood_id for c in picked}
    units = {c.department_id for c in picked}
    for prefer_new in (True, False):
        for cand in order:
            if len(picked) >= size:
                break
            if cand.ticket_id in taken or not _compatible(cand, picked):
                continue
            if prefer_new and cand.neighbourhood_id in hoods and cand.department_id in units:
                continue
            picked.append(cand)
            taken.add(cand.ticket_id)
            hoods.add(cand.neighbourhood_id)
            units.add(cand.department_id)
    return picked  # in draw order: the stratified core first, then the fillers


def _compatible(cand: Candidate, picked: Sequence[Candidate]) -> bool:
    """Not the same person nor the same phone as an entry already picked."""
    return all(cand.person != p.person and cand.phone_e164 != p.phone_e164 for p in picked)


def _compressed(order: Sequence[Candidate], size: int) -> list[Candidate]:
    """Per (neighbourhood, department) pair, the first ``2 * size`` candidates with
    different people and phones, in shuffled order.

    Enough for the search: a set uses a pair once, and each of its other (at most
    ``size - 1``) entries rules out at most two of these (one by person, one by phone).
    """
    kept: dict[tuple[int | None, int | None], list[Candidate]] = {}
    result = []
    for cand in order:
        bucket = kept.setdefault((cand.neighbourhood_id, cand.department_id), [])
        if len(bucket) >= 2 * size or not _compatible(cand, bucket):
            continue
        bucket.append(cand)
        result.append(cand)
    return result


def _stratified_core(order: Sequence[Candidate], size: int) -> list[Candidate]:
    """The first largest set (at most ``size``) of candidates with pairwise different
    people, phones, neighbourhoods and departments, by a depth-first search in ``order``."""
    cands = _compressed(order, size)
    limit = min(
        size,
        len({c.neighbourhood_id for c in cands}),
        len({c.department_id for c in cands}),
    )
    best: list[Candidate] = []
    steps = 0

    def search(start: int, chosen: list[Candidate], hoods: set[object], units: set[object]) -> bool:
        nonlocal best, steps
        if len(chosen) > len(best):
            best = list(chosen)
        if len(best) >= limit:
            return True
        for index in range(start, len(cands)):
            steps += 1
            if steps > SEARCH_BUDGET:
                return True
            cand = cands[index]
            if cand.neighbourhood_id in hoods or cand.department_id in units:
                continue
            if not _compatible(cand, chosen):
                continue
            rest = cands[index + 1 :]
            free_hoods = {c.neighbourhood_id for c in rest} - hoods - {cand.neighbourhood_id}
            free_units = {c.department_id for c in rest} - units - {cand.department_id}
            if len(chosen) + 1 + min(len(free_hoods), len(free_units)) <= len(best):
                continue  # this branch cannot beat the best set found so far
            chosen.append(cand)
            hoods.add(cand.neighbourhood_id)
            units.add(cand.department_id)
            done = search(index + 1, chosen, hoods, units)
            chosen.pop()
            hoods.discard(cand.neighbourhood_id)
            units.discard(cand.department_id)
            if done:
                return True
        return False

    search(0, [], set(), set())
    return best
