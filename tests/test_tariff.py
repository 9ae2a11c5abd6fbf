"""The tariff (machines/tariff.py): which price is in force, the `tariff:` section's errors,
and the simulator's money KPIs adding up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from machines.tariff import Tariff, tempo_day
from pvopt import config
from pvopt.config.tariff import TariffConfig
from pvsim.simulator import simulate
from pvsim.traces import Trace, load_trace
from tests.conftest import EXAMPLES, PARIS, TRACES

HPHC = Tariff("hphc", {"hp": 0.27, "hc": 0.2068}, 0.04, ((22 * 3600, 6 * 3600),))
TEMPO = TariffConfig(
    kind="tempo",
    prices={f"{c}_{p}": 0.1 for c in ("blue", "white", "red") for p in ("hp", "hc")},
).tariff()


def test_off_peak_hours_wrap_midnight() -> None:
    assert [HPHC.key(datetime(2026, 1, 5, h)) for h in (5, 6, 21, 22)] == ["hc", "hp", "hp", "hc"]
    assert HPHC.seconds_to_change(datetime(2026, 1, 5, 21, 0)) == 3600
    assert HPHC.seconds_to_change(datetime(2026, 1, 5, 23, 0)) == 7 * 3600


def test_a_tempo_day_runs_from_six_to_six_and_an_unknown_colour_is_blue() -> None:
    assert tempo_day(datetime(2026, 1, 13, 5, 59)) == datetime(2026, 1, 12).date()
    assert tempo_day(datetime(2026, 1, 13, 6, 0)) == datetime(2026, 1, 13).date()
    assert TEMPO.key(datetime(2026, 1, 12, 12), "red") == "red_hp"
    assert TEMPO.key(datetime(2026, 1, 12, 23), "red") == "red_hc"
    assert TEMPO.key(datetime(2026, 1, 12, 12)) == "blue_hp"
    assert TEMPO.seconds_to_change(datetime(2026, 1, 12, 5, 0)) == 3600  # the day turns at 06:00


BASE = (EXAMPLES / "seed_house.yml").read_text(encoding="utf-8")


def problems(tariff: str) -> list[config.Problem]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(BASE + tariff, "house.yml", environ={})
    return info.value.problems


def test_a_tariff_without_its_prices_or_hours_is_refused_with_its_line() -> None:
    (p,) = problems("tariff:\n  kind: hphc\n  prices: {hp: 0.27}\n  offpeak: ['22:00-06:00']\n")
    assert p.key.startswith("tariff") and "missing hc" in p.message, p
    assert p.line is not None and p.line > BASE.count("\n")
    (p,) = problems("tariff:\n  kind: hphc\n  prices: {hp: 0.27, hc: 0.2}\n")
    assert "off-peak hours" in p.message
    (p,) = problems("tariff:\n  kind: base\n  prices: {base: 0.25, hp: 0.3}\n")
    assert "unknown hp" in p.message


def _house(tmp_path: Path, tariff: dict[str, object], **sim: object) -> config.Config:
    data = yaml.safe_load(BASE)
    data["tariff"] = tariff
    data["sim"] = {**data.get("sim", {}), **sim}
    path = tmp_path / "house.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config.load(path, environ={})


@pytest.fixture(scope="module")
def grey_day() -> Trace:
    return load_trace(TRACES / "overcast_winter.csv.gz")


def test_the_money_adds_up(tmp_path: Path, grey_day: Trace) -> None:
    prices = {"hp": 0.27, "hc": 0.2068}
    hphc = {"kind": "hphc", "prices": prices, "export": 0.04, "offpeak": ["22:00-06:00"]}
    cfg = _house(tmp_path, hphc)
    k = simulate(grey_day, cfg).kpis
    by = k["import_by_tariff_wh"]
    assert set(by) == {"hp", "hc"} and by["hc"] > 0 and by["hp"] > 0
    assert sum(by.values()) == pytest.approx(k["import_wh"], abs=0.2)
    billed = sum(by[key] * prices[key] for key in by) / 1000 - k["export_wh"] * 0.04 / 1000
    assert k["cost_eur"] == pytest.approx(billed, abs=0.001)
    assert 0 <= k["grid_heating_wh"] <= k["import_wh"]


def test_a_red_day_is_priced_red(tmp_path: Path, grey_day: Trace) -> None:
    day = datetime.fromtimestamp(grey_day.start + 12 * 3600, PARIS).date()
    prices = {f"{c}_{p}": 0.1 for c in ("blue", "white", "red") for p in ("hp", "hc")}
    prices["red_hp"] = 0.75
    tempo = {"kind": "tempo", "prices": prices}
    blue = simulate(grey_day, _house(tmp_path, tempo)).kpis
    red = simulate(grey_day, _house(tmp_path, tempo, tempo_calendar={day.isoformat(): "red"})).kpis
    assert blue["import_by_tariff_wh"]["red_hp"] == 0
    assert red["import_by_tariff_wh"]["red_hp"] > 0
    assert red["import_wh"] == blue["import_wh"]  # the price moves, not the physics
    assert red["cost_eur"] > blue["cost_eur"]
