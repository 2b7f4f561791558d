"""Properties of the mayor's weekly draw with Hypothesis (R5.4; issue 6 item 6).

``services.mayor_draw.select_entries`` is pure: these tests check it on generated pools —
stratification (different neighbourhoods and departments whenever the pool allows it),
exclusions, size, reproducibility (same seed and pool in any order, same list) and that
different seeds give different lists.
"""

from __future__ import annotations

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.mayor_draw import Candidate, select_entries

REASONS = (None, None, None, "do_not_call", "no_consent", "recent_list", "no_phone")


@st.composite
def pools(draw: st.DrawFn, max_size: int = 14) -> list[Candidate]:
    """Tickets of a week: a few people (some with several tickets), a few neighbourhoods
    and departments (``None`` = unknown), some candidates excluded. One phone per person."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    people = draw(st.integers(min_value=1, max_value=10))
    hoods = draw(st.integers(min_value=1, max_value=6))
    units = draw(st.integers(min_value=1, max_value=6))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    pool = []
    for ticket_id in ids:
        person = draw(st.integers(0, people - 1))
        pool.append(
            Candidate(
                ticket_id=ticket_id,
                person=f"c:{person}",
                phone_e164=f"+90532000{person:04d}",
                neighbourhood_id=draw(st.one_of(st.none(), st.integers(1, hoods))),
                department_id=draw(st.one_of(st.none(), st.integers(1, units))),
                citizen_id=person,
                excluded=draw(st.sampled_from(REASONS)),
            )
        )
    return pool


sizes = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**48 - 1)


def _fully_stratified(picks: list[Candidate]) -> bool:
    return (
        len({c.neighbourhood_id for c in picks}) == len(picks)
        and len({c.department_id for c in picks}) == len(picks)
        and len({c.person for c in picks}) == len(picks)
    )


def _pool_allows(pool: list[Candidate], size: int) -> bool:
    """Brute force: does the eligible pool hold ``size`` fully different candidates?"""
    ok = [c for c in pool if c.excluded is None]
    return any(_fully_stratified(list(combo)) for combo in combinations(ok, size))


@settings(max_examples=300, deadline=None)
@given(pool=pools(), size=sizes, seed=seeds)
def test_picks_are_eligible_distinct_people_and_as_many_as_asked(
    pool: list[Candidate], size: int, seed: int
) -> None:
    picks = select_entries(pool, size=size, seed=seed)
    eligible = [c for c in pool if c.excluded is None]
    assert all(p in eligible for p in picks)  # picks ⊆ pool, never an excluded citizen
    assert all(p.excluded is None for p in picks)
    assert len({p.ticket_id for p in picks}) == len(picks)
    assert len({p.person for p in picks}) == len(picks)
    assert len({p.phone_e164 for p in picks}) == len(picks)
    assert len(picks) == min(size, len({c.person for c in eligible}))


@settings(max_examples=300, deadline=None)
@given(pool=pools(max_size=10), size=st.integers(min_value=1, max_value=4), seed=seeds)
def test_neighbourhoods_and_departments_differ_whenever_the_pool_allows(
    pool: list[Candidate], size: int, seed: int
) -> None:
    picks = select_entries(pool, size=size, seed=seed)
    if _pool_allows(pool, size):
        assert len(picks) == size
        assert _fully_stratified(picks)


@settings(max_examples=200, deadline=None)
@given(pool=pools(), size=sizes, seed=seeds, data=st.data())
def test_same_seed_and_same_pool_in_any_order_give_the_same_list(
    pool: list[Candidate], size: int, seed: int, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(pool))
    first = select_entries(pool, size=size, seed=seed)
    assert select_entries(shuffled, size=size, seed=seed) == first
    assert select_entries(list(reversed(pool)), size=size, seed=seed) == first


@settings(max_examples=50, deadline=None)
@given(seed=seeds, size=st.integers(min_value=1, max_value=4))
def test_different_seeds_draw_different_lists(seed: int, size: int) -> None:
    pool = [
        Candidate(
            ticket_id=i,
            person=f"c:{i}",
            phone_e164=f"+90532100{i:04d}",
            neighbourhood_id=i % 7,
            department_id=i % 5,
            citizen_id=i,
        )
        for i in range(1, 41)
    ]
    lists = {
        tuple(c.ticket_id for c in select_entries(pool, size=size, seed=seed + k))
        for k in range(20)
    }
    assert len(lists) > 1
    # Every ticket can be drawn: over many seeds the first place goes to many tickets.
    firsts = {select_entries(pool, size=1, seed=seed + k)[0].ticket_id for k in range(60)}
    assert len(firsts) > 10


def test_an_empty_or_fully_excluded_pool_draws_nothing() -> None:
    assert select_entries([], size=4, seed=1) == []
    gone = Candidate(1, "c:1", "+905320000001", 1, 1, 1, excluded="do_not_call")
    assert select_entries([gone], size=4, seed=1) == []
    assert select_entries([gone], size=0, seed=1) == []
