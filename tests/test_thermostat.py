"""A load its own thermostat cut (machines/thermostat.py): found from its reading or from the
grid, left out without counting energy, probed at a bounded rate, back when it draws."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machines.controller import Controller
from machines.loads import LoadMachine
from machines.model import Kind, LoadSpec, MeterSnapshot, State
from machines.policy import PolicyParams
from machines.thermostat import (
    CONFIRM_S,
    FIRST_PROBE_S,
    PROBE_S,
    Steps,
    ThermostatWatch,
)
from tests.conftest import PARIS, T0

HEATER = LoadSpec("heater", 1, Kind.DIMMER, 2400.0)  # no probe, no power reading
RAIL = LoadSpec("towel_rail", 2, Kind.DIMMER, 500.0)


def test_a_reading_near_zero_while_commanded_cuts_it() -> None:
    w = ThermostatWatch()
    w.reading(2400.0, 4.0, T0)
    w.reading(2400.0, 4.0, T0 + CONFIRM_S - 1)
    assert not w.is_cut  # not yet: a reading may lag the command
    w.reading(2400.0, 4.0, T0 + CONFIRM_S)
    assert w.is_cut and w.holds(T0 + CONFIRM_S)
    w.reading(2400.0, 2350.0, T0 + CONFIRM_S + 1)  # it draws again (on a probe)
    assert not w.is_cut


def test_a_small_command_or_no_reading_says_nothing() -> None:
    w = ThermostatWatch()
    for t in range(0, 120, 2):
        w.reading(150.0, 0.0, T0 + t)  # below COMMAND_MIN_W
        w.reading(2400.0, None, T0 + t + 1)  # no fresh reading
    assert not w.is_cut


def test_the_grid_judges_steps() -> None:
    steps = Steps(T0, -2900.0, {"heater": 2400.0, "towel_rail": 500.0}, ("heater", "towel_rail"))
    assert steps.judge(-2900.0 + 2900.0) == (["heater", "towel_rail"], None)  # both answered
    assert steps.judge(-2900.0 + 500.0) == ([], "heater")  # only the rail drew
    assert steps.judge(-2900.0 + 2400.0) == ([], "towel_rail")
    assert steps.judge(-2900.0 + 1500.0) == ([], None)  # the household moved too: no verdict


def _cut_by_probe_cycle(w: ThermostatWatch, now: float) -> float:
    """Run one probe that draws nothing; returns when it ended."""
    while w.holds(now):
        now += 2.0
    start = now
    while not w.holds(now):
        now += 2.0
    assert now - start == pytest.approx(PROBE_S, abs=2.0)
    return now


def test_probes_at_the_configured_rate_and_one_that_draws_brings_it_back() -> None:
    w = ThermostatWatch(probes_per_hour=4)
    w.reading(2400.0, 0.0, T0)
    w.reading(2400.0, 0.0, T0 + CONFIRM_S)
    t = T0 + CONFIRM_S
    ends = [t := _cut_by_probe_cycle(w, t) for _ in range(3)]
    assert w.probes == 3
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    assert all(g == pytest.approx(900.0 + PROBE_S, abs=4.0) for g in gaps)
    while w.holds(t):
        t += 2.0
    w.answered()  # the probe's step moved the grid: the thermostat closed again
    assert not w.is_cut and not w.holds(t + 1)


def test_a_grid_cut_is_verified_by_its_fall() -> None:
    w = ThermostatWatch()
    w.missed(T0)  # a rise the grid did not answer
    assert w.is_cut and w.verifying
    w.answered()  # ... but the fall of its command did: a cloud fooled the rise
    assert not w.is_cut
    w.missed(T0 + 10)
    w.missed(T0 + 12)  # the fall unanswered too: confirmed, a first probe soon
    assert w.is_cut and not w.verifying
    assert w.next_probe_at == pytest.approx(T0 + 12 + FIRST_PROBE_S)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["miss", "answer", "low", "high", "tick"]), st.integers(1, 120)),
        max_size=400,
    ),
    st.sampled_from([1.0, 4.0, 12.0]),
)
def test_probes_stay_within_their_rate(events: list[tuple[str, int]], rate: float) -> None:
    """Whatever the evidence, a load is probed no more than its rate (plus the first quick
    probe after each cut the grid confirmed)."""
    w = ThermostatWatch(probes_per_hour=rate)
    now, confirmed = T0, 0
    for kind, gap in events:
        now += gap
        if kind == "miss":
            verifying = w.verifying
            w.missed(now)
            confirmed += verifying and not w.verifying
        elif kind == "answer":
            w.answered()
        else:
            w.reading(2400.0, 0.0 if kind == "low" else 2400.0 if kind == "high" else None, now)
        w.holds(now)
    hours = (now - T0) / 3600.0
    assert w.probes <= rate * hours + confirmed + 1


def _controller() -> Controller:
    return Controller([HEATER, RAIL], PARIS, PolicyParams(), T0)


def test_a_heater_that_draws_nothing_is_cut_within_a_minute_and_the_rail_takes_the_surplus() -> (
    None
):
    """2 kW of surplus, the heater's thermostat open: the grid answers only the rail."""
    ctl = _controller()
    surplus, now = 2000.0, T0
    for _ in range(30):  # 60 s of a 2 s meter
        drawn = ctl.machines["towel_rail"].setpoint_w  # the heater draws nothing
        snap = MeterSnapshot(grid_w=drawn - surplus, sampled_at=now)
        ctl.tick(now, snap)
        now += 2.0
    heater, rail = ctl.machines["heater"], ctl.machines["towel_rail"]
    assert (heater.state, heater.reason, heater.setpoint_w) == (State.OFF, "thermostat_cut", 0.0)
    assert rail.setpoint_w == pytest.approx(500.0)
    assert heater.energy_today_wh < 2.0  # seconds of command at most, not a minute of 2.4 kW


def test_a_heater_that_draws_is_never_cut() -> None:
    ctl = _controller()
    now = T0
    for i in range(600):  # 20 minutes, the surplus swinging by a kW every minute
        surplus = 2200.0 + (1000.0 if (i // 30) % 2 else 0.0)
        drawn = sum(m.setpoint_w for m in ctl.machines.values())
        ctl.tick(now, MeterSnapshot(grid_w=drawn - surplus, sampled_at=now))
        now += 2.0
        assert ctl.machines["heater"].reason != "thermostat_cut", i


def test_a_boost_asked_for_a_cut_heater_is_tried() -> None:
    """The user's boost is not refused on old evidence: the heater gets its full command, and
    is cut again only if it still draws nothing."""
    m = LoadMachine(HEATER, PARIS, T0)
    m.thermostat.reading(2400.0, 0.0, T0)
    m.thermostat.reading(2400.0, 0.0, T0 + CONFIRM_S)
    m.update(T0 + CONFIRM_S, meter_stale=False)
    assert (m.state, m.reason) == (State.OFF, "thermostat_cut")
    m.force(T0 + 40, until=T0 + 3600, power_w=None)
    m.update(T0 + 42, meter_stale=False)
    assert m.state is State.BOOST
    m.thermostat.reading(2400.0, 0.0, T0 + 44)
    m.thermostat.reading(2400.0, 0.0, T0 + 44 + CONFIRM_S)
    m.update(T0 + 44 + CONFIRM_S, meter_stale=False)
    assert (m.state, m.reason) == (State.OFF, "thermostat_cut")  # the tank is hot: boost over
