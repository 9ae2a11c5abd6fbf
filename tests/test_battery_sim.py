"""The simulator's home battery (pvsim/battery.py, issue 26 part 4): its inverter's loop, its
limits and losses, its KPIs, and the invariant that a house without `battery:` simulates
exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvopt import config
from pvsim import physics
from pvsim.battery import Battery, BatterySpec
from pvsim.simulator import simulate
from pvsim.traces import load_trace, window
from tests.conftest import EXAMPLES, TRACES

GOLDEN = Path(__file__).parent / "data" / "no_battery_kpis.json"
LIVELY = 11 * 3600  # 13:00 Paris on broken_clouds


def spec(**kw: float) -> BatterySpec:
    base = {"capacity_wh": 5000.0, "max_charge_w": 2500.0, "max_discharge_w": 2500.0}
    return BatterySpec(**(base | kw))  # type: ignore[arg-type]


def run(b: Battery, grid_w: float, seconds: int) -> list[float]:
    """The house's grid without the battery held at `grid_w`: the meter's grid each second."""
    return [grid_w + b.step(grid_w) for _ in range(seconds)]


def test_charges_on_export_and_brings_the_grid_to_zero() -> None:
    b = Battery(spec(lag_s=2, period_s=2))
    meter = run(b, -1200.0, 20)
    assert meter[0] == -1200.0  # it acts on what it saw, lag_s later
    assert meter[-1] == pytest.approx(0.0) and b.power_w == pytest.approx(1200.0)


def test_discharges_on_import_up_to_its_limit() -> None:
    b = Battery(spec(max_discharge_w=2000))
    meter = run(b, 3000.0, 20)
    assert b.power_w == pytest.approx(-2000.0) and meter[-1] == pytest.approx(1000.0)


def test_charge_is_held_to_max_charge_w() -> None:
    b = Battery(spec(max_charge_w=800))
    assert run(b, -3000.0, 20)[-1] == pytest.approx(-2200.0)


def test_respects_its_soc_limits() -> None:
    full = Battery(spec(capacity_wh=100, soc0=99.9, max_soc=100))
    run(full, -2000.0, 600)
    assert full.soc == pytest.approx(100.0) and full.power_w == 0.0
    empty = Battery(spec(capacity_wh=100, soc0=10.1, min_soc=10))
    meter = run(empty, 2000.0, 600)
    assert empty.soc == pytest.approx(10.0) and meter[-1] == pytest.approx(2000.0)


def test_round_trip_efficiency_is_split_over_both_ways() -> None:
    b = Battery(spec(efficiency=0.81, soc0=50, lag_s=0, period_s=1))
    run(b, -1000.0, 3600)  # 1 kWh in at the AC side
    assert b.energy_wh == pytest.approx(2500 + 900, abs=1)  # sqrt(0.81) of it stored
    b2 = Battery(spec(efficiency=0.81, soc0=50, lag_s=0, period_s=1))
    run(b2, 1000.0, 3600)  # 1 kWh out at the AC side
    assert b2.energy_wh == pytest.approx(2500 - 1000 / 0.9, abs=1)


def test_lag_and_period_delay_its_answer() -> None:
    b = Battery(spec(lag_s=5, period_s=2))
    meter = run(b, -500.0, 12)
    assert all(m == -500.0 for m in meter[:7]) and meter[-1] == pytest.approx(0.0)


@given(
    grids=st.lists(st.floats(-8000, 8000), min_size=1, max_size=300),
    soc0=st.floats(10, 100),
    lag=st.integers(0, 5),
    period=st.integers(1, 5),
)
def test_never_beyond_its_limits(grids: list[float], soc0: float, lag: int, period: int) -> None:
    b = Battery(spec(capacity_wh=50, soc0=soc0, lag_s=lag, period_s=period))
    for g in grids:
        p = b.step(g)
        assert -2500.0 - 1e-9 <= p <= 2500.0 + 1e-9
        assert 10.0 - 1e-6 <= b.soc <= 100.0 + 1e-6


# -- in the simulator ----------------------------------------------------------------------------


def test_no_battery_block_gives_exactly_the_kpis_of_before(
    broken_clouds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden KPIs were made by main before the battery existed, on this 30-minute window
    (regenerate them only for a change meant to move the simulator's numbers)."""

    def never(*_: object) -> None:
        raise AssertionError("the battery's code ran without a battery: block")

    monkeypatch.setattr(physics.Battery, "of", never)
    golden = json.loads(GOLDEN.read_text())
    short = window(broken_clouds, LIVELY, 1800)
    for name in ("house", "seed_house"):
        cfg = config.load(EXAMPLES / f"{name}.yml", environ={})
        assert cfg.battery is None
        assert simulate(short, cfg).kpis == golden[name], name


def test_the_example_battery_fills_and_keeps_the_grid_near_zero(broken_clouds) -> None:
    cfg = config.load(EXAMPLES / "battery.yml", environ={})
    assert cfg.battery is not None
    k = simulate(window(broken_clouds, LIVELY, 2 * 3600), cfg).kpis
    plain = simulate(
        window(broken_clouds, LIVELY, 2 * 3600), cfg.model_copy(update={"battery": None})
    ).kpis
    assert k["battery_charge_wh"] > 500 and k["battery_soc_end"] > cfg.battery.sim.soc0 + 10
    assert k["battery_soc_max"] >= k["battery_soc_end"]
    # the inverter answers export within its limits: far less export than without it
    assert k["export_wh"] < 0.5 * plain["export_wh"]
    assert k["battery_cycles"] >= 0 and k["battery_oscillation"] >= 0
    assert 0 <= k["battery_to_loads_wh"] <= k["battery_discharge_wh"]
    supply = k["pv_wh"] + k["import_wh"] + k["battery_discharge_wh"]
    demand = k["base_wh"] + k["loads_wh"] + k["export_wh"] + k["battery_charge_wh"]
    assert supply == pytest.approx(demand, rel=1e-3)


def test_the_reading_carries_the_battery() -> None:
    cfg = config.load(EXAMPLES / "battery.yml", environ={})
    house = physics.House(cfg, window(load_trace(TRACES / "broken_clouds.csv.gz"), LIVELY, 60))
    for i in range(30):
        house.step(i)
    r = house.reading()
    assert r.battery_w == house.battery_w and r.battery_soc is not None
    assert r.battery_soc == pytest.approx(30.0, abs=1)


def test_pvopt_simulate_shows_the_battery_only_with_one(broken_clouds) -> None:
    from rich.console import Console

    from pvsim.tables import summary_table

    short = window(broken_clouds, LIVELY, 600)
    shown = []
    for name in ("battery", "house"):
        cfg = config.load(EXAMPLES / f"{name}.yml", environ={})
        console = Console(width=200, record=True)
        console.print(summary_table(simulate(short, cfg).kpis, name, cfg.specs()))
        shown.append(console.export_text())
    assert "home battery" in shown[0] and "Taken by the loads from it" in shown[0]
    assert "home battery" not in shown[1]


def test_the_plot_shows_the_battery(broken_clouds, tmp_path: Path) -> None:
    from pvsim.plot import plot_series

    cfg = config.load(EXAMPLES / "battery.yml", environ={})
    result = simulate(window(broken_clouds, LIVELY, 600), cfg, record=True)
    assert {"battery", "battery_soc"} <= result.series.keys()
    plot_series(result.series, cfg.site.tz, "battery", tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000
    plain = simulate(
        window(broken_clouds, LIVELY, 600), cfg.model_copy(update={"battery": None}), record=True
    )
    assert "grid" in plain.series and "battery" not in plain.series
