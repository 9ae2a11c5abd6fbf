"""What the heating plan is worth: today's rule (no forecast) against the plan with a perfect
forecast and with day-ahead forecasts of realistic error (pvsim/forecasts.py, three seeds), on
the example house and on an evening-shower household, both on an `hphc` tariff, over three
weeks: `week_spring`, a week chained from the shipped days, and a held-out week chained from
the generated held-out days nothing was tuned on. Then the pessimism frontier, and a Tempo
fortnight with red days. Every figure printed is the simulator's (docs/planning.md).

    .venv/bin/python bench/planning.py [--jobs 2] [--json FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pvopt.examples import trace_path
from pvsim.forecasts import day_ahead
from pvsim.planning_cases import EVENING_DRAWS, HPHC, TEMPO_PRICES, plan_house
from pvsim.simulator import simulate
from pvsim.traces import Trace, chain, load_trace

TEMPO = {"kind": "tempo", "export": 0.04, "prices": TEMPO_PRICES}
HOUSES = {"house": None, "evening": EVENING_DRAWS}
MULTI = [
    "clear_summer",
    "broken_clouds",
    "overcast_winter",
    "broken_clouds",
    "clear_summer",
    "overcast_winter",
    "clear_summer",
]
HELDOUT = [
    "heldout_grey",
    "heldout_mixed",
    "heldout_mixed",
    "heldout_grey",
    "heldout_mixed",
    "heldout_grey",
    "heldout_mixed",
]
WINTER = ["overcast_winter", "heldout_grey"] * 7
RED = [date(2017, 1, d) for d in (10, 11, 12, 16, 17)]
WHITE = [date(2017, 1, d) for d in (13, 18, 19)]
MODES = [("none", 0), ("perfect", 0), ("realistic", 0), ("realistic", 1), ("realistic", 2)]
KEYS = ("cost_eur", "cold_draws", "grid_heating_wh", "minutes_below_temp_min", "capture")


def trace(name: str) -> Trace:
    days = {
        "multi": (MULTI, "2016-04-04"),
        "heldout": (HELDOUT, "2016-04-11"),
        "winter": (WINTER, "2017-01-09"),
    }
    if name not in days:
        return load_trace(trace_path(name))
    names, start = days[name]
    t0 = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
    return chain(name, [load_trace(trace_path(n)) for n in names], t0)


def run(job: tuple[str, str, str, int, float, str]) -> dict[str, Any]:
    house, trace_name, mode, seed, pessimism, tariff_kind = job
    tariff, sim = HPHC, {}
    if tariff_kind == "tempo":
        tariff = TEMPO
        sim["tempo_calendar"] = {d: "red" for d in RED} | {d: "white" for d in WHITE}
    cfg = plan_house(tariff, HOUSES[house], pessimism, **sim)
    tr = trace(trace_name)
    forecasts = None if mode == "none" else day_ahead(tr, cfg.site.tz, mode, seed)
    k = simulate(tr, cfg, forecasts=forecasts).kpis
    out = {
        "house": house,
        "trace": trace_name,
        "mode": mode,
        "seed": seed,
        "pessimism": pessimism,
        "tariff": tariff_kind,
    }
    out |= {key: k[key] for key in KEYS}
    out["grid_heating_by_tariff_wh"] = k["grid_heating_by_tariff_wh"]
    out["forced_heating_by_tariff_wh"] = k["forced_heating_by_tariff_wh"]
    out["plans"] = sum(1 for e in k["schedule_events"] if e.get("event") == "plan")
    return out


def table(title: str, rows: list[dict[str, Any]]) -> Table:
    t = Table(title=title)
    for col in (
        "house",
        "trace",
        "tariff",
        "forecast",
        "pessimism",
        "cost €",
        "vs rule",
        "cold draws",
        "grid heating kWh",
        "red_hp heating Wh",
        "red_hp forced Wh",
    ):
        t.add_column(col, justify="right" if col not in ("house", "trace", "forecast") else "left")
    base = {(r["house"], r["trace"], r["tariff"]): r for r in rows if r["mode"] == "none"}
    for r in rows:
        ref = base.get((r["house"], r["trace"], r["tariff"]))
        vs = f"{(r['cost_eur'] / ref['cost_eur'] - 1) * 100:+.1f} %" if ref else ""
        mode = r["mode"] if r["mode"] != "realistic" else f"realistic #{r['seed']}"
        red = r["grid_heating_by_tariff_wh"].get("red_hp")
        forced = r["forced_heating_by_tariff_wh"].get("red_hp")
        t.add_row(
            r["house"],
            r["trace"],
            r["tariff"],
            mode,
            f"{r['pessimism']:.1f}",
            f"{r['cost_eur']:.2f}",
            vs,
            str(r["cold_draws"]),
            f"{r['grid_heating_wh'] / 1000:.1f}",
            "" if red is None else f"{red:.0f}",
            "" if forced is None else f"{forced:.0f}",
        )
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", dest="json_path", default=None)
    ap.add_argument("--quick", action="store_true", help="week_spring, one seed only")
    args = ap.parse_args()
    traces = ["week_spring"] if args.quick else ["week_spring", "multi", "heldout"]
    modes = MODES[:3] if args.quick else MODES
    main_jobs = [(h, t, m, s, 0.7, "hphc") for h in HOUSES for t in traces for m, s in modes]
    frontier = [
        (h, "week_spring", "realistic", 0, p, "hphc")
        for h in HOUSES
        for p in (0.4, 0.55, 0.85, 1.0)
    ]
    tempo = [
        ("house", "winter", m, s, 0.7, k)
        for k in ("tempo", "hphc")
        for m, s in (("none", 0), ("realistic", 0))
    ]
    jobs = main_jobs + ([] if args.quick else frontier + tempo)
    console = Console()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = []
        with console.status("simulating") as status:
            for i, r in enumerate(pool.map(run, jobs), 1):
                results.append(r)
                status.update(f"simulated {i}/{len(jobs)}")
    n1, n2 = len(main_jobs), len(main_jobs) + (0 if args.quick else len(frontier))
    console.print(table("Today's rule against the plan (hphc)", results[:n1]))
    if not args.quick:
        rule = [r for r in results[:n1] if r["trace"] == "week_spring" and r["mode"] == "none"]
        console.print(
            table("Pessimism frontier (week_spring, realistic #0)", rule + results[n1:n2])
        )
        console.print(table("Tempo fortnight with red days", results[n2:]))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
