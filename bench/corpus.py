"""A relay rule judged on many days, not on the one it was tuned on: generate N days of mixed
and broken skies with the held-out trace model (pvsim/tracegen.py; seeds from the day's name,
so the same N gives the same days), split them into a tuning half (even days) and a validation
half (odd days), and print the summed KPIs of each regulation setting on the chosen half.

    .venv/bin/python bench/corpus.py --half tune --set relay_start_headroom_w=0,150,300
    .venv/bin/python bench/corpus.py --half val  --set relay_start_headroom_w=300

Tune on one half, then look at the other once. The settings are `regulation:` keys of the
config (docs/config.md); several `--set` give every combination.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pvopt.config import Config, ConfigError, RegulationConfig, load
from pvopt.examples import config_path
from pvsim.simulator import simulate
from pvsim.tracegen import HELD_OUT, LAT, LON, DaySpec, write
from pvsim.traces import load_trace

# per-minute transitions over (clear, broken, overcast): how long each sky lasts
SKIES = (
    next(d.chain for d in HELD_OUT if d.name == "heldout_mixed"),
    ((0.93, 0.065, 0.005), (0.04, 0.95, 0.01), (0.02, 0.06, 0.92)),  # more broken
    ((0.97, 0.025, 0.005), (0.02, 0.97, 0.01), (0.005, 0.02, 0.975)),  # slow changes
    ((0.90, 0.09, 0.01), (0.06, 0.92, 0.02), (0.03, 0.07, 0.90)),  # fast changes
)


def corpus_days(n: int) -> list[DaySpec]:
    """N days between April and September, the skies in turn, start regime and overcast level
    drawn from a fixed seed."""
    rng = np.random.default_rng(7)
    days = []
    for i in range(n):
        day = date(2017, 4, 1) + timedelta(days=int(rng.integers(0, 180)))
        start, kc = int(rng.integers(0, 3)), float(rng.uniform(0.3, 0.5))
        weekend = day.weekday() >= 5
        days.append(
            DaySpec(f"corpus_{i:02d}", day, SKIES[i % len(SKIES)], start, (kc, 0.12), weekend)
        )
    return days


@dataclass(frozen=True)
class Totals:
    diverted_wh: float
    bound_wh: float
    import_wh: float
    switches: int
    violations: int


def run_day(job: tuple[str, Config]) -> Totals:
    trace_file, cfg = job
    k = simulate(load_trace(trace_file), cfg).kpis
    return Totals(
        k["diverted_wh"],
        k["bound_wh"],
        k["import_by_loads_wh"],
        k["switches"],
        k["min_on_off_violations"],
    )


def configured(cfg: Config, settings: dict[str, float], pv: bool = False) -> Config:
    """The house without its schedules (the relay rule alone), `settings` in `regulation:`;
    with `pv`, a PV reading and the generator's site: the sun-aware rule."""
    data: dict[str, Any] = cfg.model_dump(exclude_unset=True)
    data["schedules"] = []
    data["regulation"] = {**data.get("regulation", {}), **settings}
    if pv:
        data["regulation"]["relay_rule"] = "sun"
        data["meter"] = {**data.get("meter", {}), "pv_topic": "home/pv"}
        data["site"] = {**data.get("site", {}), "latitude": LAT, "longitude": LON}
    return Config.model_validate(data)


def settings_grid(pairs: list[str]) -> list[dict[str, float]]:
    axes = []
    for pair in pairs:
        key, _, values = pair.partition("=")
        if not values:
            raise SystemExit(f"--set {pair!r}: expected key=value[,value...]")
        try:
            axes.append([(key, float(v)) for v in values.split(",")])
        except ValueError:
            raise SystemExit(f"--set {pair!r}: values must be numbers") from None
    return [dict(combo) for combo in itertools.product(*axes)] or [{}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=24, help="days generated (default 24)")
    ap.add_argument("--half", choices=("tune", "val", "all"), default="tune")
    ap.add_argument("--house", default="house")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pv", action="store_true", help="with a PV reading: the sun-aware rule")
    args = ap.parse_args()
    grid = settings_grid(args.set)
    try:
        base = load(config_path(args.house))
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    configs = []
    for settings in grid:  # a bad key or value fails now, not in a worker
        try:
            configs.append(configured(base, settings, args.pv))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(part) for part in err["loc"])
            keys = ", ".join(sorted(RegulationConfig.model_fields))
            raise SystemExit(f"--set {where}: {err['msg']} (regulation keys: {keys})") from None
    days = corpus_days(args.days)
    days = {"tune": days[0::2], "val": days[1::2], "all": days}[args.half]
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.workers) as pool:
        files = [str(write(spec, Path(tmp))) for spec in days]
        reading = "with a PV reading" if args.pv else "meter only"
        print(
            f"{len(files)} {args.half} days, {args.house} without schedules, {reading}", flush=True
        )
        for settings, cfg in zip(grid, configs, strict=True):
            totals = list(pool.map(run_day, [(f, cfg) for f in files]))
            div = sum(t.diverted_wh for t in totals)
            imp = sum(t.import_wh for t in totals)
            label = " ".join(f"{k}={v:g}" for k, v in settings.items()) or "defaults"
            print(
                f"{label}: capture {div / sum(t.bound_wh for t in totals):.4f}  "
                f"import by loads {imp:.0f} Wh ({100 * imp / div:.2f} %)  "
                f"switches {sum(t.switches for t in totals)}  "
                f"min on/off violations {sum(t.violations for t in totals)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
