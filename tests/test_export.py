"""Export explained (machines/export.py): one small synthetic trace per reason, where that reason
must be the one reported; the ledger (`pvopt energy`) and the status use the same rule."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from machines.controller import Controller
from machines.energy import Ledger
from machines.export import EXPORT_REASONS, NOTHING_LEFT, Room, attribute_export
from machines.model import Kind, LoadSpec, MeterSnapshot
from machines.policy import PolicyParams
from machines.status import build_status
from pvopt.config import Config
from pvopt.energy_report import summarize
from pvsim.simulator import simulate
from pvsim.traces import Trace

START = 1465984800.0  # 2016-06-15 10:00 UTC
BASE_W = 300.0
TZ = ZoneInfo("Europe/Paris")


def trace(*segments: tuple[int, float]) -> Trace:
    """Surplus (PV − base) held for each (seconds, watts) segment."""
    surplus = np.concatenate([np.full(n, float(w)) for n, w in segments])
    return Trace("synthetic", START, surplus + BASE_W, np.full(len(surplus), BASE_W))


def house(*equipment: dict[str, Any], **sections: Any) -> Config:
    return Config.model_validate({"equipment": list(equipment), **sections})


def dimmer(name: str = "rail", max_power: float = 3000, **kw: Any) -> dict[str, Any]:
    return {"type": "VariablePowerEquipment", "name": name, "max_power": max_power, **kw}


def relay(name: str = "pump", **kw: Any) -> dict[str, Any]:
    return {"type": "ConstantPowerEquipment", "name": name, "nominal_power": 1000, **kw}


def heater(**kw: Any) -> dict[str, Any]:
    return {
        "type": "TempDrivenVariablePowerEquipment",
        "name": "water_heater",
        "max_power": 2400,
        "temp_min": 45,
        "temp_eco": 50,
        "temp_sol_min": 55,
        "temp_max": 60,
        "sim": {"litres": 200, "loss_w_per_k": 1.8, "thermostat_c": 65, "t0_c": 40},
        **kw,
    }


def reasons(cfg: Config, tr: Trace, policy: str | None = None) -> dict[str, float]:
    k = simulate(tr, cfg, policy).kpis
    by = k["export_by_reason_wh"]
    assert sum(by.values()) == pytest.approx(k["export_wh"], abs=0.3)  # every watt explained
    assert set(by) <= set(EXPORT_REASONS)
    return by


def top(by: dict[str, float], *, besides_nothing_left: bool = False) -> str:
    items = {k: v for k, v in by.items() if not (besides_nothing_left and k == NOTHING_LEFT)}
    return max(items, key=lambda k: items[k])


def test_attribution_rule() -> None:
    rooms = [Room(1000, "relay_start", continuous=False), Room(200, "margin"), Room(0, "manual")]
    assert attribute_export(100, rooms) == {"margin": 100}  # a dimmer could take it first
    assert attribute_export(500, rooms, lag_w=50) == {
        "between_samples": 50,
        "margin": 150,
        "relay_start": 300,
    }
    assert attribute_export(1500, rooms) == {"margin": 200, "relay_start": 1000, NOTHING_LEFT: 300}
    assert attribute_export(0, rooms) == {}


def test_nothing_left() -> None:
    by = reasons(house(dimmer(max_power=500)), trace((600, 2000)))
    assert top(by) == NOTHING_LEFT and by[NOTHING_LEFT] > 0.95 * sum(by.values())


def test_margin() -> None:
    assert top(reasons(house(dimmer()), trace((600, 1000)))) == "margin"


def test_between_samples() -> None:
    cfg = house(dimmer(), sim={"meter": {"period_s": 10}})
    ramp = trace(*[(1, 500 + 10 * i) for i in range(200)])  # +10 W/s, sampled every 10 s
    assert top(reasons(cfg, ramp)) == "between_samples"


def test_settling() -> None:
    cfg = house(dimmer(), regulation={"settle_s": 8, "tick_s": 1})
    ramp = trace(*[(1, 500 + 5 * i) for i in range(300)])
    assert top(reasons(cfg, ramp)) == "settling"


def test_damping() -> None:
    """After overshoots the policy rises by steps: the export meanwhile is the damping's."""
    ctl = _controller([LoadSpec("rail", 0, Kind.DIMMER, 3000.0)])
    _run(ctl, 10, 500.0)
    ctl.memo = replace(ctl.memo, rise_gain=0.125)  # as left by repeated overshoots
    _run(ctl, 4, 2500.0)
    assert ctl.limits["rail"] == "damping"
    by = summarize(ctl.drain_intervals() + ctl.ledger.peek(), ["rail"])["export_by_reason_wh"]
    assert top(by) == "damping"


def test_min_power() -> None:
    assert top(reasons(house(dimmer(min_power_w=400)), trace((600, 300)))) == "min_power"


def test_relay_start() -> None:
    assert top(reasons(house(relay()), trace((600, 900)))) == "relay_start"


def test_min_off() -> None:
    cfg = house(relay(min_off_s=600))
    tr = trace((180, 2500), (60, 0), (500, 1400))  # on, cut by a cloud, then held off
    assert top(reasons(cfg, tr), besides_nothing_left=True) == "min_off"


def test_meter_stale() -> None:
    cfg = house(dimmer(), meter={"stale_after_s": 5}, sim={"meter": {"period_s": 30}})
    assert top(reasons(cfg, trace((600, 1000)))) == "meter_stale"


def test_satisfied() -> None:
    # legacy does not top up: a load past its energy goal leaves the surplus
    cfg = house(dimmer(min_energy=5))
    assert top(reasons(cfg, trace((600, 1000)), "legacy")) == "satisfied"


def test_blocked() -> None:
    # legacy: an unsatisfied water heater at full power ends the pass; the rail gets nothing
    cfg = house(heater(), dimmer(max_power=500))
    by = reasons(cfg, trace((600, 3500)), "legacy")
    assert top(by, besides_nothing_left=True) == "blocked"


def _controller(specs: list[LoadSpec]) -> Controller:
    return Controller(specs, TZ, PolicyParams(), START, ledger=Ledger(300, [s.name for s in specs]))


def _run(ctl: Controller, seconds: int, surplus: float) -> None:
    """Tick every 2 s on a meter that shows the surplus less what the loads draw."""
    t0 = ctl.last_tick if ctl.last_tick is not None else START
    for i in range(0, seconds, 2):
        now = t0 + i + 2
        drawn = sum(m.setpoint_w for m in ctl.machines.values())
        ctl.tick(now, MeterSnapshot(drawn - surplus, now))


@pytest.mark.parametrize("reason", ["manual", "forced"])
def test_ledger_and_status_explain(reason: str) -> None:
    """The service's path: the ledger's intervals (pvopt energy) and the status."""
    ctl = _controller([LoadSpec("rail", 0, Kind.DIMMER, 2000.0)])
    rail = ctl.load("rail")
    if reason == "manual":
        rail.switch_off(START)
    else:
        rail.force(START, until=None, power_w=500.0)
    _run(ctl, 900, 1500.0)
    totals = summarize(ctl.drain_intervals(), ["rail"])
    by = totals["export_by_reason_wh"]
    assert top(by) == reason
    assert sum(by.values()) == pytest.approx(totals["export_wh"], rel=1e-3)
    now = ctl.last_tick
    assert now is not None
    drawn = rail.setpoint_w
    doc = build_status(
        ctl, MeterSnapshot(drawn - 1500.0, now), 0.0, now, policy="default", dry_run=False
    )
    assert doc["export"]["reason"] == reason
    assert doc["export"]["w"] == pytest.approx(1500.0 - drawn)


def test_status_margin_then_nothing_left() -> None:
    ctl = _controller([LoadSpec("rail", 0, Kind.DIMMER, 2000.0)])
    _run(ctl, 60, 1000.0)
    now = ctl.last_tick
    assert now is not None
    drawn = ctl.load("rail").setpoint_w
    doc = build_status(
        ctl, MeterSnapshot(drawn - 1000.0, now), 0.0, now, policy="default", dry_run=False
    )
    assert doc["export"]["reason"] == "margin"
    _run(ctl, 60, 3000.0)
    now = ctl.last_tick
    assert now is not None
    doc = build_status(
        ctl, MeterSnapshot(2000.0 - 3000.0, now), 0.0, now, policy="default", dry_run=False
    )
    assert doc["export"]["reason"] == NOTHING_LEFT
