"""The controller tick: machines then policy, energy accounting, records, restore."""

from __future__ import annotations

from datetime import date

import pytest

from machines.controller import Controller, UnknownLoad
from machines.model import MeterSnapshot, State
from machines.policy import PolicyParams
from machines.tariff import day_bounds
from tests.conftest import PARIS, T0


def test_tick_counts_energy_and_logs_transitions(house) -> None:
    fixed = PolicyParams.from_flat(margin_w=20.0, margin_min_w=20.0)  # a steady 20 W margin holds
    ctl = Controller(house.specs(), PARIS, fixed, T0)
    ctl.machines["water_heater"].set_temperature(50.0, T0)
    r = ctl.tick(T0, MeterSnapshot(-2020.0, T0, False))
    assert r.power_w["water_heater"] == 2000 and r.changed
    for t in range(60, 3601, 60):  # the service ticks every few seconds, never an hour apart
        ctl.tick(T0 + t, MeterSnapshot(-20.0, T0 + t, False))
    assert ctl.machines["water_heater"].energy_today_wh == pytest.approx(2000.0)
    ctl.machines["water_heater"].set_temperature(60.0, T0 + 3601)
    r = ctl.tick(T0 + 3602, MeterSnapshot(-20.0, T0 + 3602, False))
    assert [(x.load, x.source, x.dest, x.reason) for x in r.records] == [
        ("water_heater", "solar", "off", "satisfied")
    ]


def test_restore_resumes_where_it_stopped(house) -> None:
    ctl = Controller(house.specs(), PARIS, PolicyParams(), T0)
    ctl.load(0).set_temperature(50.0, T0)
    ctl.load("pool_pump").force(T0, until=T0 + 7200, power_w=None)
    ctl.tick(T0, MeterSnapshot(500.0, T0, False))
    back = Controller(house.specs(), PARIS, PolicyParams(), T0 + 60, saved=ctl.dump())
    pump = back.load("pool_pump")
    assert (pump.state, pump.forced_until, pump.setpoint_w) == (State.BOOST, T0 + 7200, 1000.0)
    with pytest.raises(UnknownLoad, match="unknown load 'garage'"):
        back.load("garage")
    with pytest.raises(UnknownLoad):
        back.load(7)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)])
def test_dst_days_count_23_and_25_hours_of_energy(day: date, hours: int) -> None:
    """Guards a gap of item 9: on DST days the daily counters and `pvopt energy`'s day hold
    23 or 25 hours, and the counters roll at the local midnights, not at UTC ones."""
    from machines.energy import Ledger
    from machines.model import Kind, LoadSpec
    from pvopt.energy_report import report
    from state.store import MemoryStore

    # the meter here does not answer the rail's command: no thermostat watch (test_thermostat)
    rail = LoadSpec("rail", 0, Kind.DIMMER, 500.0, probes_per_hour=0)
    start, end = (int(x) for x in day_bounds(day, PARIS))
    ledger = Ledger(60, ["rail"])
    t = float(start - 600)
    ctl = Controller([rail], PARIS, PolicyParams(), t, ledger=ledger)
    store = MemoryStore()
    yesterday = None
    while t <= end + 600:
        ctl.tick(t, MeterSnapshot(-2000.0, t, False))  # the rail runs at 500 W throughout
        if t == end + 60:
            yesterday = ctl.machines["rail"].energy_yesterday_wh
        store.save({}, [], intervals=ctl.drain_intervals())
        t += 60
    # the tick at start − 600 is the first: energy counts from there; the day starts at `start`
    assert yesterday == pytest.approx(500.0 * hours)
    [(_, totals, found)] = report(store, PARIS, ["rail"], day, 1)
    assert totals["loads"]["rail"] == pytest.approx(500.0 * hours, abs=0.1)  # 0.1 mWh roundings
    assert len(found) == hours * 60 and totals["covered_h"] == hours


def test_one_accounting_step_credits_at_most_max_account_step_s() -> None:
    """Guards item 4: a stall or a clock step the shell did not see (no monotonic clock)
    credited the whole gap at the loads' power; one step now counts MAX_ACCOUNT_STEP_S."""
    from machines.controller import MAX_ACCOUNT_STEP_S
    from machines.model import Kind, LoadSpec

    ctl = Controller([LoadSpec("rail", 0, Kind.DIMMER, 500.0)], PARIS, PolicyParams(), T0)
    ctl.tick(T0, MeterSnapshot(-2000.0, T0, False))
    ctl.tick(T0 + 7200, MeterSnapshot(-2000.0, T0 + 7200, False))
    assert ctl.machines["rail"].energy_total_wh == pytest.approx(500 * MAX_ACCOUNT_STEP_S / 3600)


def test_a_tick_spanning_local_midnight_splits_its_energy_there() -> None:
    """A tick 120 s after the last one, 60 s past local midnight: half its energy belongs to
    yesterday. It all went to the new day, so 'today' started 8 Wh high (up to 42 Wh after a
    300 s stall at 500 W) and the min-energy check of the day before missed it."""
    from machines.model import Kind, LoadSpec

    start, _ = (int(x) for x in day_bounds(date(2026, 6, 15), PARIS))
    t = float(start - 3600)
    rail = LoadSpec("rail", 0, Kind.DIMMER, 500.0, probes_per_hour=0)  # a meter that never moves
    ctl = Controller([rail], PARIS, PolicyParams(), t)
    while t < start - 60:
        ctl.tick(t, MeterSnapshot(-2000.0, t, False))  # the rail runs at 500 W throughout
        t += 60
    assert t == start - 60
    ctl.tick(t, MeterSnapshot(-2000.0, t, False))
    ctl.tick(start + 60, MeterSnapshot(-2000.0, start + 60, False))
    rail = ctl.machines["rail"]
    assert rail.energy_yesterday_wh == pytest.approx(500.0)  # 23:00 → 00:00 at 500 W
    assert rail.energy_today_wh == pytest.approx(500.0 * 60 / 3600)
    assert rail.energy_total_wh == pytest.approx(500.0 + 500.0 * 60 / 3600)
