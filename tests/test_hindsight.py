"""The hindsight relay schedule (pvsim/hindsight.py) is the optimum its constraints allow."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pvsim.hindsight import best_schedule


def feasible(schedule: tuple[bool, ...], hold: int, max_switches: int) -> bool:
    """Starts off; switches at least `hold` blocks apart; at most `max_switches` of them."""
    switches = [b for b, on in enumerate(schedule) if on != (schedule[b - 1] if b else False)]
    gaps_ok = all(b2 - b1 >= hold for b1, b2 in itertools.pairwise(switches))
    return gaps_ok and len(switches) <= max_switches


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=10),
    st.integers(1, 3),
    st.integers(0, 4),
)
def test_best_schedule_is_the_brute_force_optimum(
    rewards: list[int], hold: int, max_switches: int
) -> None:
    reward = np.array(rewards, dtype=float)
    got = best_schedule(reward, hold, max_switches)
    assert feasible(tuple(bool(x) for x in got), hold, max_switches)
    best = max(
        reward[list(s)].sum()
        for s in itertools.product((False, True), repeat=len(rewards))
        if feasible(s, hold, max_switches)
    )
    assert reward[got].sum() == best


def test_a_dip_shorter_than_the_hold_is_run_through() -> None:
    # sun, a 2-block cloud, sun: with a 3-block hold, stopping cannot pay; running through does
    reward = np.array([5, 5, 5, -1, -1, 5, 5, 5], dtype=float)
    assert best_schedule(reward, hold=3, max_switches=4).all()
    # with no switch allowed the relay stays off
    assert not best_schedule(reward, hold=3, max_switches=0).any()
