"""The battery issue's must-show (docs/battery.md): each example house beside the example
battery (5 kWh, 2.5 kW), on clear_summer, broken_clouds and week_spring, in each mode, against
the same house without a battery and the battery without pvopt's loads.

    .venv/bin/python bench/battery.py [--traces clear_summer,broken_clouds,week_spring]

Prints one table row per house, trace and run; the figures are the simulator's KPIs."""

from __future__ import annotations

import argparse
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from pvopt.config import Config, parse
from pvopt.examples import config_path, trace_path
from pvsim.simulator import simulate
from pvsim.traces import load_trace

MODES = ("battery_first", "loads_first", "soc_by")


def house_beside_battery(house: str) -> dict[str, Any]:
    """`house`'s config with examples/battery.yml's `battery:` block."""
    data = yaml.safe_load(config_path(house).read_text(encoding="utf-8"))
    battery = yaml.safe_load(config_path("battery").read_text(encoding="utf-8"))["battery"]
    return {**data, "battery": battery}


def config_of(data: dict[str, Any], house: str) -> Config:
    return parse(yaml.safe_dump(data), str(config_path(house)), environ={})


def runs(house: str) -> list[tuple[str, Config]]:
    data = house_beside_battery(house)
    alone = {k: v for k, v in data.items() if k != "battery"}
    idle = {**data, "equipment": [{**eq, "enabled": False} for eq in data["equipment"]]}
    out = [("no battery", config_of(alone, house)), ("battery, no loads", config_of(idle, house))]
    for mode in MODES:
        out.append((mode, config_of({**data, "battery": {**data["battery"], "mode": mode}}, house)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default="clear_summer,broken_clouds,week_spring")
    ap.add_argument("--houses", default="house,seed_house")
    args = ap.parse_args()
    console = Console(width=200)
    table = Table(title="Beside the example battery (5 kWh, 2.5 kW)")
    cols = ("house", "trace", "run", "diverted", "capture", "switches", "battery→loads")
    cols += ("share", "soc target at", "soc end", "osc /h")
    for c in cols:
        table.add_column(c, justify="left" if c in ("house", "trace", "run") else "right")
    for house in args.houses.split(","):
        for name in args.traces.split(","):
            trace = load_trace(str(trace_path(name)))
            for run, cfg in runs(house):
                with console.status(f"{house} {name} {run}"):
                    k = simulate(trace, cfg).kpis
                diverted = k["diverted_wh"]
                to_loads = k.get("battery_to_loads_wh")
                loads_wh = sum(v["energy_wh"] for v in k["loads"].values())
                share = "" if to_loads is None else f"{100 * to_loads / max(loads_wh, 1e-9):.2f} %"
                table.add_row(
                    house,
                    name,
                    run,
                    f"{diverted / 1000:.2f} kWh",
                    f"{k['capture']:.3f}",
                    str(k["switches"]),
                    "" if to_loads is None else f"{to_loads:.0f} Wh",
                    share,
                    str(k.get("battery_target_at") or ""),
                    "" if k.get("battery_soc_end") is None else f"{k['battery_soc_end']:.0f} %",
                    "" if k.get("battery_oscillation") is None else str(k["battery_oscillation"]),
                )
    console.print(table)


if __name__ == "__main__":
    main()
