"""Replay a trace through the real controller on a virtual clock, with physical models (DESIGN §11).

Each simulated second: actuators draw their setpoints (a heater's own thermostat may cut it), the
grid balances, the water heater's single mixed node gains heat, loses it to the room and to hot
water draws. Every `sim.meter.period_s` the meter reports a quantised Linky sample, and the very
controller the service runs decides; its commands act from the next second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from machines.controller import Controller
from machines.meter import LinkyState, track_reactive
from machines.model import FORCED_STATES, Kind, LoadSpec
from pvopt.config import Config
from pvopt.traces import Trace

WH_PER_LITRE_K = 1.163
PROBE_PERIOD_S = 10
RECORD_EVERY_S = 10


@dataclass
class Heater:
    """A water heater as one mixed node (DESIGN §11)."""

    litres: float
    loss_w_per_k: float
    thermostat_c: float
    temp_c: float
    ambient_c: float
    cold_c: float

    def __post_init__(self) -> None:
        self.joules_per_k = self.litres * WH_PER_LITRE_K * 3600.0

    def accepts(self) -> bool:
        """The heater's own thermostat: no power at or above its setting."""
        return self.temp_c < self.thermostat_c

    def step(self, power_w: float) -> None:
        self.temp_c += (
            power_w - self.loss_w_per_k * (self.temp_c - self.ambient_c)
        ) / self.joules_per_k

    def draw(self, litres: float) -> None:
        self.temp_c -= min(litres / self.litres, 1.0) * (self.temp_c - self.cold_c)


@dataclass
class LoadKpi:
    energy_wh: float = 0.0
    diverted_wh: float = 0.0
    switches: int = 0
    cold_draws: int = 0
    min_on_off_violations: int = 0


@dataclass
class DayKpi:
    pv_wh: float = 0.0
    diverted_wh: float = 0.0
    bound_wh: float = 0.0


@dataclass
class SimResult:
    kpis: dict[str, Any]
    series: dict[str, np.ndarray] = field(default_factory=dict)


def draw_seconds(cfg: Config, trace: Trace) -> dict[int, float]:
    """Second offsets into the trace of every hot-water draw (local times, every local day)."""
    tz = cfg.site.tz
    first = datetime.fromtimestamp(trace.start, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(trace.start + trace.seconds, tz).date()
    out: dict[int, float] = {}
    day = first
    while day <= last:
        for at, litres in cfg.sim.draws:
            hh, mm = map(int, at.split(":"))
            when = datetime.combine(day, time(hh, mm), tz).timestamp()
            offset = round(when - trace.start)
            if 0 <= offset < trace.seconds:
                out[offset] = out.get(offset, 0.0) + litres
        day += timedelta(days=1)
    return out


def simulate(
    trace: Trace,
    cfg: Config,
    policy: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    record: bool = False,
) -> SimResult:
    """Replay `trace` with `cfg`; deterministic: same inputs, same result."""
    reg = cfg.regulation if policy is None else cfg.regulation.model_copy(update={"policy": policy})
    params = reg.params()
    tz = cfg.site.tz
    specs = cfg.specs()
    start = trace.start
    ctl = Controller(specs, tz, params, start)
    machines = [ctl.machines[s.name] for s in specs]
    sims = {eq.name: eq.sim for eq in cfg.equipment}

    def heater_for(spec: LoadSpec) -> Heater | None:
        if spec.thresholds is None:
            return None
        s = sims[spec.name]
        return Heater(
            s.litres,
            s.loss_w_per_k,
            s.thermostat_c,
            s.t0_c,
            cfg.sim.ambient_c,
            cfg.sim.cold_water_c,
        )

    heaters = [heater_for(spec) for spec in specs]
    bound_heaters = [heater_for(spec) for spec in specs]  # the oracle's own tanks
    n = len(specs)
    first_heater = next((h for h in heaters if h is not None), None)
    is_relay = [s.kind is Kind.RELAY for s in specs]
    relay_power = [sims[s.name].power_w or s.max_w for s in specs]  # unknown relays' truth
    caps = [relay_power[i] if is_relay[i] else specs[i].max_w for i in range(n)]
    enabled = [s.enabled for s in specs]
    draws = draw_seconds(cfg, trace)
    temp_min = [s.thresholds.temp_min if s.thresholds else -math.inf for s in specs]

    meter_period = max(1, round(cfg.sim.meter.period_s))
    quantum = cfg.sim.meter.quantum_va
    q_ratio = cfg.sim.meter.reactive_ratio
    tick_s = reg.tick_s
    stale_after = cfg.meter.stale_after_s

    pv_arr = trace.pv_w.tolist()
    base_arr = trace.base_w.tolist()
    total = trace.seconds

    setpoint = [0.0] * n
    forced = [False] * n
    relay_on = [False] * n
    relay_since: list[float | None] = [None] * n
    loads_kpi = [LoadKpi() for _ in specs]
    days: dict[date, DayKpi] = {}
    erqt = 0.0
    linky = LinkyState()
    last_tick = -math.inf
    acc = dict.fromkeys(
        ("pv", "base", "import", "export", "loads", "diverted", "bound", "ibl", "forced"), 0.0
    )
    below_s = 0
    rec_n = total // RECORD_EVERY_S + 1 if record else 0
    rec_loads = np.zeros((n, rec_n))
    rec_pv = np.zeros(rec_n)
    rec_base = np.zeros(rec_n)
    rec_grid = np.zeros(rec_n)
    rec_temp = np.full(rec_n, np.nan)
    day_kpi = DayKpi()
    next_day_at = 0
    H = 1.0 / 3600.0

    for i in range(total):
        now = start + i
        if i >= next_day_at:
            local = datetime.fromtimestamp(now, tz)
            day_kpi = days.setdefault(local.date(), DayKpi())
            midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tz).timestamp()
            next_day_at = i + max(1, int(midnight - now))
        pv = pv_arr[i]
        base = base_arr[i]
        # -- physics: what each load really draws this second
        loads_w = 0.0
        forced_w = 0.0
        surplus = pv - base if pv > base else 0.0
        left = surplus
        for k in range(n):
            if is_relay[k]:
                p = relay_power[k] if relay_on[k] else 0.0
            else:
                p = setpoint[k]
                h = heaters[k]
                if h is not None:
                    if not h.accepts():
                        p = 0.0
                    h.step(p)
            if p:
                kp = loads_kpi[k]
                kp.energy_wh += p * H
                take = p if p < left else left
                if take > 0:
                    kp.diverted_wh += take * H
                    left -= take
                loads_w += p
                if forced[k]:
                    forced_w += p
        grid = base + loads_w - pv
        # -- the oracle: every second's surplus, loads continuous, only thermostats limit
        left = surplus
        bound = 0.0
        for k in range(n):
            if not enabled[k] or left <= 0:
                bh = bound_heaters[k]
                if bh is not None:
                    bh.step(0.0)
                continue
            bh = bound_heaters[k]
            cap = caps[k]
            if bh is not None:
                cap = cap if bh.accepts() else 0.0
                take = cap if cap < left else left
                bh.step(take)
            else:
                take = cap if cap < left else left
            bound += take
            left -= take
        diverted = loads_w if loads_w < surplus else surplus
        acc["pv"] += pv
        acc["base"] += base
        acc["loads"] += loads_w
        acc["diverted"] += diverted
        acc["bound"] += bound
        day_kpi.pv_wh += pv * H
        day_kpi.diverted_wh += diverted * H
        day_kpi.bound_wh += bound * H
        if grid > 0:
            acc["import"] += grid
            f = forced_w if forced_w < grid else grid
            acc["forced"] += f
            rest = grid - f
            flex = loads_w - forced_w
            acc["ibl"] += flex if flex < rest else rest
        else:
            acc["export"] -= grid
        # -- hot water draws and the comfort KPIs
        if i in draws:
            litres = draws[i]
            for k in range(n):
                h = heaters[k]
                if h is not None:
                    if h.temp_c < temp_min[k]:
                        loads_kpi[k].cold_draws += 1
                    h.draw(litres)
                    bh = bound_heaters[k]
                    if bh is not None:
                        bh.draw(litres)
        for k in range(n):
            h = heaters[k]
            if h is not None and h.temp_c < temp_min[k]:
                below_s += 1
        if record and i % RECORD_EVERY_S == 0:
            j = i // RECORD_EVERY_S
            rec_pv[j] = pv
            rec_base[j] = base
            rec_grid[j] = grid
            for k in range(n):
                rec_loads[k, j] = (
                    (relay_power[k] if relay_on[k] else 0.0)
                    if is_relay[k]
                    else (setpoint[k] if heaters[k] is None or heaters[k].accepts() else 0.0)
                )
            if first_heater is not None:
                rec_temp[j] = first_heater.temp_c
        # -- sensors
        if i % PROBE_PERIOD_S == 0:
            for k in range(n):
                h = heaters[k]
                if h is not None:
                    machines[k].set_temperature(round(h.temp_c, 1), now)
        erqt += q_ratio * base * H
        fresh = i % meter_period == 0
        if fresh:
            q = q_ratio * base
            s_va = math.sqrt(grid * grid + q * q)
            s_va = round(s_va / quantum) * quantum
            linky = LinkyState(
                s_va if grid >= 0 else 0.0,
                now,
                0.0 if grid >= 0 else s_va,
                now,
                track_reactive(linky.reactive, float(int(erqt)), now),
            )
        # -- the regulator: on every fresh sample, else every tick_s
        if fresh or now - last_tick >= tick_s:
            last_tick = now
            ctl.tick(now, linky.snapshot(now, stale_after))
            for k in range(n):
                m = machines[k]
                setpoint[k] = m.setpoint_w
                forced[k] = m.state in FORCED_STATES
                if is_relay[k]:
                    on = m.setpoint_w > 0
                    if on != relay_on[k]:
                        spec = specs[k]
                        since = relay_since[k]
                        if since is not None:
                            held = now + 1 - since
                            if (relay_on[k] and held < spec.min_on_s) or (
                                not relay_on[k] and held < spec.min_off_s
                            ):
                                loads_kpi[k].min_on_off_violations += 1
                        loads_kpi[k].switches += 1
                        relay_on[k] = on
                        relay_since[k] = now + 1
        if progress is not None and i % 3600 == 0:
            progress(i, total)
    if progress is not None:
        progress(total, total)

    kpis = _kpis(trace, reg.policy, acc, loads_kpi, specs, days, below_s)
    series: dict[str, np.ndarray] = {}
    if record:
        series = {
            "t": start + np.arange(rec_n) * RECORD_EVERY_S,
            "pv": rec_pv,
            "base": rec_base,
            "grid": rec_grid,
            "temp": rec_temp,
        }
        for k, spec in enumerate(specs):
            series[f"load:{spec.name}"] = rec_loads[k]
    return SimResult(kpis, series)


def _kpis(
    trace: Trace,
    policy: str,
    acc: dict[str, float],
    loads_kpi: list[LoadKpi],
    specs: list[LoadSpec],
    days: dict[date, DayKpi],
    below_s: int,
) -> dict[str, Any]:
    wh = {k: v / 3600.0 for k, v in acc.items()}
    return {
        "trace": trace.name,
        "policy": policy,
        "seconds": trace.seconds,
        "pv_wh": round(wh["pv"], 1),
        "base_wh": round(wh["base"], 1),
        "import_wh": round(wh["import"], 1),
        "export_wh": round(wh["export"], 1),
        "loads_wh": round(wh["loads"], 1),
        "diverted_wh": round(wh["diverted"], 1),
        "bound_wh": round(wh["bound"], 1),
        "capture": round(wh["diverted"] / wh["bound"], 4) if wh["bound"] > 0 else 1.0,
        "import_by_loads_wh": round(wh["ibl"], 1),
        "forced_import_wh": round(wh["forced"], 1),
        "switches": sum(k.switches for k in loads_kpi),
        "min_on_off_violations": sum(k.min_on_off_violations for k in loads_kpi),
        "cold_draws": sum(k.cold_draws for k in loads_kpi),
        "minutes_below_temp_min": round(below_s / 60.0, 1),
        "loads": {
            spec.name: {
                "energy_wh": round(k.energy_wh, 1),
                "diverted_wh": round(k.diverted_wh, 1),
                "switches": k.switches,
                "cold_draws": k.cold_draws,
            }
            for spec, k in zip(specs, loads_kpi, strict=True)
        },
        "days": [
            {
                "date": d.isoformat(),
                "pv_wh": round(k.pv_wh, 1),
                "diverted_wh": round(k.diverted_wh, 1),
                "bound_wh": round(k.bound_wh, 1),
                "capture": round(k.diverted_wh / k.bound_wh, 4) if k.bound_wh > 0 else 1.0,
            }
            for d, k in sorted(days.items())
        ],
        "schedule_events": [],
    }
