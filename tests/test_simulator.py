"""The simulator: physics that balance, KPIs within their bounds, determinism, and the targets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from machines.model import Kind
from pvopt import config
from pvopt.cli import main
from pvsim.bench import window_totals
from pvsim.physics import Heater
from pvsim.simulator import simulate
from pvsim.traces import TraceError, load_trace, offset_of, window
from tests.conftest import EXAMPLES, TRACES

LIVELY = 11 * 3600  # 13:00 Paris on broken_clouds: PV swings of kW within a minute


@pytest.fixture(scope="module")
def lively(broken_clouds):
    return window(broken_clouds, LIVELY, 2 * 3600)


@pytest.mark.parametrize("policy", ["default", "legacy"])
def test_energy_balance_and_capture_bound(lively, house, policy: str) -> None:
    k = simulate(lively, house, policy).kpis
    supply = k["pv_wh"] + k["import_wh"]
    demand = k["base_wh"] + k["loads_wh"] + k["export_wh"]
    assert supply == pytest.approx(demand, rel=1e-3)
    assert 0 < k["capture"] <= 1
    assert k["diverted_wh"] <= k["bound_wh"] + 0.1
    assert k["loads_wh"] == pytest.approx(sum(v["energy_wh"] for v in k["loads"].values()), abs=0.5)
    assert k["import_by_loads_wh"] <= k["import_wh"]


def test_deterministic(lively, house) -> None:
    assert simulate(lively, house).kpis == simulate(lively, house).kpis


def test_heater_model() -> None:
    h = Heater(litres=200, loss_w_per_k=0.0, thermostat_c=65, temp_c=50, ambient_c=20, cold_c=15)
    for _ in range(3600):
        h.step(2326.0)  # 2326 Wh into 232.6 Wh/K: +10 K
    assert h.temp_c == pytest.approx(60.0, abs=0.01)
    h.draw(50)  # a quarter of the tank replaced by 15 °C water
    assert h.temp_c == pytest.approx(60 - 0.25 * 45, abs=0.01)
    leaky = Heater(200, 1.8, 65, 50, 20, 15)
    leaky.step(0.0)
    assert leaky.temp_c == pytest.approx(50 - 54 / (232.6 * 3600), rel=1e-3)
    hot = Heater(200, 1.8, 65, 65, 20, 15)
    assert not hot.accepts()


def test_trace_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,pv_w,base_load_w\n2016-06-15T00:00:00Z,0,200\n2016-06-15T00:00:01Z,x,200\n")
    with pytest.raises(TraceError, match=r"bad.csv:3: bad row"):
        load_trace(bad)
    bad.write_text("time,pv,load\n")
    with pytest.raises(TraceError, match=r":1: header"):
        load_trace(bad)


def test_plain_and_gzipped_traces_agree(tmp_path: Path) -> None:
    rows = "ts,pv_w,base_load_w\n2016-06-15T00:00:00Z,0,200\n2016-06-15T00:00:10Z,100,300\n"
    (tmp_path / "t.csv").write_text(rows)
    with gzip.open(tmp_path / "t.csv.gz", "wt") as fh:
        fh.write(rows)
    a, b = load_trace(tmp_path / "t.csv"), load_trace(tmp_path / "t.csv.gz")
    assert a.seconds == b.seconds == 20 and a.name == b.name == "t.csv"
    assert a.pv_w[5] == pytest.approx(50.0)  # linear interpolation to 1 s
    assert (a.base_w == b.base_w).all()


def test_cli_simulate_writes_json_and_plot(tmp_path: Path) -> None:
    trace = tmp_path / "short.csv"
    src = load_trace(TRACES / "broken_clouds.csv.gz")
    first = 11 * 3600
    lines = ["ts,pv_w,base_load_w"] + [
        f"2016-06-15T11:{i // 60:02d}:{i % 60:02d}Z,"
        f"{src.pv_w[first + i]:.1f},{src.base_w[first + i]:.1f}"
        for i in range(1200)
    ]
    trace.write_text("\n".join(lines) + "\n")
    out_json, out_png = tmp_path / "k.json", tmp_path / "p.png"
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            str(trace),
            "--config",
            str(EXAMPLES / "house.yml"),
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ],
    )
    assert result.exit_code == 0, result.output
    kpis = json.loads(out_json.read_text())
    for key in (
        "pv_wh",
        "base_wh",
        "import_wh",
        "export_wh",
        "loads_wh",
        "diverted_wh",
        "bound_wh",
        "capture",
        "import_by_loads_wh",
        "forced_import_wh",
        "switches",
        "min_on_off_violations",
        "cold_draws",
        "minutes_below_temp_min",
        "loads",
        "days",
        "schedule_events",
    ):
        assert key in kpis
    assert kpis["seconds"] == 1200 and out_png.stat().st_size > 10_000


# -- the targets of the core issue, on whole days (marked slow: ~1 min in all) ------------------

ALL_TRACES = ["broken_clouds", "clear_summer", "overcast_winter", "week_spring"]
HELD_OUT = ["heldout_grey", "heldout_mixed"]  # pvsim/tracegen.py: never used for tuning


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str, str], dict]:
    cache: dict[tuple[str, str, str], dict] = {}
    houses = {h: config.load(EXAMPLES / f"{h}.yml") for h in ("seed_house", "house")}
    for name in ALL_TRACES + HELD_OUT:
        trace = load_trace(TRACES / f"{name}.csv.gz")
        for house, cfg in houses.items():
            for policy in ("legacy", "default"):
                cache[(name, house, policy)] = simulate(trace, cfg, policy).kpis
    return cache


RELAY_HELD_OUT = pytest.param(
    "heldout_mixed",
    "house",
    marks=pytest.mark.xfail(
        strict=True,
        reason="the relay house imports more than legacy there (367 Wh vs 268), two thirds of it "
        "while min_on_s holds the pump on: legacy's 86 switches with 81 min on/off violations "
        "follow the sun closer. docs/simulator.md: Results",
    ),
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trace", "house"),
    [
        *(
            (t, h)
            for t in ALL_TRACES + HELD_OUT
            for h in ("seed_house", "house")
            if (t, h) != ("heldout_mixed", "house")
        ),
        RELAY_HELD_OUT,
    ],
)
def test_default_beats_legacy(results, trace: str, house: str) -> None:
    new, old = results[(trace, house, "default")], results[(trace, house, "legacy")]
    assert new["capture"] >= old["capture"]
    assert new["import_by_loads_wh"] <= old["import_by_loads_wh"]
    if trace in {"broken_clouds", "week_spring"}:
        assert new["capture"] > old["capture"]
        assert new["import_by_loads_wh"] < old["import_by_loads_wh"]


@pytest.mark.slow
@pytest.mark.parametrize("house", ["seed_house", "house"])
def test_grey_day(results, house: str) -> None:
    """overcast_winter: small surpluses regulated finely, the dimmers firing down to their
    default 15 W (docs/simulator.md: Results)."""
    k = results[("overcast_winter", house, "default")]
    # 0.899 / 0.908 before any of issue 13, 0.963 / 0.966 with a 50 W minimum
    assert k["capture"] >= 0.97
    assert k["import_by_loads_wh"] <= 0.005 * k["diverted_wh"]
    assert k["efficiency"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("house", ["seed_house", "house"])
def test_grey_day_with_dimmers_held_at_50_w(results, house: str) -> None:
    """A config that sets `min_power_w` keeps it: at 50 W the grey day's smallest surpluses go
    out (for a dimmer that flickers lower), at no more import."""
    data = config.load(EXAMPLES / f"{house}.yml").model_dump(exclude_unset=True)
    for eq in data["equipment"]:
        if eq["type"] != "ConstantPowerEquipment":
            eq["min_power_w"] = 50
    cfg = config.Config.model_validate(data)
    assert {s.min_power_w for s in cfg.specs() if s.kind is Kind.DIMMER} == {50}
    k = simulate(load_trace(TRACES / "overcast_winter.csv.gz"), cfg).kpis
    default = results[("overcast_winter", house, "default")]
    assert 0.95 <= k["capture"] < default["capture"]  # 0.963 / 0.966
    assert k["export_by_reason_wh"]["min_power"] > default["export_by_reason_wh"].get(
        "min_power", 0
    )
    assert k["import_by_loads_wh"] <= 0.005 * k["diverted_wh"]


@pytest.mark.slow
@pytest.mark.parametrize("house", ["seed_house", "house"])
@pytest.mark.parametrize("trace", ALL_TRACES + HELD_OUT)
def test_ceiling_and_export_reasons(results, trace: str, house: str) -> None:
    """The causal ceiling lies below the physical bound; every exported watt has a reason."""
    for policy in ("legacy", "default"):
        k = results[(trace, house, policy)]
        assert k["ceiling_wh"] <= k["bound_wh"] + 0.1
        assert sum(k["export_by_reason_wh"].values()) == pytest.approx(k["export_wh"], abs=1.0)


@pytest.mark.slow
def test_broken_clouds_targets(results) -> None:
    seed = results[("broken_clouds", "seed_house", "default")]
    assert seed["capture"] >= 0.90
    assert seed["import_by_loads_wh"] <= 0.012 * seed["diverted_wh"]
    full = results[("broken_clouds", "house", "default")]
    assert full["capture"] >= 0.87
    assert full["import_by_loads_wh"] <= 0.02 * full["diverted_wh"]
    assert full["switches"] <= 16
    assert full["min_on_off_violations"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("trace", ["overcast_winter", "week_spring"])
def test_schedules_keep_the_guarantee(results, trace: str) -> None:
    """examples/house.yml carries the two schedules of docs/schedules.md; legacy applies the seed's
    rule."""
    new, seed = results[(trace, "house", "default")], results[(trace, "house", "legacy")]
    temp_eco = config.load(EXAMPLES / "house.yml").equipment[0].temp_eco
    closes = [e for e in new["schedule_events"] if e["event"] == "close"]
    assert closes, "the off-peak window opened and closed"
    assert all(e["temperature_c"] >= temp_eco - 0.1 for e in closes if e["triggered"])
    assert new["cold_draws"] <= seed["cold_draws"]
    checks = [e for e in new["schedule_events"] if e["event"] == "check"]
    assert len({e["at"][:10] for e in checks}) == len(checks) >= 1  # once a day at 16:00
    if trace == "overcast_winter":
        assert new["forced_import_wh"] > 0  # a grey day: the 16:00 check boosted from the grid


def _house_with(house: config.Config, tmp_path: Path, k: int, **entry: object) -> config.Config:
    """The example house with equipment `k` given extra keys (device:, sim:)."""
    data = house.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["equipment"][k].update(entry)
    path = tmp_path / "house.yml"
    path.write_text(json.dumps(data))
    return config.load(path)


@pytest.mark.parametrize(("preset", "counted"), [("tasmota", False), ("seed", True)])
def test_offline_device_counts_no_energy_when_it_says_so(
    lively, house, tmp_path: Path, preset: str, counted: bool
) -> None:
    """A plug off the network for half an hour: one that says so (Tasmota's LWT) gets nothing
    counted; the seed's firmware cannot say, so its commands are counted as drawn."""
    offline = {"offline": ["13:30-14:00"]}
    cfg = _house_with(house, tmp_path, 1, device={"preset": preset, "topic": "pump"}, sim=offline)
    k = simulate(lively, cfg).kpis
    assert (k["offline_wh"] > 100) is counted
    if not counted:
        assert k["offline_wh"] == 0.0


def test_thermostat_with_hysteresis() -> None:
    h = Heater(200, 0.0, 65, 65.0, 20, 15, hysteresis_k=4)
    assert not h.accepts()  # open at 65 °C
    h.draw(10)  # 10 L of cold water: −2.5 K, still within the hysteresis
    assert not h.accepts()
    h.draw(20)  # −4.7 K more: closed again below 61 °C
    assert h.accepts()


def _cut_heater_house(tmp_path: Path, probe: bool, detect: bool = True) -> config.Config:
    """The seed's house with its 2.4 kW heater hot at 65 °C behind its own 4 K thermostat:
    without a probe, a plain dimmer (`VariablePowerEquipment`) the grid alone can judge."""
    data = config.load(EXAMPLES / "seed_house.yml").model_dump(
        mode="json", by_alias=True, exclude_unset=True
    )
    heater = data["equipment"][0]
    heater["sim"] |= {"t0_c": 65, "tank": True, "hysteresis_k": 4}
    if not probe:
        for key in ("temp_min", "temp_eco", "temp_sol_min", "temp_max"):
            heater.pop(key)
        heater["type"] = "VariablePowerEquipment"
        heater["thermostat_probes_per_hour"] = 4 if detect else 0
    path = tmp_path / f"cut-{probe}-{detect}.yml"
    path.write_text(json.dumps(data))
    return config.load(path)


def test_a_heater_whose_thermostat_cut_counts_what_it_drew_and_yields_to_the_rail(
    tmp_path: Path,
) -> None:
    """Six minutes of clear_summer from 09:00 (07:00 UTC, ~2.9 kW of surplus), the tank hot:
    without the watch pvopt counts the heater's full command (238 Wh for nothing drawn); with
    it, what the heater drew (within 5 Wh), the rail behind it fed as beside a probed heater,
    at most one probe."""
    full = load_trace(TRACES / "clear_summer.csv.gz")
    tz = config.load(EXAMPLES / "seed_house.yml").site.tz
    morning = window(full, offset_of(full, "09:00", tz), 6 * 60)  # 07:00 UTC
    blind = simulate(morning, _cut_heater_house(tmp_path, probe=False, detect=False)).kpis
    seen = simulate(morning, _cut_heater_house(tmp_path, probe=False)).kpis
    probed = simulate(morning, _cut_heater_house(tmp_path, probe=True)).kpis
    assert blind["loads"]["water_heater"]["counted_wh"] > 100  # the blindness this fixes
    heater, rail = seen["loads"]["water_heater"], seen["loads"]["towel_rail"]
    assert abs(heater["counted_wh"] - heater["energy_wh"]) <= 5.0, heater
    assert seen["import_by_loads_wh"] <= probed["import_by_loads_wh"] + 0.1
    assert rail["energy_wh"] >= probed["loads"]["towel_rail"]["energy_wh"] - 5.0
    assert seen["probes_per_hour"] * 6 / 60 <= 1


def _full_house(tmp_path: Path, probe: bool) -> config.Config:
    """examples/house.yml without schedules, its heater hot behind a 4 K thermostat; without a
    probe, a plain dimmer whose cuts only the thermostat watch can see."""
    data = config.load(EXAMPLES / "house.yml").model_dump(
        mode="json", by_alias=True, exclude_unset=True
    )
    data.pop("schedules")
    heater = data["equipment"][0]
    heater["sim"] |= {"t0_c": 65, "tank": True, "hysteresis_k": 4}
    if not probe:
        for key in ("temp_min", "temp_eco", "temp_sol_min", "temp_max", "tank_litres"):
            heater.pop(key)
        heater["type"] = "VariablePowerEquipment"
    path = tmp_path / f"full-{probe}.yml"
    path.write_text(json.dumps(data))
    return config.load(path)


def test_a_day_of_thermostat_cuts_costs_no_capture_against_a_probe(tmp_path: Path) -> None:
    """The whole of clear_summer, full house: without a probe the heater's cuts are found and
    probed at most 4 times an hour; capture within 2 points of the same house with a probe,
    import by loads no more, energy counted within 20 % of what the heater drew."""
    day = load_trace(TRACES / "clear_summer.csv.gz")
    unprobed = simulate(day, _full_house(tmp_path, probe=False)).kpis
    probed = simulate(day, _full_house(tmp_path, probe=True)).kpis
    heater = unprobed["loads"]["water_heater"]
    assert abs(heater["counted_wh"] - heater["energy_wh"]) <= 0.2 * heater["energy_wh"], heater
    assert unprobed["capture"] >= probed["capture"] - 0.02
    assert unprobed["import_by_loads_wh"] <= probed["import_by_loads_wh"] + 0.1
    assert 0 < unprobed["probes_per_hour"] <= 4


def test_the_24_windows_of_a_day_judge_the_policies() -> None:
    """`pvopt bench`'s yardstick for the live window, summed over 10:00-16:00: the shipped
    policy takes more and imports less than the seed's (0.974 / 120 Wh against 0.858 / 334)."""
    day = load_trace(TRACES / "broken_clouds.csv.gz")
    cfg = config.load(EXAMPLES / "seed_house.yml")
    ours, seed = (window_totals(day, cfg, policy) for policy in ("default", "legacy"))
    assert ours["windows"] == 24
    assert ours["capture"] > seed["capture"] + 0.05
    assert ours["import_by_loads_wh"] < 0.5 * seed["import_by_loads_wh"]
