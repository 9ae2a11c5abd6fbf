"""The physical house of docs/kpis.md, second by second: actuators, water heaters, hot-water draws,
the true grid flows, the meter's samples, the oracle's bound and the KPIs.

The simulator drives it on a virtual clock; `pvopt house` drives it in real time over MQTT.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, cast

import numpy as np

from machines.export import Room, attribute_export, ordered
from machines.model import Kind, LoadSpec
from machines.registry import Registry
from machines.tariff import PRICE_KEYS, tempo_day
from machines.value import value
from pvopt.config import Config
from pvopt.kinds import EquipmentModel, HouseReading
from pvopt.kinds.temp_driven import TempDrivenVariablePowerEquipment
from pvsim.battery import Battery, BatteryKpi
from pvsim.traces import Trace

WH_PER_LITRE_K = 1.163
PROBE_PERIOD_S = 10
PROBE_RES_C = 0.1  # a heater this close to temp_max counts as satisfied for export reasons
RECORD_EVERY_S = 10
H = 1.0 / 3600.0


@dataclass
class Heater:
    """A water heater as one mixed node (docs/kpis.md)."""

    litres: float
    loss_w_per_k: float
    thermostat_c: float
    temp_c: float
    ambient_c: float
    cold_c: float

    hysteresis_k: float = 0.0  # a mechanical thermostat closes again a few kelvin below
    cut: bool = False

    def __post_init__(self) -> None:
        self.joules_per_k = self.litres * WH_PER_LITRE_K * 3600.0

    def accepts(self) -> bool:
        """The heater's own thermostat: open at its setting, closed again `hysteresis_k`
        below it."""
        if self.cut:
            self.cut = self.temp_c >= self.thermostat_c - self.hysteresis_k
        else:
            self.cut = self.temp_c >= self.thermostat_c
        return not self.cut

    def step(self, power_w: float) -> None:
        self.temp_c += (
            power_w - self.loss_w_per_k * (self.temp_c - self.ambient_c)
        ) / self.joules_per_k

    def draw(self, litres: float) -> None:
        self.temp_c -= min(litres / self.litres, 1.0) * (self.temp_c - self.cold_c)


@value
class LoadPhysics:
    """What the simulated house knows of one load beyond its spec."""

    real_w: float  # what an all-or-nothing load really draws when on
    heater: Callable[[], Heater] | None = None  # a fresh tank behind it (one each: house, oracle)


PhysicsHook = Callable[[EquipmentModel, LoadSpec, Config], LoadPhysics]


def resistive(eq: EquipmentModel, spec: LoadSpec, cfg: Config) -> LoadPhysics:
    """A load that draws what it is told, no tank (the default of an unregistered kind);
    an all-or-nothing one draws `sim.power_w` when the user gave its true power."""
    return LoadPhysics(eq.sim.power_w or spec.max_w)


def water_heater(eq: EquipmentModel, spec: LoadSpec, cfg: Config) -> LoadPhysics:
    """A resistive element in a tank with its own thermostat (`sim:` of the entry)."""
    s, sim = eq.sim, cfg.sim

    def tank() -> Heater:
        return Heater(
            s.litres,
            s.loss_w_per_k,
            s.thermostat_c,
            s.t0_c,
            sim.ambient_c,
            sim.cold_water_c,
            s.hysteresis_k,
        )

    return LoadPhysics(s.power_w or spec.max_w, tank)


PHYSICS: Registry[PhysicsHook] = Registry("physics")


def register_physics(type_name: str, hook: PhysicsHook) -> None:
    """How the simulator models loads of kind `type_name` (default: `resistive`)."""
    PHYSICS.register(type_name, hook, replace=True)


def physics_of(eq: EquipmentModel, spec: LoadSpec, cfg: Config) -> LoadPhysics:
    """The kind's model; `sim.tank` puts a tank behind a load of any kind (no probe)."""
    hook = water_heater if eq.sim.tank else PHYSICS.find(eq.type_name()) or resistive
    return hook(eq, spec, cfg)


register_physics(TempDrivenVariablePowerEquipment.type_name(), water_heater)


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
    ceiling_wh: float = 0.0


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


class House:
    """One house on one trace. Call `step(i)` once per trace second, in order; `actuate` when a
    command arrives (it acts from the next second); `reading`/`probe` for the sensors."""

    def __init__(self, cfg: Config, trace: Trace, *, record: bool = False):
        self.cfg = cfg
        self.trace = trace
        self.tz = cfg.site.tz
        self.specs = specs = cfg.specs()
        entries = {eq.name: eq for eq in cfg.equipment}
        physics = [physics_of(entries[s.name], s, cfg) for s in specs]
        self.heaters = [p.heater() if p.heater else None for p in physics]
        self.bound_heaters = [p.heater() if p.heater else None for p in physics]  # the oracle's
        self.ceil_heaters = [p.heater() if p.heater else None for p in physics]  # the ceiling's
        n = self.n = len(specs)
        self.is_relay = [s.kind is Kind.RELAY for s in specs]
        self.relay_power = [p.real_w for p in physics]  # unknown relays: their true power
        self.caps = [self.relay_power[i] if self.is_relay[i] else specs[i].max_w for i in range(n)]
        self.enabled = [s.enabled for s in specs]
        self.draws = draw_seconds(cfg, trace)
        self.temp_min = [s.thresholds.temp_min if s.thresholds else -math.inf for s in specs]
        self.temp_max = [s.thresholds.temp_max if s.thresholds else math.inf for s in specs]
        # the causal ceiling: true surplus at each meter sample, set 1 s later, held
        self.meter_period = max(1, round(cfg.sim.meter.period_s))
        self.ceil_set = [0.0] * n
        # export attribution: each load's last decision's limit, the surplus the meter last saw
        self.limits = [""] * n
        self.sample_surplus: float | None = None
        self.export_by: dict[str, float] = {}  # W·s by reason
        self.first_heater = next((h for h in self.heaters if h is not None), None)
        self.pv_arr = trace.pv_w.tolist()
        self.base_arr = trace.base_w.tolist()
        self.setpoint = [0.0] * n
        self.forced = [False] * n
        self.relay_on = [False] * n
        self.relay_since: list[float | None] = [None] * n
        self.loads_kpi = [LoadKpi() for _ in specs]
        # devices off the network (and powered down) in daily windows: `sim.offline`
        self.windows = [entries[s.name].sim.offline_windows() for s in specs]
        self.any_windows = any(self.windows)
        self.online = [True] * n
        self.availability_changes: list[tuple[int, bool]] = []  # (load, online) to report
        self.midnight = 0.0
        self.days: dict[date, DayKpi] = {}
        self.day_kpi = DayKpi()
        self.next_day_at = 0
        self.erqt = 0.0
        self.grid = 0.0
        self.base = 0.0
        self.pv = 0.0
        self.q_ratio = cfg.sim.meter.reactive_ratio
        self.quantum = cfg.sim.meter.quantum_va
        self.acc = dict.fromkeys(
            (
                "pv",
                "base",
                "import",
                "export",
                "loads",
                "diverted",
                "bound",
                "ceiling",
                "ibl",
                "forced",
            ),
            0.0,
        )
        self.below_s = 0
        self.seconds = 0
        # the tariff in force: import by price key (W·s), the key held until it may change
        self.tariff = cfg.tariff.tariff() if cfg.tariff is not None else None
        self.tempo = cfg.sim.tempo_calendar
        self.import_by_key = dict.fromkeys(PRICE_KEYS[self.tariff.kind], 0.0) if self.tariff else {}
        self.heating_by_key = dict.fromkeys(self.import_by_key, 0.0)  # heaters' grid W·s
        self.forced_by_key = dict.fromkeys(self.import_by_key, 0.0)  # ... while forced
        self.tariff_key = ""
        self.tariff_next_at = 0
        self.record = record
        rec_n = trace.seconds // RECORD_EVERY_S + 1 if record else 0
        self.rec_loads = np.zeros((n, rec_n))
        self.rec_pv = np.zeros(rec_n)
        self.rec_base = np.zeros(rec_n)
        self.rec_grid = np.zeros(rec_n)
        self.rec_temp = np.full(rec_n, np.nan)
        # a home battery beside the meter (`battery:`): absent, nothing of it runs
        self.battery: Battery | None = None
        self.battery_kpi: BatteryKpi | None = None
        if cfg.battery is not None:
            self.battery = Battery.of(cfg.battery.sim)
            self.battery_kpi = BatteryKpi(cfg.battery.soc_target, cfg.battery.tolerance_w)
            self.battery_w = 0.0
            self.rec_battery = np.full(rec_n, np.nan)
            self.rec_soc = np.full(rec_n, np.nan)

    def drawn_w(self, k: int) -> float:
        """What load `k` really draws now (a heater's thermostat may have cut it)."""
        if self.is_relay[k]:
            return self.relay_power[k] if self.relay_on[k] else 0.0
        h = self.heaters[k]
        return self.setpoint[k] if h is None or h.accepts() else 0.0

    def step(self, i: int) -> float:
        """Second `i` of the trace: physics, the oracle, the KPIs; returns the grid power."""
        n = self.n
        now = self.trace.start + i
        if i >= self.next_day_at:
            local = datetime.fromtimestamp(now, self.tz)
            self.day_kpi = self.days.setdefault(local.date(), DayKpi())
            self.midnight = datetime.combine(local.date(), time(0), self.tz).timestamp()
            midnight = datetime.combine(
                local.date() + timedelta(days=1), time(0), self.tz
            ).timestamp()
            self.next_day_at = i + max(1, int(midnight - now))
        day_kpi = self.day_kpi
        if self.tariff is not None and i >= self.tariff_next_at:
            local = datetime.fromtimestamp(now, self.tz)
            self.tariff_key = self.tariff.key(local, self.tempo.get(tempo_day(local)))
            self.tariff_next_at = i + self.tariff.seconds_to_change(local)
        if self.any_windows:
            self._availability(now - self.midnight)
        pv = self.pv_arr[i]
        base = self.base_arr[i]
        heaters = self.heaters
        loads_kpi = self.loads_kpi
        # -- physics: what each load really draws this second
        loads_w = 0.0
        forced_w = 0.0
        surplus = pv - base if pv > base else 0.0
        left = surplus
        for k in range(n):
            if self.is_relay[k]:
                p = self.relay_power[k] if self.relay_on[k] else 0.0
            else:
                p = self.setpoint[k]
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
                else:
                    take = 0.0
                if heaters[k] is not None and self.tariff_key and take < p:
                    self.heating_by_key[self.tariff_key] += p - take
                    if self.forced[k]:
                        self.forced_by_key[self.tariff_key] += p - take
                loads_w += p
                if self.forced[k]:
                    forced_w += p
        grid = base + loads_w - pv
        if self.battery is not None and self.battery_kpi is not None:
            self.battery_w = b = self.battery.step(grid)
            grid += b
            self.battery_kpi.add(now, b, loads_w, self.battery.soc)
        # -- the oracle: every second's surplus, loads continuous, only thermostats limit
        left = surplus
        bound = 0.0
        for k in range(n):
            bh = self.bound_heaters[k]
            if not self.enabled[k] or left <= 0:
                if bh is not None:
                    bh.step(0.0)
                continue
            cap = self.caps[k]
            if bh is not None:
                cap = cap if bh.accepts() else 0.0
                take = cap if cap < left else left
                bh.step(take)
            else:
                take = cap if cap < left else left
            bound += take
            left -= take
        ceiling = self._ceiling_step(i, surplus)
        diverted = loads_w if loads_w < surplus else surplus
        acc = self.acc
        acc["ceiling"] += ceiling
        day_kpi.ceiling_wh += ceiling * H
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
            if self.tariff_key:
                self.import_by_key[self.tariff_key] += grid
            f = forced_w if forced_w < grid else grid
            acc["forced"] += f
            rest = grid - f
            flex = loads_w - forced_w
            acc["ibl"] += flex if flex < rest else rest
        else:
            acc["export"] -= grid
            if grid < 0:
                self._explain_export(-grid, surplus)
        if i % self.meter_period == 0:
            self.sample_surplus = surplus
        # -- hot water draws and the comfort KPIs
        if i in self.draws:
            litres = self.draws[i]
            for k in range(n):
                h = heaters[k]
                if h is not None:
                    if h.temp_c < self.temp_min[k]:
                        loads_kpi[k].cold_draws += 1
                    h.draw(litres)
                    for other in (self.bound_heaters[k], self.ceil_heaters[k]):
                        if other is not None:
                            other.draw(litres)
        for k in range(n):
            h = heaters[k]
            if h is not None and h.temp_c < self.temp_min[k]:
                self.below_s += 1
        if self.record and i % RECORD_EVERY_S == 0:
            j = i // RECORD_EVERY_S
            self.rec_pv[j] = pv
            self.rec_base[j] = base
            self.rec_grid[j] = grid
            for k in range(n):
                self.rec_loads[k, j] = self.drawn_w(k)
            if self.first_heater is not None:
                self.rec_temp[j] = self.first_heater.temp_c
            if self.battery is not None:
                self.rec_battery[j] = self.battery_w
                self.rec_soc[j] = self.battery.soc
        self.erqt += self.q_ratio * base * H
        self.grid = grid
        self.base = base
        self.pv = pv
        self.seconds += 1
        return cast(float, grid)  # a numpy float64 from the arrays: a float to the caller

    def _ceiling_step(self, i: int, surplus: float) -> float:
        """The causal ceiling's second `i`: what its held setpoints divert; at a meter sample,
        its new setpoints (true surplus now, priority order, continuous loads up to their max,
        heaters up to `temp_max`) act from the next second."""
        loads_w = 0.0
        for k in range(self.n):
            p = self.ceil_set[k]
            ch = self.ceil_heaters[k]
            if ch is not None:
                if not (ch.accepts() and ch.temp_c < self.temp_max[k]):
                    p = 0.0
                ch.step(p)
            loads_w += p
        if i % self.meter_period == 0:
            left = surplus
            hold = self.meter_period
            for k in range(self.n):
                ch = self.ceil_heaters[k]
                cap = self.caps[k]
                if ch is not None:  # what it takes to reach temp_max over the hold, no more
                    top = min(self.temp_max[k], ch.thermostat_c)
                    loss = ch.loss_w_per_k * (ch.temp_c - ch.ambient_c)
                    cap = min(cap, max((top - ch.temp_c) * ch.joules_per_k / hold + loss, 0.0))
                if not self.enabled[k] or left <= 0:
                    cap = 0.0
                take = cap if cap < left else left
                self.ceil_set[k] = take
                left -= take
        return loads_w if loads_w < surplus else surplus

    def _explain_export(self, export_w: float, surplus: float) -> None:
        """Charge this second's export to the loads that could have taken it (machines/export)."""
        rooms = []
        for k in range(self.n):
            if not self.enabled[k]:
                continue
            h = self.heaters[k]
            if h is not None and not (h.accepts() and h.temp_c < self.temp_max[k] - PROBE_RES_C):
                continue  # its thermostat, or temp_max within what the probe resolves: full
            if self.is_relay[k]:
                room = 0.0 if self.relay_on[k] else self.caps[k]
            else:
                room = self.caps[k] - self.setpoint[k]
            if room > 0:
                rooms.append(Room(room, self.limits[k] or "settling", not self.is_relay[k]))
        lag = 0.0 if self.sample_surplus is None else surplus - self.sample_surplus
        for reason, w in attribute_export(export_w, rooms, lag).items():
            self.export_by[reason] = self.export_by.get(reason, 0.0) + w

    def explain(self, k: int, limit: str) -> None:
        """Load `k`'s decision says why it takes no more (acts with its command, next second)."""
        self.limits[k] = limit

    # -- sensors ----------------------------------------------------------------------------
    def probe(self) -> list[tuple[int, float]]:
        """Each water heater's probe reading (0.1 °C resolution)."""
        return [(k, round(h.temp_c, 1)) for k, h in enumerate(self.heaters) if h is not None]

    def pv_report(self, i: int) -> str:
        """What the inverter reports of second `i`'s production (the trace's first before it)."""
        return f"{self.pv_arr[max(i, 0)]:.0f}"

    def reading(self) -> HouseReading:
        """The true flows at the meter now, for the meter source to publish."""
        if self.battery is None:
            return HouseReading(self.grid, self.q_ratio * self.base, self.erqt, self.quantum)
        return HouseReading(
            self.grid,
            self.q_ratio * self.base,
            self.erqt,
            self.quantum,
            self.battery_w,
            self.battery.soc,
        )

    # -- actuators --------------------------------------------------------------------------
    def _availability(self, second_of_day: float) -> None:
        """Devices going off the network, and back, as their `sim.offline` windows say: one
        that goes is powered down (draws nothing, and comes back off)."""
        for k, windows in enumerate(self.windows):
            if not windows:
                continue
            online = not any(
                a <= second_of_day < b if a <= b else (second_of_day >= a or second_of_day < b)
                for a, b in windows
            )
            if online != self.online[k]:
                self.online[k] = online
                self.availability_changes.append((k, online))
                if not online:
                    self.setpoint[k] = 0.0
                    self.relay_on[k] = False
                    self.relay_since[k] = None

    def actuate(self, k: int, power_w: float, forced: bool, now: float) -> None:
        """Load `k` is told to draw `power_w` from the next second; counts relay switches and
        min on/off violations. A device off the network hears nothing."""
        if not self.online[k]:
            return
        self.setpoint[k] = power_w
        self.forced[k] = forced
        if not self.is_relay[k]:
            return
        on = power_w > 0
        if on == self.relay_on[k]:
            return
        spec = self.specs[k]
        since = self.relay_since[k]
        if since is not None:
            held = now + 1 - since
            if (self.relay_on[k] and held < spec.min_on_s) or (
                not self.relay_on[k] and held < spec.min_off_s
            ):
                self.loads_kpi[k].min_on_off_violations += 1
        self.loads_kpi[k].switches += 1
        self.relay_on[k] = on
        self.relay_since[k] = now + 1

    # -- results ----------------------------------------------------------------------------
    def result(self, policy: str, events: list[dict[str, Any]] | None = None) -> SimResult:
        kpis = _kpis(
            self.trace,
            self.seconds,
            policy,
            self.acc,
            self.loads_kpi,
            self.specs,
            self.days,
            self.below_s,
            self.export_by,
        )
        kpis["schedule_events"] = events or []
        # what the heating loads drew beyond the surplus they were given: from the grid
        grid_heating = sum(
            k.energy_wh - k.diverted_wh
            for k, h in zip(self.loads_kpi, self.heaters, strict=True)
            if h is not None
        )
        kpis["grid_heating_wh"] = round(grid_heating, 1)
        if self.battery is not None and self.battery_kpi is not None:
            kpis |= self.battery_kpi.kpis(self.battery, self.seconds, self.tz)
        if self.tariff is not None:
            by_key = {k: v / 3600.0 for k, v in self.import_by_key.items()}
            kpis["import_by_tariff_wh"] = {k: round(v, 1) for k, v in by_key.items()}
            kpis["grid_heating_by_tariff_wh"] = {
                k: round(v / 3600.0, 1) for k, v in self.heating_by_key.items()
            }
            kpis["forced_heating_by_tariff_wh"] = {
                k: round(v / 3600.0, 1) for k, v in self.forced_by_key.items()
            }
            kpis["cost_eur"] = round(self.tariff.cost_eur(by_key, self.acc["export"] / 3600.0), 3)
        series: dict[str, np.ndarray] = {}
        if self.record:
            rec_n = len(self.rec_pv)
            series = {
                "t": self.trace.start + np.arange(rec_n) * RECORD_EVERY_S,
                "pv": self.rec_pv,
                "base": self.rec_base,
                "grid": self.rec_grid,
                "temp": self.rec_temp,
            }
            for k, spec in enumerate(self.specs):
                series[f"load:{spec.name}"] = self.rec_loads[k]
            if self.battery is not None:
                series["battery"] = self.rec_battery  # W, + charging
                series["battery_soc"] = self.rec_soc
        return SimResult(kpis, series)


def _kpis(
    trace: Trace,
    seconds: int,
    policy: str,
    acc: dict[str, float],
    loads_kpi: list[LoadKpi],
    specs: list[LoadSpec],
    days: dict[date, DayKpi],
    below_s: int,
    export_by: dict[str, float] | None = None,
) -> dict[str, Any]:
    wh = {k: v / 3600.0 for k, v in acc.items()}
    by_reason = {k: round(v / 3600.0, 1) for k, v in ordered(export_by or {})}
    return {
        "trace": trace.name,
        "policy": policy,
        "seconds": seconds,
        "pv_wh": round(wh["pv"], 1),
        "base_wh": round(wh["base"], 1),
        "import_wh": round(wh["import"], 1),
        "export_wh": round(wh["export"], 1),
        "loads_wh": round(wh["loads"], 1),
        "diverted_wh": round(wh["diverted"], 1),
        "bound_wh": round(wh["bound"], 1),
        "capture": round(wh["diverted"] / wh["bound"], 4) if wh["bound"] > 0 else 1.0,
        "ceiling_wh": round(wh["ceiling"], 1),
        "efficiency": round(wh["diverted"] / wh["ceiling"], 4) if wh["ceiling"] > 0 else 1.0,
        "export_by_reason_wh": by_reason,
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
                "ceiling_wh": round(k.ceiling_wh, 1),
                "capture": round(k.diverted_wh / k.bound_wh, 4) if k.bound_wh > 0 else 1.0,
            }
            for d, k in sorted(days.items())
        ],
        "schedule_events": [],
    }
