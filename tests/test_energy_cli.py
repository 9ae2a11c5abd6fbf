"""`pvopt energy` from the store: per-day totals, ratios, the day plot."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from rich.console import Console

from machines.energy import Ledger, LoadSpan
from pvopt.cli import main
from pvopt.tables import status_table
from state.store import SqliteStore
from tests.conftest import EXAMPLES, PARIS


def two_hours(tmp_path: Path, **sections: Any) -> Path:
    """The seed house's config (plus `sections`) and a store holding 2026-06-15 12:00-14:00:
    an hour exporting 600 W with the heater at 2400 W, PV 4000 W; then, PV gone, an hour with
    the heater on the grid beside a 500 W base load."""
    data = yaml.safe_load((EXAMPLES / "seed_house.yml").read_text())
    data["state"] = {"path": str(tmp_path / "pvopt.db")}
    data.update(sections)
    cfg_path = tmp_path / "pvopt.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    store = SqliteStore(str(tmp_path / "pvopt.db"))
    ledger = Ledger(60, ["water_heater", "towel_rail"])
    start = datetime(2026, 6, 15, 12, 0, tzinfo=PARIS).timestamp()
    spans = [
        LoadSpan("water_heater", 2400.0, "solar", 52.0, room_w=0.0, limit="full"),
        LoadSpan("towel_rail", 0.0, "solar", room_w=500.0, limit="margin"),
    ]
    done = ledger.add(start, start + 3600, spans, -600.0, None, 4000.0)
    done += ledger.add(start + 3600, start + 7200, spans, 2900.0, None, 0.0)
    store.save({}, [], intervals=done)
    store.close()
    return cfg_path


def test_energy_days_totals_ratios_and_plot(tmp_path: Path) -> None:
    cfg_path = two_hours(tmp_path)
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["energy", "--config", str(cfg_path), "--day", "2026-06-15", "--days", "2", "--json"],
    )
    assert out.exit_code == 0, out.output
    yesterday, today = json.loads(out.output)
    assert yesterday["intervals"] == 0 and today["intervals"] == 120
    assert today["loads"]["water_heater"] == 4800.0
    assert (today["import_wh"], today["export_wh"], today["pv_wh"]) == (2900.0, 600.0, 4000.0)
    assert today["diverted_wh"] == 2400.0  # the second hour ran on the grid
    # 600 W of export: 500 W the towel rail could have taken (its margin), 100 W nobody could
    assert today["export_by_reason_wh"] == {"nothing_left": 100.0, "margin": 500.0}
    assert today["surplus_kept"] == round(2400 / 3000, 4)
    assert today["self_consumption"] == round(3400 / 4000, 4)
    assert today["self_sufficiency"] == round(3400 / 6300, 4)
    png = tmp_path / "day.png"
    out = runner.invoke(
        main, ["energy", "--config", str(cfg_path), "--day", "2026-06-15", "--plot", str(png)]
    )
    assert out.exit_code == 0, out.output
    assert "water_heater" in out.output and "85 %" in out.output
    assert "nothing left" in out.output and "margin" in out.output  # export by reason
    assert png.stat().st_size > 10_000


def test_energy_without_a_store_says_so(tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLES / "seed_house.yml").read_text())
    data["state"] = {"path": str(tmp_path / "none.db")}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(main, ["energy", "--config", str(tmp_path / "c.yml")])
    assert out.exit_code == 1 and "no state store" in out.output


def test_energy_shows_the_money_with_a_tariff(tmp_path: Path) -> None:
    tariff = {
        "kind": "hphc",
        "prices": {"hp": 0.30, "hc": 0.20},
        "export": 0.04,
        "offpeak": ["13:00-14:00"],  # the second hour, on the grid, is off-peak
    }
    cfg_path = two_hours(tmp_path, tariff=tariff)
    runner = CliRunner()
    args = ["energy", "--config", str(cfg_path), "--day", "2026-06-15"]
    out = runner.invoke(main, [*args, "--json"])
    assert out.exit_code == 0, out.output
    money = json.loads(out.output)[0]["money"]
    assert money["import_eur"] == round(2.9 * 0.20, 3)  # all of it off-peak
    assert money["export_eur"] == round(0.6 * 0.04, 3)
    assert money["cost_eur"] == round(2.9 * 0.20 - 0.6 * 0.04, 3)
    heater = money["loads"]["water_heater"]
    assert (heater["solar_wh"], heater["grid_wh"]) == (2400.0, 2400.0)
    assert heater["grid_eur"] == round(2.4 * 0.20, 3)
    assert heater["solar_eur"] == round(2.4 * (0.30 - 0.04), 3)  # a peak hour's sun
    out = runner.invoke(main, args)
    assert "cost €" in out.output and "0.56" in out.output and "0.62" in out.output


def test_the_status_prices_today_as_pvopt_energy_does(tmp_path: Path) -> None:
    """The service's status carries today's bill and what the loads' solar saved, from the
    same store and the same pricing as `pvopt energy`; without a tariff, no money."""
    from pvopt import config
    from pvopt.service import Service

    tariff = {"kind": "hphc", "prices": {"hp": 0.30, "hc": 0.20}, "export": 0.04}
    tariff["offpeak"] = ["13:00-14:00"]
    cfg_path = two_hours(tmp_path, tariff=tariff)
    at = datetime(2026, 6, 15, 14, 30, tzinfo=PARIS).timestamp()
    svc = Service(config.load(cfg_path, environ={}), clock=lambda: at)
    try:
        doc = svc.status(at)
    finally:
        svc.stop()
    money = doc["money"]
    console = Console(record=True, width=200)
    console.print(status_table(doc, "test"))
    assert "today: €0.62 saved by the loads, grid bill €0.56" in console.export_text()
    cli = CliRunner().invoke(
        main, ["energy", "--config", str(cfg_path), "--day", "2026-06-15", "--json"]
    )
    priced = json.loads(cli.output)[0]["money"]
    assert money["day"] == "2026-06-15"
    assert (money["cost_eur"], money["import_eur"], money["export_eur"]) == (
        priced["cost_eur"],
        priced["import_eur"],
        priced["export_eur"],
    )
    assert money["saved_eur"] == round(2.4 * (0.30 - 0.04), 3)  # the heater's peak-hour sun
    assert money["loads"]["towel_rail"] == {"saved_eur": 0.0}
    # a config without a tariff shows no money
    (tmp_path / "none").mkdir()
    svc = Service(config.load(two_hours(tmp_path / "none"), environ={}), clock=lambda: at)
    try:
        assert "money" not in svc.status(at)
    finally:
        svc.stop()
