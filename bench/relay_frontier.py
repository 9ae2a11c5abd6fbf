"""How far the relay rule is from hindsight: for each weight λ of import against export, the
relay schedule chosen knowing the whole day (pvsim/hindsight.py; one hold, the longer of
`min_on_s` and `min_off_s`; at most `--switches` a day) is replayed through the
simulator, the default policy steering the dimmers around it. Every figure printed is the
simulator's; the rule's own line comes first.

    .venv/bin/python bench/relay_frontier.py [--trace broken_clouds] [--house house]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import numpy as np

import machines.policy.default
from machines.model import LoadView, PolicyMemo
from machines.policy import RelayParams, RelayPlan
from pvopt.config import ConfigError, load
from pvopt.examples import config_path, trace_path
from pvsim.hindsight import BLOCK_S, best_schedule, relay_blocks, relay_index
from pvsim.simulator import simulate
from pvsim.traces import load_trace

LAMBDAS = (1.0, 2.0, 4.0, 8.0, 16.0)

RelayPass = Callable[[Sequence[LoadView], float, RelayParams, float, PolicyMemo], RelayPlan]


def scheduled_pass(schedule: np.ndarray, start: float, relay: str) -> RelayPass:
    """Stands in for the rule's `decide_relays`: the relay follows the schedule."""

    def relay_pass(
        order: Sequence[LoadView], budget: float, params: RelayParams, now: float, memo: PolicyMemo
    ) -> RelayPlan:
        del order, budget, params, memo
        b = min(int((now - start) // BLOCK_S), len(schedule) - 1)
        return RelayPlan({relay} if schedule[b] else set(), {}, {})

    return relay_pass


def line(label: str, k: dict[str, Any]) -> str:
    share = 100 * k["import_by_loads_wh"] / max(k["diverted_wh"], 1e-9)
    return (
        f"{label:22} capture {k['capture']:.3f}  efficiency {k['efficiency']:.3f}  "
        f"import by loads {k['import_by_loads_wh']:4.0f} Wh ({share:.2f} %)  "
        f"switches {k['switches']:2}  min on/off violations {k['min_on_off_violations']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", default="broken_clouds")
    ap.add_argument("--house", default="house")
    ap.add_argument("--switches", type=int, default=14, help="most relay switches a day (14)")
    args = ap.parse_args()
    try:
        cfg = load(config_path(args.house)).model_copy(update={"schedules": []})  # the relay alone
        trace = load_trace(trace_path(args.trace))
        spec = cfg.specs()[relay_index(cfg)]
    except (ConfigError, ValueError) as exc:  # TraceError is a ValueError
        raise SystemExit(f"error: {exc}") from None
    rule = simulate(trace, cfg, record=True)
    print(f"{args.trace}, {args.house} without schedules: relay {spec.name}")
    print(line("rule (default policy)", rule.kpis), flush=True)
    gain, imp = relay_blocks(cfg, trace, rule.series["temp"])
    days = math.ceil(trace.seconds / 86400)
    hold = max(1, math.ceil(max(spec.min_on_s, spec.min_off_s) / BLOCK_S))
    for lam in LAMBDAS:
        schedule = best_schedule(gain - lam * imp, hold, args.switches * days)
        hindsight = scheduled_pass(schedule, trace.start, spec.name)
        with mock.patch.object(machines.policy.default, "decide_relays", hindsight):
            k = simulate(trace, cfg).kpis
        print(line(f"hindsight, λ = {lam:g}", k), flush=True)


if __name__ == "__main__":
    main()
