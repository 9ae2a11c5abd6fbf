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
from pvsim.traces import load_trace


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
    for trace_path in traces:
        name = load_trace(trace_path).name
        console.print(kpi_table([r for r in results if r["trace"] == name], name))
    speed = Table(title="simulator speed (× real time, one core)")
    for col in ("trace", "house", "policy", "× real time"):
        speed.add_column(col)
    for name, house, policy, x in speeds:
        speed.add_row(name, house, policy, f"{x:,.0f}")
    console.print(speed)
    cost = tick_cost_us()
    console.print(f"regulator tick, 10 loads: {cost:.1f} µs per tick")
    if json_path:
        Path(json_path).write_text(
            json.dumps({"results": results, "tick_us_10_loads": cost}, indent=2) + "\n",
            encoding="utf-8",
        )
