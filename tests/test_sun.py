"""The sun-aware relay rule (docs/regulation.md): the clear-sky curve, the sky's state, the
rule's start and stop, the PV reading's way from the wire into the policy, and the meter-only
rule untouched by a PV reading."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from machines.controller import Controller
from machines.model import MeterSnapshot, PolicyMemo, RelayTimer, SkyState
from machines.policy import PolicyParams, RelayParams, decide_relays
from machines.policy.params import SunParams
from machines.policy.relays import Outlook
from machines.sun import Plant, clear_sky, clear_sky_ahead, expected_change_w, update_sky
from pvopt import config
from pvsim.simulator import simulate
from pvsim.traces import load_trace, window
from tests.conftest import TRACES
from tests.test_policy import NOW, relay

TOULOUSE = Plant(43.6, 1.44, 35.0, 180.0)  # where the shipped traces are
SUN = SunParams()


def test_the_clear_sky_follows_a_clear_day_of_the_shipped_traces() -> None:
    """The curve is a shape: on `clear_summer` the production per unit of clear sky stays
    within ±10 % of its noon value from 08:00 to 16:00 UTC, and it is 0 at night."""
    day = load_trace(TRACES / "clear_summer.csv.gz")
    ratios = [day.pv_w[h * 3600] / clear_sky(TOULOUSE, day.start + h * 3600) for h in range(8, 17)]
    noon = ratios[4]
    assert all(abs(r / noon - 1) < 0.1 for r in ratios), ratios
    assert clear_sky(TOULOUSE, day.start + 1 * 3600) == 0.0


def test_an_east_facing_plant_peaks_before_a_west_facing_one() -> None:
    noon = load_trace(TRACES / "clear_summer.csv.gz").start + 12 * 3600
    east, west = Plant(43.6, 1.44, 35.0, 90.0), Plant(43.6, 1.44, 35.0, 270.0)
    morning, evening = noon - 3 * 3600, noon + 3 * 3600
    assert clear_sky(east, morning) > clear_sky(west, morning)
    assert clear_sky(west, evening) > clear_sky(east, evening)


def test_the_clear_sky_ahead_falls_in_the_afternoon() -> None:
    at = load_trace(TRACES / "clear_summer.csv.gz").start + 15 * 3600
    assert clear_sky_ahead(TOULOUSE, at, 600) < clear_sky(TOULOUSE, at)


def test_the_sky_state_learns_the_mean_and_the_spread_of_a_broken_sky() -> None:
    sky = None
    for k in range(400):  # 4 and 2 W per W/m² in turn: mean 3, spread 1
        sky = update_sky(sky, 800.0 * (4 if k % 2 else 2), 800.0, NOW + 5 * k, 600.0)
    assert sky is not None
    assert sky.mean == pytest.approx(3.0, abs=0.1)
    assert math.sqrt(sky.var) == pytest.approx(1.0, abs=0.1)
    assert update_sky(sky, 100.0, 50.0, NOW + 5000, 600.0) is None  # the sun too low to read


def test_a_bright_spell_in_a_broken_sky_is_expected_to_end() -> None:
    sky = SkyState(mean=3.0, var=1.0, at=NOW)
    assert expected_change_w(sky, 3200.0, 800.0, 0.0) == pytest.approx(-800.0)  # back to 2400
    assert expected_change_w(sky, 3200.0, 800.0, 1.0) == pytest.approx(-1600.0)


def test_the_sun_rule_does_not_start_a_relay_on_a_bright_spell() -> None:
    """1.2 kW left now covers the 1 kW pump with the rule's 100 W headroom, but the sky is
    expected to fall by 300 W over the horizon: no start; without the fall it starts."""
    p = RelayParams()
    pump = [relay("pump", 1000.0)]
    falling = Outlook(-300.0, SUN)
    first = decide_relays(pump, 1200.0, p, NOW, PolicyMemo(), falling)
    later = decide_relays(pump, 1200.0, p, NOW + 60, PolicyMemo(relay_timers=first.timers), falling)
    assert later.on == set()
    steady = Outlook(0.0, SUN)
    first = decide_relays(pump, 1200.0, p, NOW, PolicyMemo(), steady)
    assert first.timers["pump"].want_on_since == NOW
    at = NOW + SUN.sun_on_delay_s
    assert decide_relays(pump, 1200.0, p, at, PolicyMemo(relay_timers=first.timers), steady).on
    # the meter-only rule wants 300 W of headroom for 60 s
    assert (
        decide_relays(pump, 1200.0, p, NOW + 60, PolicyMemo(relay_timers=first.timers)).on == set()
    )


def test_the_sun_rule_rides_out_a_dip_and_stops_soon_on_a_falling_sky() -> None:
    """500 W short now with 8 Wh of deficit: past the meter's 7.5 Wh and the sun's short-sky
    7.5 Wh, it stops when the sky ahead is short too; it runs on when the sky ahead covers."""
    pump = [relay("pump", 1000.0, on=True, switched_at=NOW - 3600)]
    memo = PolicyMemo(relay_timers={"pump": RelayTimer(deficit_wh=8.0, deficit_at=NOW - 1)})
    p = RelayParams()
    assert decide_relays(pump, 500.0, p, NOW, memo).on == set()
    assert decide_relays(pump, 500.0, p, NOW, memo, Outlook(-100.0, SUN)).on == set()
    assert decide_relays(pump, 500.0, p, NOW, memo, Outlook(+800.0, SUN)).on == {"pump"}


def test_the_controller_reads_the_sky_only_with_a_plant_and_a_pv_reading(house) -> None:
    noon = load_trace(TRACES / "clear_summer.csv.gz").start + 11 * 3600
    snapshot = MeterSnapshot(-2000.0, noon, pv_w=3000.0, pv_at=noon)
    for plant, pv in ((TOULOUSE, True), (None, True), (TOULOUSE, False)):
        ctl = Controller(house.specs(), ZoneInfo("Europe/Paris"), PolicyParams(), noon, plant=plant)
        for k in range(3):
            at = noon + 5 * k
            snap = MeterSnapshot(-2000.0, at, pv_w=3000.0, pv_at=at) if pv else snapshot
            ctl.tick(at + 0.5, snap if pv else MeterSnapshot(-2000.0, at))
        assert (ctl.memo.sky is not None) == (plant is not None and pv)


def _with(cfg: config.Config, **sections: dict[str, Any]) -> config.Config:
    data = cfg.model_dump(exclude_unset=True)
    for key, values in sections.items():
        data[key] = {**data.get(key, {}), **values}
    return config.Config.model_validate(data)


def test_a_pv_reading_leaves_the_meter_only_rule_as_it_was(house, broken_clouds) -> None:
    """Guards the issue's invariant: with `meter.pv_topic` and the default `relay_rule:
    meter` every KPI is what it is without a PV reading; `relay_rule: sun` decides otherwise."""
    day = window(broken_clouds, 11 * 3600, 3600)
    site = {"latitude": 43.6, "longitude": 1.44}
    plain = simulate(day, _with(house, site=site)).kpis
    read = simulate(day, _with(house, site=site, meter={"pv_topic": "home/pv"})).kpis
    assert read == plain
    sun = _with(house, site=site, meter={"pv_topic": "home/pv"}, regulation={"relay_rule": "sun"})
    assert simulate(day, sun).kpis != plain


@pytest.mark.parametrize(
    ("meter", "lacks"),
    [
        ("{kind: grid, grid_topic: home/grid}", "meter.pv_topic"),
        ("{kind: grid, grid_topic: home/grid, pv_topic: home/pv}", "site.latitude"),
    ],
)
def test_the_sun_rule_says_what_it_lacks(tmp_path: Path, meter: str, lacks: str) -> None:
    path = tmp_path / "pvopt.yml"
    path.write_text(
        f"meter: {meter}\nregulation:\n  relay_rule: sun\nequipment:\n"
        "  - {type: VariablePowerEquipment, name: rail, max_power: 500}\n",
        encoding="utf-8",
    )
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert f"{path}:3: regulation.relay_rule: " in str(err.value)
    assert lacks in str(err.value)


def test_a_pv_reading_in_json_is_read_at_its_key() -> None:
    """A Tasmota plug on the PV line (`tele/<name>/SENSOR`, `ENERGY.Power`): its production and
    arrival reach the snapshot while fresh, not after `stale_after_s`."""
    from pvopt.kinds import meter_source
    from pvopt.kinds.meters import MeterConfig

    cfg = MeterConfig(
        kind="grid",
        grid_topic="home/grid",
        pv_topic="tele/pv/SENSOR",
        pv_json_key="ENERGY.Power",
        stale_after_s=30,
    )
    source = meter_source(cfg)
    source.feed("home/grid", b"-1200", NOW)
    source.feed("tele/pv/SENSOR", b'{"ENERGY": {"Power": 2870, "Today": 4.1}}', NOW)
    snap = source.snapshot(NOW + 1)
    assert (snap.pv_w, snap.pv_at) == (2870.0, NOW)
    assert source.snapshot(NOW + 31).pv_w is None
