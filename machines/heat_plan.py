"""The heating plan of a water heater (docs/planning.md), pure: how warm the tank must be when
an off-peak window closes so that every learnt draw until the next window finds it at or above
`temp_min`, counting the sun a pessimistic reading of the forecast will divert to it.

The schedules planner asks `HeatPlanner.goal` when it opens a window and again every quarter
hour; the answer replaces `temp_eco` as the temperature eco heats to. Without a fresh forecast,
or before a day of draws has been learnt, there is no goal and today's rule runs unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from machines.forecast import Forecast
from machines.tariff import Tariff, tempo_day
from machines.value import value

STEP_S = 900  # the plan's time step: a quarter hour
STEPS_PER_DAY = 86400 // STEP_S
MIN_INTERVAL_S = 60.0  # the energy balance needs this much between two probe readings
DRAW_MIN_K = 0.5  # a balance deficit under this many kelvin is noise, not a draw
DRAW_MARGIN_K = 0.5  # a draw is planned to find the tank this much above temp_min
COLD_WATER_C = 12.0  # what a draw lets in: winter mains water, on the safe side
HISTORY_DAYS = 14
WATCHED_S = 20 * 3600.0  # a day counts in the draw pattern once watched this long
RATIO_PRIOR = 0.5  # surplus / forecast PV before an hour of the day has been measured
RATIO_ALPHA = 0.3  # weight of one day's measure in the calibration of its hour
FORECAST_MAX_AGE_S = 36 * 3600.0


@value
class Target:
    """A user's comfort target: at least `temp` °C at local `by` every day."""

    temp: float
    by: int  # second of the local day


@value
class Legionella:
    temp: float
    every_days: int


@value
class TankFacts:
    """What the plan needs of the tank and its load at one instant."""

    name: str
    temp_c: float
    temp_min: float
    temp_max: float
    max_w: float
    wh_per_k: float
    cooling_k_per_h: float
    ahead_w: float = 0.0  # the power of the loads served before it, taken off the surplus


@value
class PlanStep:
    start: float
    temp_c: float  # at the start of the step, as planned
    sun_wh: float  # solar energy the plan expects diverted to the tank in the step
    drawn: float  # the share of the tank the plan expects drawn in the step


@value
class Goal:
    """How warm the tank must be when the window closes, and why."""

    temp_c: float  # what the tank needs at the close; heating starts only below it
    reason: str
    grid_wh: float  # what getting there takes from the grid, from the tank as it will be
    sun_wh: float = 0.0  # solar energy expected in the tank before the next window
    steps: tuple[PlanStep, ...] = ()


@dataclass
class DrawLearner:
    """Hot water drawn per quarter hour of each local day, from the energy balance of the tank
    between two probe readings: energy put in − heat stored − standing loss."""

    # ISO local day -> per step, the share of the tank a draw replaced with cold water
    days: dict[str, list[float]] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # ISO local day -> seconds watched
    last: tuple[float, float, float] | None = None  # (t, °C, energy counter Wh)

    def observe(
        self,
        t: float,
        temp_c: float,
        energy_wh: float,
        wh_per_k: float,
        loss_k_per_h: float,
        tz: ZoneInfo,
    ) -> None:
        if self.last is None or t < self.last[0] or energy_wh < self.last[2]:
            self.last = (t, temp_c, energy_wh)
            return
        t0, temp0, e0 = self.last
        dt = t - t0
        if dt < MIN_INTERVAL_S:
            return
        self.last = (t, temp_c, energy_wh)
        if dt > 3600.0:
            return  # a gap in the readings: nothing to attribute
        local = datetime.fromtimestamp(t, tz)
        key = local.date().isoformat()
        if key not in self.days:
            self.days[key] = [0.0] * STEPS_PER_DAY
            for old in sorted(self.days)[:-HISTORY_DAYS]:
                del self.days[old]
                self.seen.pop(old, None)
        self.seen[key] = self.seen.get(key, 0.0) + dt
        drawn = (energy_wh - e0) - wh_per_k * (temp_c - temp0) - wh_per_k * loss_k_per_h * dt / 3600
        if drawn < DRAW_MIN_K * wh_per_k or temp0 <= COLD_WATER_C + 1.0:
            return
        share = min(drawn / (wh_per_k * (temp0 - COLD_WATER_C)), 1.0)
        self.days[key][(local.hour * 3600 + local.minute * 60) // STEP_S] += share

    def pattern(self, day: date) -> list[float] | None:
        """The share drawn in each step of `day`: each step's largest draw of the same
        weekday's days when two are known, else of every day before `day` watched for at least
        `WATCHED_S` (a day half watched would hide its other half's draws)."""
        past = {
            d: row
            for d, row in self.days.items()
            if d < day.isoformat() and self.seen.get(d, 0.0) >= WATCHED_S
        }
        if not past:
            return None
        same = [row for d, row in past.items() if date.fromisoformat(d).weekday() == day.weekday()]
        rows = same if len(same) >= 2 else list(past.values())
        return [max(r[k] for r in rows) for k in range(STEPS_PER_DAY)]


@dataclass
class SurplusCalibration:
    """What the house really had to spare (export + routed power) against the forecast PV, by
    hour of the local day: most homes have no PV meter, so the forecast is scaled by this."""

    ratio: dict[int, float] = field(default_factory=dict)  # local hour -> surplus / forecast PV
    hour: tuple[float, int] | None = None  # (UTC start of the hour being measured, local hour)
    measured_ws: float = 0.0
    last_t: float | None = None

    def observe(self, t: float, surplus_w: float, forecast: Forecast | None, tz: ZoneInfo) -> None:
        start = t - t % 3600
        if self.hour is not None and self.hour[0] != start:
            self._close(forecast)
        if self.hour is None or self.hour[0] != start:
            self.hour = (start, datetime.fromtimestamp(t, tz).hour)
            self.measured_ws, self.last_t = 0.0, t
        dt = 0.0 if self.last_t is None else min(t - self.last_t, 60.0)
        self.measured_ws += max(surplus_w, 0.0) * dt
        self.last_t = t

    def _close(self, forecast: Forecast | None) -> None:
        assert self.hour is not None
        start, hour = self.hour
        expected = forecast.energy_wh(start, start + 3600) if forecast else 0.0
        if forecast is None or forecast.covered_s(start, start + 3600) < 3600 or expected < 50:
            return
        seen = min(self.measured_ws / 3600.0 / expected, 1.5)
        old = self.ratio.get(hour, RATIO_PRIOR)
        self.ratio[hour] = (1 - RATIO_ALPHA) * old + RATIO_ALPHA * seen

    def of(self, hour: int) -> float:
        return self.ratio.get(hour, RATIO_PRIOR)


Step = tuple[float, float, float, float]  # start, sun Wh, share drawn, °C it must find (or -inf)


def simulate_tank(
    temp0: float, tank: TankFacts, steps: list[Step]
) -> tuple[float, tuple[PlanStep, ...]]:
    """Run the tank through `steps` from `temp0`: the lowest margin a step finds above the
    temperature it needs (negative: a cold draw or a missed target), and the trajectory."""
    temp = temp0
    worst = float("inf")
    out: list[PlanStep] = []
    for start, sun_wh, share, need_c in steps:
        out.append(PlanStep(start, temp, sun_wh, share))
        worst = min(worst, temp - need_c)
        temp -= share * (temp - COLD_WATER_C)  # the draw first: it comes at the step's start
        temp = min(tank.temp_max, temp + sun_wh / tank.wh_per_k)
        temp -= tank.cooling_k_per_h * STEP_S / 3600.0
    return worst, tuple(out)


class HeatPlanner:
    """Learns each tank's draws and the house's surplus, and sets the goal of eco heating from
    the forecast, the tariff and the user's targets (docs/planning.md)."""

    def __init__(
        self,
        tz: ZoneInfo,
        *,
        tariff: Tariff | None = None,
        colour_of: Callable[[date], str | None] | None = None,
        targets: Mapping[str, list[Target]] | None = None,
        legionella: Mapping[str, Legionella] | None = None,
        pessimism: float = 0.7,
        max_age_s: float = FORECAST_MAX_AGE_S,
    ):
        self.tz = tz
        self.tariff = tariff
        self.colour_of = colour_of or (lambda _day: None)
        self.targets = dict(targets or {})
        self.legionella = dict(legionella or {})
        self.pessimism = pessimism
        self.max_age_s = max_age_s
        self.forecast: Forecast | None = None
        self.draws: dict[str, DrawLearner] = {}
        self.surplus = SurplusCalibration()
        self.hot_at: dict[str, float] = {}  # load -> last time at legionella temperature
        self.colours: dict[date, str] = {}  # Tempo day -> colour, as the meter announced it

    # -- learning, every tick ---------------------------------------------------------------------
    def observe_tank(self, t: float, tank: TankFacts, energy_wh: float) -> None:
        self.draws.setdefault(tank.name, DrawLearner()).observe(
            t, tank.temp_c, energy_wh, tank.wh_per_k, tank.cooling_k_per_h, self.tz
        )
        lg = self.legionella.get(tank.name)
        if lg is not None and tank.temp_c >= lg.temp:
            self.hot_at[tank.name] = t

    def observe_surplus(self, t: float, surplus_w: float) -> None:
        self.surplus.observe(t, surplus_w, self.forecast, self.tz)  # any age: it says the hour

    def fresh_forecast(self, now: float) -> Forecast | None:
        f = self.forecast
        return f if f is not None and f.is_fresh(now, self.max_age_s) else None

    # -- the tariff ----------------------------------------------------------------------------
    def learn_colours(self, days: Mapping[date, str]) -> None:
        """Tempo colours the meter announced; they win over `colour_of` (a calendar)."""
        self.colours.update(days)
        for old in sorted(self.colours)[:-7]:
            del self.colours[old]

    def colour(self, t: float) -> str | None:
        day = tempo_day(datetime.fromtimestamp(t, self.tz))
        return self.colours.get(day) or self.colour_of(day)

    def red_peak(self, t: float) -> bool:
        """A Tempo red day's peak hours: pvopt never heats from the grid then."""
        if self.tariff is None or self.tariff.kind != "tempo":
            return False
        return self.tariff.key(datetime.fromtimestamp(t, self.tz), self.colour(t)) == "red_hp"

    # -- the goal -------------------------------------------------------------------------------
    def goal(self, now: float, closes: float, until: float, tank: TankFacts) -> Goal | None:
        """How warm `tank` must be at `closes` (a window's end) so that every draw before
        `until` (the next window's start) is warm; None: fall back to today's rule."""
        forecast = self.fresh_forecast(now)
        if forecast is None:
            return None
        at_close = tank.temp_c - tank.cooling_k_per_h * max(closes - now, 0.0) / 3600.0

        def grid_wh(temp_c: float) -> float:
            return max(temp_c - at_close, 0.0) * tank.wh_per_k

        if self.tariff is not None and self.tariff.kind == "tempo" and self.colour(closes) == "red":
            reason = "red day tomorrow: heat to temp_max tonight"
            return Goal(tank.temp_max, reason, grid_wh(tank.temp_max))
        if forecast.covered_s(closes, until) < 0.9 * (until - closes):
            return None  # hours it says nothing of are not hours without sun
        steps = self._steps(closes, until, tank, forecast)
        if steps is None:
            return None
        sun_wh = sum(s[1] for s in steps)
        lo, hi = tank.temp_min - 15.0, tank.temp_max
        worst_hi, path_hi = simulate_tank(hi, tank, steps)
        if worst_hi < 0:
            return Goal(
                tank.temp_max,
                f"draws ahead exceed the tank: heat to temp_max "
                f"({sun_wh / 1000:.1f} kWh of sun expected)",
                grid_wh(tank.temp_max),
                sun_wh,
                path_hi,
            )
        for _ in range(20):
            mid = (lo + hi) / 2
            if simulate_tank(mid, tank, steps)[0] >= 0:
                hi = mid
            else:
                lo = mid
        need = max(hi, self._legionella_need(now, closes, until, tank, steps))
        _, trajectory = simulate_tank(need, tank, steps)
        sun = f"{sun_wh / 1000:.1f} kWh of sun expected"
        if need <= at_close:
            reason = f"{sun}, tank {tank.temp_c:.0f} °C: enough until the next window"
        else:
            reason = f"{sun}: heat to {need:.1f} °C for the draws before the sun"
        return Goal(need, reason, grid_wh(need), sun_wh, trajectory)

    def _steps(
        self, closes: float, until: float, tank: TankFacts, forecast: Forecast
    ) -> list[Step] | None:
        learner = self.draws.get(tank.name)
        if learner is None:
            return None
        out: list[Step] = []
        patterns: dict[date, list[float] | None] = {}
        targets = self.targets.get(tank.name, [])
        t = closes
        while t < until:
            local = datetime.fromtimestamp(t, self.tz)
            day = local.date()
            if day not in patterns:
                patterns[day] = learner.pattern(day)
            pattern = patterns[day]
            if pattern is None:
                return None
            sod = local.hour * 3600 + local.minute * 60
            draw = pattern[sod // STEP_S]
            pv = forecast.energy_wh(t, t + STEP_S)
            sun = max(
                pv * self.pessimism * self.surplus.of(local.hour) - tank.ahead_w * STEP_S / 3600.0,
                0.0,
            )
            sun = min(sun, tank.max_w * STEP_S / 3600.0)
            need = tank.temp_min + DRAW_MARGIN_K if draw > 0 else -float("inf")
            for tg in targets:  # the step after the deadline must find the target
                if sod <= tg.by < sod + STEP_S:
                    need = max(need, tg.temp)
            out.append((t, sun, draw, need))
            t += STEP_S
        return out

    def _legionella_need(
        self,
        now: float,
        closes: float,
        until: float,
        tank: TankFacts,
        steps: list[Step],
    ) -> float:
        """The legionella temperature tonight when the cycle falls due before the next window
        and the sun will not reach it; else nothing."""
        lg = self.legionella.get(tank.name)
        if lg is None:
            return -float("inf")
        last = self.hot_at.get(tank.name, -float("inf"))
        if until - last < lg.every_days * 86400.0:
            return -float("inf")
        _, path = simulate_tank(tank.temp_c, tank, steps)
        if any(s.temp_c >= lg.temp for s in path):
            return -float("inf")  # the sun gets there: the sunniest slot, for free
        return min(lg.temp, tank.temp_max)

    # -- persistence -----------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "draws": {k: {"days": v.days, "seen": v.seen} for k, v in self.draws.items()},
            "ratio": {str(h): r for h, r in self.surplus.ratio.items()},
            "hot_at": dict(self.hot_at),
        }

    def restore(self, saved: Mapping[str, Any]) -> None:
        for name, doc in saved.get("draws", {}).items():
            days = {d: list(r) for d, r in doc.get("days", {}).items()}
            self.draws[name] = DrawLearner(days=days, seen=dict(doc.get("seen", {})))
        self.surplus.ratio = {int(h): float(r) for h, r in saved.get("ratio", {}).items()}
        self.hot_at = {k: float(v) for k, v in saved.get("hot_at", {}).items()}
