"""Benchmarks: KPI tables per trace/house/policy, simulator speed, regulator tick cost."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from machines.controller import Controller
from machines.model import Kind, LoadSpec, MeterSnapshot, Thresholds
from machines.policy import PolicyParams
from pvopt import config as cfgmod
from pvopt.examples import TRACES
from pvsim.simulator import simulate
from pvsim.traces import Trace, load_trace, offset_of, window

# The live replay's yardstick over a day: every 15-minute window of 10:00-16:00 on the cloudy
# trace, each started afresh like `pvopt bench-service` starts its one window (docs/benchmarks.md).
WINDOW_TRACE = "broken_clouds"
WINDOW_S = 15 * 60
WINDOWS_FROM, WINDOWS = "10:00", 24


def find_traces(traces_dir: str | None) -> list[Path]:
    """The shared traces when this is a developer's checkout, else the shipped copies."""
    candidates = [Path(traces_dir)] if traces_dir else [Path("../shared/traces"), TRACES]
    for folder in candidates:
        found = sorted(p for p in folder.glob("*.csv*") if p.name.endswith((".csv", ".csv.gz")))
        if found:
            return found
    raise SystemExit(f"no traces found in {', '.join(map(str, candidates))}")


def ten_loads() -> list[LoadSpec]:
    """A large installation: heaters, dimmers and relays mixed."""
    specs = []
    for i in range(10):
        if i % 3 == 0:
            specs.append(
                LoadSpec(
                    f"heater{i}", i, Kind.DIMMER, 2000.0, thresholds=Thresholds(45, 50, 55, 60)
                )
            )
        elif i % 3 == 1:
            specs.append(LoadSpec(f"relay{i}", i, Kind.RELAY, 800.0, min_on_s=300, min_off_s=300))
        else:
            specs.append(LoadSpec(f"dimmer{i}", i, Kind.DIMMER, 1000.0))
    return specs


def tick_cost_us(ticks: int = 20_000) -> float:
    """Mean cost of one Controller.tick with ten loads and a moving surplus (µs)."""
    tz = ZoneInfo("Europe/Paris")
    start = 1_781_500_000.0
    ctl = Controller(ten_loads(), tz, PolicyParams(), start)
    for name, m in ctl.machines.items():
        if name.startswith("heater"):
            m.set_temperature(50.0, start)
    t0 = time.perf_counter()
    for i in range(ticks):
        now = start + 2 * i
        surplus = 3000.0 + 2500.0 * ((i * 7919) % 200 - 100) / 100.0
        grid = sum(m.setpoint_w for m in ctl.machines.values()) - surplus
        ctl.tick(now, MeterSnapshot(grid, now, False))
        if i % 100 == 0:
            for name, m in ctl.machines.items():
                if name.startswith("heater"):
                    m.set_temperature(50.0, now)
    return (time.perf_counter() - t0) / ticks * 1e6


def window_totals(trace: Trace, cfg: cfgmod.Config, policy: str) -> dict[str, float]:
    """The 24 windows' sums: capture as diverted ÷ bound over all of them, import by loads."""
    first = offset_of(trace, WINDOWS_FROM, cfg.site.tz)
    diverted = bound = imported = 0.0
    for w in range(WINDOWS):
        k = simulate(window(trace, first + w * WINDOW_S, WINDOW_S), cfg, policy).kpis
        diverted += k["diverted_wh"]
        bound += k["bound_wh"]
        imported += k["import_by_loads_wh"]
    return {
        "windows": WINDOWS,
        "capture": round(diverted / bound, 4) if bound > 0 else 1.0,
        "import_by_loads_wh": round(imported, 1),
        "diverted_wh": round(diverted, 1),
    }


def run_bench(
    traces_dir: str | None,
    houses: list[str],
    json_path: str | None,
    console: Console,
    progress: Callable[[], Progress],
) -> None:
    from pvsim.tables import kpi_table

    traces = find_traces(traces_dir)
    results: list[dict[str, Any]] = []
    speeds: list[tuple[str, str, str, float]] = []
    with progress() as bar:
        jobs = [(t, h, p) for t in traces for h in houses for p in ("legacy", "default")]
        task = bar.add_task("bench", total=len(jobs))
        loaded = {t: load_trace(t) for t in traces}
        configs = {h: cfgmod.load(h) for h in houses}
        for trace_path, house, policy in jobs:
            trace = loaded[trace_path]
            t0 = time.perf_counter()
            kpis = simulate(trace, configs[house], policy).kpis
            elapsed = time.perf_counter() - t0
            kpis["house"] = Path(house).stem
            kpis["speed_x_real_time"] = round(trace.seconds / elapsed)
            results.append(kpis)
            speeds.append((trace.name, Path(house).stem, policy, trace.seconds / elapsed))
            bar.advance(task)
        day = next((loaded[t] for t in traces if t.name.split(".")[0] == WINDOW_TRACE), None)
        windows: list[dict[str, Any]] = []
        if day is not None:
            task = bar.add_task(f"{WINDOWS} windows", total=2 * len(houses))
            for house in houses:
                for policy in ("legacy", "default"):
                    totals = window_totals(day, configs[house], policy)
                    windows.append({"house": Path(house).stem, "policy": policy, **totals})
                    bar.advance(task)
    for trace_path in traces:
        name = load_trace(trace_path).name
        console.print(kpi_table([r for r in results if r["trace"] == name], name))
    speed = Table(title="simulator speed (× real time, one core)")
    for col in ("trace", "house", "policy", "× real time"):
        speed.add_column(col)
    for name, house, policy, x in speeds:
        speed.add_row(name, house, policy, f"{x:,.0f}")
    console.print(speed)
    if windows:
        console.print(window_table(windows))
    cost = tick_cost_us()
    console.print(f"regulator tick, 10 loads: {cost:.1f} µs per tick")
    if json_path:
        Path(json_path).write_text(
            json.dumps({"results": results, "windows": windows, "tick_us_10_loads": cost}, indent=2)
            + "\n",
            encoding="utf-8",
        )


def window_table(rows: list[dict[str, Any]]) -> Table:
    end = WINDOWS * WINDOW_S // 60
    table = Table(
        title=f"{WINDOW_TRACE}, {WINDOWS} windows of {WINDOW_S // 60} min from {WINDOWS_FROM} "
        f"(+{end // 60} h), each started afresh: the live replay's yardstick over a day"
    )
    for col in ("house", "policy", "capture", "import by loads Wh", "% of diverted"):
        table.add_column(col, justify="right")
    for r in rows:
        share = 100 * r["import_by_loads_wh"] / max(r["diverted_wh"], 1e-9)
        table.add_row(
            r["house"],
            r["policy"],
            f"{r['capture']:.4f}",
            f"{r['import_by_loads_wh']:.1f}",
            f"{share:.2f}",
        )
    return table
