"""Linky arithmetic: S, Q from ERQT deltas (the seed's rule), P, and payload rejection."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machines.meter import (
    LinkyState,
    MeterValueError,
    ReactiveTracker,
    active_power,
    active_power_bounded,
    check_active,
    check_apparent,
    net_apparent,
    parse_number,
    reactive_power,
    reactive_timed,
    track_reactive,
)


def test_seed_formula() -> None:
    assert net_apparent(1500, 0) == 1500
    assert active_power(500, 300) == pytest.approx(400)
    assert active_power(-500, 300) == pytest.approx(-400)
    assert active_power(100, 300) == pytest.approx(math.sqrt(80000))  # the seed's |S² − Q²|


@given(st.floats(-20000, 20000), st.floats(0, 5000))
def test_bounded_estimate_never_exceeds_apparent_power(s: float, q: float) -> None:
    p = active_power_bounded(s, q)
    assert abs(p) <= abs(s) + 1e-9
    assert p == 0 or math.copysign(1, p) == math.copysign(1, s)


def track(readings: list[tuple[float, float]]) -> ReactiveTracker:
    t = ReactiveTracker()
    for at, index in readings:
        t = track_reactive(t, index, at)
    return t


@pytest.mark.parametrize(
    ("readings", "at", "q"),
    [
        ([(0, 100), (30, 104)], 30, 0.0),  # 4 varh in 30 s: not yet
        ([(0, 100), (36, 105)], 36, 500.0),  # 5 varh in 36 s
        ([(0, 100), (59, 102)], 59, 0.0),  # 2 varh before 60 s: not yet
        ([(0, 100), (72, 102)], 72, 100.0),  # 2 varh after 60 s
        ([(0, 100), (36, 105), (150, 105)], 150, 500.0),  # still within 120 s of the move
        ([(0, 100), (36, 105), (156, 105)], 156, 0.0),  # 120 s without movement
    ],
)
def test_reactive_from_erqt(readings: list[tuple[float, float]], at: float, q: float) -> None:
    assert reactive_power(track(readings), at) == pytest.approx(q)


def test_erqt_going_backwards_or_absurd_is_refused_and_q_kept() -> None:
    t = track([(0, 100), (36, 105)])
    with pytest.raises(MeterValueError, match="backwards"):
        track_reactive(t, 104, 40)
    with pytest.raises(MeterValueError, match="implies"):
        track_reactive(t, 100_000, 40)
    assert reactive_power(t, 40) == pytest.approx(500)


@pytest.mark.parametrize(
    "payload",
    # Python's float() also takes digit separators and any script's digits: a meter speaks
    # plain ASCII decimals, anything else is a corrupt or foreign payload
    [b"abc", b"nan", b"inf", b"", b"-inf", b"1e999", b"1_000", "١٢٣".encode(), b"1,5", b"0x10"],
)
def test_non_numbers_refused(payload: bytes) -> None:
    with pytest.raises(MeterValueError):
        parse_number(payload)


def test_range_checks() -> None:
    assert parse_number(b" 1234 ") == 1234
    assert parse_number("-12.5e1") == -125.0 and parse_number(b"+.5") == 0.5
    with pytest.raises(MeterValueError):
        check_apparent(-1, "SINSTS")
    with pytest.raises(MeterValueError):
        check_apparent(100_001, "SINSTS")
    with pytest.raises(MeterValueError):
        check_active(-100_001, "grid")
    assert check_active(-5000, "grid") == -5000


def test_snapshot_pairs_latest_values_and_judges_staleness_on_the_newest() -> None:
    state = LinkyState(sinsts=0.0, sinsts_at=100.0, sinsti=800.0, sinsti_at=102.0)
    snap = state.snapshot(110.0, stale_after_s=30)
    assert snap.grid_w == pytest.approx(-800) and snap.sampled_at == 100.0 and not snap.stale
    assert state.snapshot(133.0, stale_after_s=30).stale
    assert LinkyState().snapshot(0.0, 30).stale


def test_timed_reactive_cancels_the_index_quantisation() -> None:
    """Steps of a 100 var index (one varh every 36 s), seen by 2 s samples: the seed's rule
    counts whole varh over its window, the timed estimate the time between steps."""
    t = ReactiveTracker()
    for k in range(0, 400, 2):
        t = track_reactive(t, 1000 + math.floor((k + 7) / 36), k)
    assert reactive_timed(t, 398) == pytest.approx(100.0, rel=0.08)
    # the index stops: the timed Q falls with the time since the last step, never above it
    late = 398 + 200
    assert reactive_timed(t, late) <= 3600 / (late - t.moved_at) + 1e-9


def test_an_on_change_bridge_gives_snapshots_as_fresh_as_an_every_frame_one() -> None:
    """Guards item 5: a TIC bridge that publishes a label only when it changes leaves SINSTI
    silent at 0 while the house imports; the snapshot was as old as the older label, so the
    policy waited for a settled sample that never came and the loads froze in `settling`.
    A Linky sends both labels and only one is non-zero: a fresh non-zero value of one says
    the other is 0 now."""
    from jobs.meter_cache import MeterCache
    from pvopt.kinds import MeterConfig, meter_source

    on_change, every_frame = (
        MeterCache(meter_source(MeterConfig()), 0.0),
        MeterCache(meter_source(MeterConfig()), 0.0),
    )
    on_change.feed("tic/SINSTI", b"0", 1.0)  # its last message, then silence: still 0
    for t in range(2, 120):
        drawn = str(500 + t % 7).encode()  # the import moves every second
        for cache in (on_change, every_frame):
            cache.feed("tic/SINSTS", drawn, float(t))
        every_frame.feed("tic/SINSTI", b"0", float(t))
        a, b = on_change.snapshot(t + 0.5), every_frame.snapshot(t + 0.5)
        assert (a.grid_w, a.sampled_at, a.stale) == (b.grid_w, b.sampled_at, b.stale), t
    # the other way round: exporting, SINSTS silent at 0
    for t in range(120, 240):
        injected = str(800 + t % 5).encode()
        for cache in (on_change, every_frame):
            cache.feed("tic/SINSTI", injected, float(t))
        every_frame.feed("tic/SINSTS", b"0", float(t))
        a, b = on_change.snapshot(t + 0.5), every_frame.snapshot(t + 0.5)
        assert (a.grid_w, a.sampled_at, a.stale) == (b.grid_w, b.sampled_at, b.stale), t
