"""Day-ahead PV forecasts for the simulator (docs/planning.md): made from a trace with a seeded,
realistic error, so the planner is measured with forecasts as wrong as real ones, never with the
trace itself; or read from a file of several issues.

The error model: each issue, made at `ISSUE_HOUR` local the evening before, covers the rest of
its evening and the whole next local day. The next day's hourly means are multiplied by a
day-level factor exp(N(0, σ_day)) and an hour-level AR(1) factor exp(x_h), x_h = ρ·x_{h-1} +
N(0, σ_hour·√(1-ρ²)). σ_day = 0.30 and σ_hour = 0.25, ρ = 0.6 give a day-energy error of about
30 % and an hourly one near 40 %, the range published for single-site day-ahead forecasts
from weather models. The errors of a day depend only on the seed and the date.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from machines.errors import ForecastError
from machines.forecast import MAX_PV_W, SLOT_S, Forecast, Slot, parse_csv
from pvsim.traces import Trace

ISSUE_HOUR = 18
SIGMA_DAY = 0.30
SIGMA_HOUR = 0.25
RHO = 0.6
ERRORS = ("perfect", "realistic")


def hourly_pv(trace: Trace) -> dict[int, float]:
    """The trace's mean PV power of each whole UTC hour it covers."""
    first = math.ceil(trace.start / SLOT_S) * SLOT_S
    out: dict[int, float] = {}
    t = first
    while t + SLOT_S <= trace.start + trace.seconds:
        i = int(t - trace.start)
        out[int(t)] = float(trace.pv_w[i : i + SLOT_S].mean())
        t += SLOT_S
    return out


def day_ahead(
    trace: Trace, tz: ZoneInfo, error: str = "realistic", seed: int = 0
) -> list[Forecast]:
    """One forecast per local day the trace reaches, issued the evening before."""
    if error not in ERRORS:
        raise ValueError(f"forecast error {error!r}: one of {', '.join(ERRORS)}")
    truth = hourly_pv(trace)
    if not truth:
        return []
    first = datetime.fromtimestamp(trace.start, tz).date()
    last = datetime.fromtimestamp(trace.start + trace.seconds - 1, tz).date()
    out: list[Forecast] = []
    day = first
    while day <= last:
        issued = datetime.combine(day - timedelta(days=1), time(ISSUE_HOUR), tz).timestamp()
        ends = datetime.combine(day + timedelta(days=1), time(0), tz).timestamp()
        factors = _factors(day.toordinal(), seed) if error == "realistic" else np.ones(48)
        slots = []
        for k, start in enumerate(range(int(issued), int(ends), SLOT_S)):
            if start in truth:
                pv = min(truth[start] * float(factors[k % len(factors)]), MAX_PV_W)
                slots.append(Slot(start, round(pv, 1)))
        if slots:
            out.append(Forecast(int(issued), f"sim:{error}", tuple(slots)))
        day += timedelta(days=1)
    return out


def _factors(ordinal: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, ordinal])
    day = rng.normal(0.0, SIGMA_DAY)
    x = np.zeros(48)
    x[0] = rng.normal(0.0, SIGMA_HOUR)
    for h in range(1, 48):
        x[h] = RHO * x[h - 1] + rng.normal(0.0, SIGMA_HOUR * math.sqrt(1 - RHO * RHO))
    return np.exp(day + x)


def read_history(path: str | Path) -> list[Forecast]:
    """A forecast file (`issued_at,start,pv_w`) that may hold several issues, each read as
    `parse_csv` reads one file, errors naming the file's own lines."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ForecastError(f"{p}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    groups: dict[str, list[int]] = defaultdict(list)
    for n, line in enumerate(lines[1:], 1):
        if line.strip():
            groups[line.split(",", 1)[0].strip()].append(n)
    if not groups:
        return [parse_csv(text, p.name, str(p))]  # its error: empty, or no hours
    out = []
    for numbers in groups.values():
        keep = set(numbers)
        only = [lines[0]] + [lines[n] if n in keep else "" for n in range(1, len(lines))]
        out.append(parse_csv("\n".join(only), p.name, str(p)))
    return sorted(out, key=lambda f: f.issued_at)


def latest(forecasts: list[Forecast], now: float) -> Forecast | None:
    """The last forecast issued at or before `now` (the list in issue order)."""
    found = None
    for f in forecasts:
        if f.issued_at > now:
            break
        found = f
    return found
