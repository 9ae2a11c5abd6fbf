"""The controller tick: machines then policy, energy accounting, records, restore."""

from __future__ import annotations

import pytest

from machines.controller import Controller, UnknownLoad
from machines.model import MeterSnapshot, State
from machines.policy import PolicyParams
from tests.conftest import PARIS, T0


def test_tick_counts_energy_and_logs_transitions(house) -> None:
    ctl = Controller(house.specs(), PARIS, PolicyParams(), T0)
    ctl.machines["water_heater"].set_temperature(50.0, T0)
    r = ctl.tick(T0, MeterSnapshot(-2020.0, T0, False))
    assert r.power_w["water_heater"] == 2000 and r.changed
    ctl.tick(T0 + 3600, MeterSnapshot(-20.0, T0 + 3600, False))
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
