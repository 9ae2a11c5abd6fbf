"""A home battery and its inverter's own self-consumption loop, second by second (docs/battery.md).

Every `period_s` the inverter takes the grid its meter showed `lag_s` ago, and its own power
then, and sets the power that would have made that grid ≈ 0 W: it charges on export and
discharges on import, within its power limits and its SoC limits. Losses are the round-trip
efficiency η split evenly: charging P at the AC side stores P·√η, discharging P takes P/√η.

Pure and small: no clock, no I/O; the house hands it its grid once a second.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from machines.value import value

if TYPE_CHECKING:
    from pvopt.kinds import BatterySimConfig

H = 1.0 / 3600.0


@value
class BatterySpec:
    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    efficiency: float = 0.9  # round trip
    soc0: float = 50.0  # %
    period_s: float = 2.0
    lag_s: float = 2.0
    min_soc: float = 10.0  # %
    max_soc: float = 100.0  # %


class Battery:
    """One battery behind the meter. `step(grid_w)` once a second with the grid the house would
    draw without it; its power (+ charging, at the AC side) adds to that grid. `soc` in %."""

    def __init__(self, spec: BatterySpec):
        self.spec = spec
        self.power_w = 0.0  # what it is set to: clipped to its limits each second
        self.energy_wh = spec.capacity_wh * spec.soc0 / 100.0
        self.one_way = math.sqrt(spec.efficiency)
        self.period = max(1, round(spec.period_s))
        self.lag = max(0, round(spec.lag_s))
        # (grid at the meter, its own power) of the last lag + 1 seconds
        self.seen: deque[tuple[float, float]] = deque(maxlen=self.lag + 1)
        self.second = 0

    @classmethod
    def of(cls, sim: BatterySimConfig) -> Battery:
        """The battery of a validated `battery.sim:` block."""
        return cls(BatterySpec(**sim.model_dump()))

    @property
    def soc(self) -> float:
        return 100.0 * self.energy_wh / self.spec.capacity_wh

    def limits(self) -> tuple[float, float]:
        """(most discharge, most charge) in W at the AC side this second: the power limits,
        and what the cells can still give or take before a SoC limit."""
        s = self.spec
        room_wh = s.capacity_wh * s.max_soc / 100.0 - self.energy_wh
        left_wh = self.energy_wh - s.capacity_wh * s.min_soc / 100.0
        charge = min(s.max_charge_w, max(room_wh, 0.0) / H / self.one_way)
        discharge = min(s.max_discharge_w, max(left_wh, 0.0) / H * self.one_way)
        return discharge, charge

    def step(self, grid_w: float) -> float:
        """One second: `grid_w` is the house's grid without the battery (+ import). Returns
        the battery's power this second (+ charging); the meter sees `grid_w` + it."""
        discharge, charge = self.limits()
        p = min(max(self.power_w, -discharge), charge)
        self.energy_wh += (p * self.one_way if p > 0 else p / self.one_way) * H
        self.seen.append((grid_w + p, p))
        if self.second % self.period == 0 and len(self.seen) > self.lag:
            meter, then = self.seen[0]  # what its meter said `lag` seconds ago, and its power
            self.power_w = then - meter  # what would have made that grid 0
        else:
            self.power_w = p
        self.second += 1
        return p


class BatteryKpi:
    """What the battery did over a run (docs/battery.md has each KPI's definition)."""

    def __init__(self, soc_target: float, tolerance_w: float):
        self.soc_target = soc_target
        self.tolerance_w = tolerance_w
        self.to_loads_ws = 0.0  # discharge attributed to pvopt's loads, W·s
        self.charge_ws = 0.0
        self.discharge_ws = 0.0
        self.soc_max = -math.inf
        self.target_at: float | None = None
        self.sign = 0  # of the last power beyond the tolerance
        self.sign_changes = 0

    def add(self, now: float, power_w: float, loads_w: float, soc: float) -> None:
        """One second: the battery's power (+ charging), what pvopt's loads drew, the SoC."""
        if power_w > 0:
            self.charge_ws += power_w
        elif power_w < 0:
            self.discharge_ws -= power_w
            self.to_loads_ws += min(-power_w, loads_w)
        if abs(power_w) >= self.tolerance_w and power_w != 0:
            sign = 1 if power_w > 0 else -1
            if self.sign and sign != self.sign:
                self.sign_changes += 1
            self.sign = sign
        self.soc_max = max(self.soc_max, soc)
        if self.target_at is None and soc >= self.soc_target:
            self.target_at = now

    def kpis(self, battery: Battery, seconds: int, tz: tzinfo) -> dict[str, object]:
        at = self.target_at
        hours = max(seconds, 1) / 3600.0
        return {
            "battery_to_loads_wh": round(self.to_loads_ws * H, 1),
            "battery_charge_wh": round(self.charge_ws * H, 1),
            "battery_discharge_wh": round(self.discharge_ws * H, 1),
            "battery_soc_end": round(battery.soc, 2),
            "battery_soc_max": round(max(self.soc_max, battery.soc), 2),
            "battery_target_at": None
            if at is None
            else datetime.fromtimestamp(at, tz).isoformat(timespec="seconds"),
            "battery_cycles": round(self.discharge_ws * H / battery.spec.capacity_wh, 3),
            "battery_oscillation": round(self.sign_changes / hours, 1),
        }
