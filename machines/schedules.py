"""Forced-heating schedules (docs/schedules.md), pure: when a window is open, when a daily check
is due, and what each load must do about it. The controller calls `Planner.update` before every tick
with a read-only view of each load and applies the requests it returns (eco until, boost until,
release) to the machines; APScheduler only wakes the service at the boundaries `next_events` gives.

Daylight saving: a wall time in the spring-forward gap opens at the first minute that exists; an
ambiguous one (fall-back night) means its first occurrence, and a window is identified by the
local date it starts on, so it runs once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from machines.heat_plan import HeatPlanner, PlanStep, TankFacts
from machines.loads import LoadFacts
from machines.model import Mode, State
from machines.value import value

WH_PER_LITRE_K = 1.163
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_COOLING_K_PER_H = 0.5  # before the probe has shown its own rate; on the safe side
START_SAFETY = 1.25  # eco starts this much earlier than the estimated heating time ...
START_MARGIN_S = 15 * 60.0  # ... plus this
HOLD_BAND_K = 0.3  # once temp_eco was reached, re-heat below temp_eco + this
PLAN_EVERY_S = 900.0  # an open window's heating goal is planned again this often


@value
class Schedule:
    """One validated `schedules:` entry, its load resolved to a name."""

    name: str
    load: str
    action: str  # eco | boost | boost-deficit
    start: time | None = None
    end: time | None = None
    tariff: bool = False
    at: time | None = None
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday: the days a window starts on
    min_today_wh: float | None = None
    min_two_days_wh: float | None = None

    @property
    def key(self) -> str:
        """Unique per load: the seed's HC window gives one `offpeak` schedule per load."""
        return f"{self.name}:{self.load}"

    @property
    def is_window(self) -> bool:
        return self.at is None


def _changed(a: tuple[bool, float | None], b: tuple[bool, float | None]) -> bool:
    """A new plan worth an event: another kind of decision, or a goal a kelvin away."""
    if a[0] != b[0] or (a[1] is None) != (b[1] is None):
        return True
    return a[1] is not None and b[1] is not None and abs(a[1] - b[1]) >= 1.0


def wall(day: date, hm: time, tz: ZoneInfo) -> float:
    """Epoch of local `hm` on `day`: its first occurrence when ambiguous, the first minute that
    exists when it falls in a spring-forward gap."""
    naive = datetime.combine(day, hm)
    for minutes in range(0, 181):
        candidate = naive + timedelta(minutes=minutes)
        aware = candidate.replace(tzinfo=tz, fold=0)
        ts = aware.timestamp()
        if datetime.fromtimestamp(ts, tz).replace(tzinfo=None) == candidate:
            return ts
    raise ValueError(f"no such local time: {naive} in {tz}")  # pragma: no cover


def local_day(now: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(now, tz).date()


def window_on(s: Schedule, day: date, tz: ZoneInfo) -> tuple[float, float]:
    """The occurrence of window `s` that starts on local `day`: (opens, closes)."""
    assert s.start is not None and s.end is not None
    end_day = day + timedelta(days=1) if s.end <= s.start else day
    return wall(day, s.start, tz), wall(end_day, s.end, tz)


def open_window(s: Schedule, now: float, tz: ZoneInfo) -> tuple[float, float] | None:
    """The occurrence of clock window `s` that contains `now`, if any."""
    if s.start is None:
        return None
    today = local_day(now, tz)
    for day in (today - timedelta(days=1), today):
        if day.weekday() in s.days:
            opens, closes = window_on(s, day, tz)
            if opens <= now < closes:
                return opens, closes
    return None


def check_on(s: Schedule, day: date, tz: ZoneInfo) -> float:
    assert s.at is not None
    return wall(day, s.at, tz)


def next_events(s: Schedule, after: float, tz: ZoneInfo, count: int = 3) -> list[tuple[float, str]]:
    """The next `count` boundaries of `s` strictly after `after`: ("open"|"close"|"check")."""
    out: list[tuple[float, str]] = []
    day = local_day(after, tz) - timedelta(days=1)
    for _ in range(400):
        if day.weekday() in s.days:
            if s.at is not None:
                events = [(check_on(s, day, tz), "check")]
            elif s.start is not None:
                opens, closes = window_on(s, day, tz)
                events = [(opens, "open"), (closes, "close")]
            else:
                events = []  # tariff-only: follows the meter
            out.extend(e for e in events if e[0] > after)
        if len(out) >= count:
            break
        day += timedelta(days=1)
    return sorted(out)[:count]


@dataclass
class WindowRun:
    """One open occurrence of a window schedule, and what eco decided in it."""

    key: str
    opened_at: float
    closes_at: float | None  # None: a tariff window, open while the meter says off-peak
    triggered: bool = False  # eco: the guarantee was at risk in this window
    heating: bool = False  # eco: heating to temp_eco now
    reached: bool = False  # eco: temp_eco was reached once: hold it
    planned: bool = False  # eco: the heating plan set the goal (else temp_eco, today's rule)
    goal_c: float | None = None  # eco: the planned temperature at the close (None: no heating)
    planned_at: float | None = None
    reason: str = ""


@value
class ScheduleEvent:
    key: str
    name: str
    load: str
    event: str  # open | close | check | missed | plan
    at: float
    triggered: bool | None = None
    temperature_c: float | None = None
    detail: str = ""


@value
class EcoRequest:
    """Heat `load` from the grid now: a guarantee is at risk in a window that closes at `until`
    (None: a tariff window). A level, not an edge: each tick's plan names every load that needs
    eco; a load it leaves out has none."""

    load: str
    until: float | None
    reason: str  # forced_window | deficit


@value
class BoostRequest:
    """Boost `load` at full power until `until` (None: until a `Release`), in auto mode."""

    load: str
    until: float | None
    reason: str  # forced_window | deficit


@value
class Release:
    """End `load`'s open-ended boost (a tariff window closed) and hand it back to auto."""

    load: str


Request = EcoRequest | BoostRequest | Release


def assume(load: LoadFacts, request: BoostRequest | Release) -> LoadFacts:
    """The load as later schedules of the same tick must see it once `request` is applied."""
    if isinstance(request, BoostRequest):
        return replace(load, state=State.BOOST, forced_until=request.until)
    # AUTO ends a boost; where the load goes then is the machine's call, never a boost again
    state = State.OFF if load.state is State.BOOST else load.state
    return replace(load, state=state, mode=Mode.AUTO, forced_until=None)


@value
class PlanNote:
    """The heating plan's last word on a load: when, the goal (None: today's rule), why."""

    at: float
    goal_c: float | None
    reason: str
    grid_wh: float = 0.0  # what reaching the goal takes from the grid, at the plan's time
    steps: tuple[PlanStep, ...] = ()


@dataclass
class LoadMemory:
    """What the planner learns about a water heater: cooling rate and heat capacity."""

    samples: list[tuple[float, float]] = field(default_factory=list)  # (t, °C) while idle
    heat_wh_per_k: float | None = None
    heat_start: tuple[float, float] | None = None  # (t, °C) when eco heating started
    loss_k_per_h: float | None = None  # the heating plan's standing loss, last measured


class Planner:
    """Opens and closes windows, runs daily checks and asks for each load's eco/boost
    (docs/schedules.md); it never moves a machine itself."""

    def __init__(
        self,
        schedules: list[Schedule],
        tz: ZoneInfo,
        *,
        seed_rule: bool = False,
        tank_litres: Mapping[str, float] | None = None,
        saved: Mapping[str, Any] | None = None,
        heat: HeatPlanner | None = None,
    ):
        self.schedules = schedules
        self.heat = heat
        self.tz = tz
        self.seed_rule = seed_rule
        self.tank_litres = dict(tank_litres or {})
        self.runs: dict[str, WindowRun] = {}
        self.last_opened: dict[str, float] = {}  # key -> opens of the last occurrence run
        self.checks_done: dict[str, str] = {}  # key -> ISO local day of the last check
        self.memory: dict[str, LoadMemory] = {}
        self.plans: dict[str, PlanNote] = {}  # load -> the heating plan's last word
        self.plan_version = 0  # bumped when a plan changes: the shell publishes it again
        self.events: list[ScheduleEvent] = []
        self.started = False
        self._quiet_until: dict[str, float] = {}  # key -> nothing can happen before (a cache)
        if saved:
            self._restore(saved)

    # -- persistence ------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "runs": {k: asdict(r) for k, r in self.runs.items()},
            "last_opened": dict(self.last_opened),
            "checks_done": dict(self.checks_done),
            "heat_wh_per_k": {
                k: m.heat_wh_per_k for k, m in self.memory.items() if m.heat_wh_per_k
            },
            "heat_plan": self.heat.dump() if self.heat is not None else {},
        }

    def _restore(self, saved: Mapping[str, Any]) -> None:
        keys = {s.key for s in self.schedules}
        self.runs = {k: WindowRun(**r) for k, r in saved.get("runs", {}).items() if k in keys}
        self.last_opened = {k: v for k, v in saved.get("last_opened", {}).items() if k in keys}
        self.checks_done = {k: v for k, v in saved.get("checks_done", {}).items() if k in keys}
        for load, c in saved.get("heat_wh_per_k", {}).items():
            self.memory.setdefault(load, LoadMemory()).heat_wh_per_k = c
        if self.heat is not None:
            self.heat.restore(saved.get("heat_plan", {}))

    def drain_events(self) -> list[ScheduleEvent]:
        out, self.events = self.events, []
        return out

    # -- the per-tick rule --------------------------------------------------------------------
    def update(
        self,
        now: float,
        loads: Mapping[str, LoadFacts],
        *,
        offpeak: bool | None = None,
        surplus_w: float | None = None,
    ) -> list[Request]:
        """Bring windows and checks up to date at `now` and return what the loads must do: the
        boosts and releases in order, then the eco requests. `offpeak` is the meter's tariff
        (None when unknown or stale: tariff windows fall back to the clock); `surplus_w`, what
        the house had to spare (export + routed power), calibrates the forecast."""
        views = dict(loads)  # a request updates this copy: later schedules see it applied
        plan: list[Request] = []
        for name, load in views.items():
            self._observe(name, load, now)
        if self.heat is not None:
            if surplus_w is not None:
                self.heat.observe_surplus(now, surplus_w)
            for load in views.values():
                tank = self._tank(load, views)
                if tank is not None:
                    self.heat.observe_tank(now, tank, load.energy_total_wh)
        self._close_ended(now, views, plan, offpeak)
        for s in self.schedules:
            if s.load not in views:
                continue
            if s.is_window:
                self._maybe_open(s, views, plan, now, offpeak)
            elif not self.seed_rule:
                self._maybe_check(s, views, plan, now)
        plan.extend(self._eco_requests(now, views))
        self.started = True
        return plan

    @staticmethod
    def _ask(
        request: BoostRequest | Release, views: dict[str, LoadFacts], plan: list[Request]
    ) -> None:
        plan.append(request)
        views[request.load] = assume(views[request.load], request)

    def _emit(self, s: Schedule, event: str, at: float, **extra: Any) -> None:
        self.events.append(ScheduleEvent(s.key, s.name, s.load, event, at, **extra))

    def _occurrence(
        self, s: Schedule, now: float, offpeak: bool | None
    ) -> tuple[float, float | None] | None:
        if s.tariff and offpeak is not None:
            return (now, None) if offpeak else None
        return open_window(s, now, self.tz)

    def _close_ended(
        self,
        now: float,
        views: dict[str, LoadFacts],
        plan: list[Request],
        offpeak: bool | None,
    ) -> None:
        by_key = {s.key: s for s in self.schedules}
        for key, run in list(self.runs.items()):
            s = by_key[key]
            if run.closes_at is None:
                ended = not (offpeak if offpeak is not None else open_window(s, now, self.tz))
            else:
                ended = now >= run.closes_at
            if not ended:
                continue
            del self.runs[key]
            load = views.get(s.load)
            temp = None if load is None else load.temperature_c
            detail = ""  # the plan against what happened
            if run.planned and run.goal_c is not None:
                got = "unknown" if temp is None else f"{temp:.1f} °C"
                detail = f"planned {run.goal_c:.1f} °C by the close, got {got}"
            self._emit(
                s,
                "close",
                run.closes_at if run.closes_at is not None else now,
                triggered=run.triggered,
                temperature_c=temp,
                detail=detail,
            )
            if (
                load is not None
                and s.action == "boost"
                and load.is_forced
                and load.forced_until is None
            ):
                self._ask(Release(s.load), views, plan)  # a tariff boost has no deadline of its own

    def _maybe_open(
        self,
        s: Schedule,
        views: dict[str, LoadFacts],
        plan: list[Request],
        now: float,
        offpeak: bool | None,
    ) -> None:
        load = views[s.load]
        if s.key in self.runs or not load.spec.enabled:
            return
        follows_clock = not (s.tariff and offpeak is not None)
        if follows_clock and now < self._quiet_until.get(s.key, -math.inf):
            return
        occ = self._occurrence(s, now, offpeak)
        if occ is None:
            if follows_clock:
                opens_next = [t for t, e in next_events(s, now, self.tz, 2) if e == "open"]
                self._quiet_until[s.key] = opens_next[0] if opens_next else math.inf
            return
        opens, closes = occ
        if closes is not None and self.last_opened.get(s.key) == opens:
            self._quiet_until[s.key] = closes  # this occurrence already ran (a restart in it)
            return
        self.runs[s.key] = WindowRun(s.key, opens, closes)
        self.last_opened[s.key] = opens
        self._emit(s, "open", now)
        if s.action == "boost" and load.mode is Mode.AUTO:
            later = load.state is State.BOOST and (
                load.forced_until is None or (closes is not None and load.forced_until >= closes)
            )
            if not later:
                self._ask(BoostRequest(s.load, closes, "forced_window"), views, plan)

    def _maybe_check(
        self, s: Schedule, views: dict[str, LoadFacts], plan: list[Request], now: float
    ) -> None:
        if self.started and now < self._quiet_until.get(s.key, -math.inf):
            return
        today = local_day(now, self.tz)
        done = self.checks_done.get(s.key)
        if done == today.isoformat():
            self._quiet_until[s.key] = self._next_at(s, now)
            return
        if not self.started and done is not None:  # pvopt was down: which checks did it miss?
            day = max(date.fromisoformat(done) + timedelta(days=1), today - timedelta(days=7))
            while day < today:
                if day.weekday() in s.days:
                    self._emit(s, "missed", check_on(s, day, self.tz), detail=day.isoformat())
                day += timedelta(days=1)
        if not (today.weekday() in s.days and now >= check_on(s, today, self.tz)):
            self._quiet_until[s.key] = self._next_at(s, now)
            return
        self.checks_done[s.key] = today.isoformat()
        self._quiet_until[s.key] = self._next_at(s, now)
        detail = self._boost_deficit(s, views, plan, now)
        self._emit(s, "check", now, detail=detail)

    def _next_at(self, s: Schedule, now: float) -> float:
        found = next_events(s, now, self.tz, 1)
        return found[0][0] if found else math.inf

    def _boost_deficit(
        self, s: Schedule, views: dict[str, LoadFacts], plan: list[Request], now: float
    ) -> str:
        load = views[s.load]
        today_wh = load.energy_today_wh
        two_days = load.energy_yesterday_wh + today_wh
        need_today = s.min_today_wh or 0.0
        need_two = s.min_two_days_wh if s.min_two_days_wh is not None else 0.0
        if today_wh >= need_today or two_days >= need_two:
            return f"ok: {today_wh:.0f} Wh today, {two_days:.0f} Wh in two days"
        if not load.can_be_forced or load.mode is not Mode.AUTO:
            return "deficit, but the load cannot be forced now"
        if self.heat is not None and self.heat.red_peak(now):
            return "deficit, but a Tempo red day's peak hours: no grid heating"
        hours = (need_today - today_wh) / load.spec.max_w
        until = now + hours * 3600.0
        if not (load.state is State.BOOST and (load.forced_until or 0) >= until):
            self._ask(BoostRequest(s.load, until, "deficit"), views, plan)
        return f"deficit: boost {hours * 60:.0f} min ({today_wh:.0f} Wh today)"

    # -- eco: the guarantee -------------------------------------------------------------------
    def _observe(self, name: str, m: LoadFacts, now: float) -> None:
        """Learn the tank's cooling rate while idle and its heat capacity while eco heats."""
        if m.thresholds is None or not m.temperature_known:
            return
        mem = self.memory.setdefault(name, LoadMemory())
        t = m.temperature_c
        assert t is not None
        if m.setpoint_w > 0:
            mem.samples.clear()
        elif not mem.samples or now - mem.samples[-1][0] >= 600:
            mem.samples.append((now, t))
            del mem.samples[:-13]  # two hours

    def cooling_k_per_h(self, name: str) -> float:
        mem = self.memory.get(name)
        if mem is None or len(mem.samples) < 4:  # under 30 min of idle history
            return DEFAULT_COOLING_K_PER_H
        steps = [
            (t0 - t1) / (b - a) * 3600.0
            for (a, t0), (b, t1) in zip(mem.samples, mem.samples[1:], strict=False)
        ]
        calm = sorted(x for x in steps if x >= 0)  # a draw is a jump: take the calm median
        return calm[len(calm) // 2] if calm else 0.0

    def standing_loss_k_per_h(self, name: str) -> float:
        """The tank's mean cooling while idle and not drawn, for the heating plan: the mean
        (a 0.1 K probe reads a slow tank as mostly still), kept while heating hides it."""
        mem = self.memory.setdefault(name, LoadMemory())
        calm = [
            (t0 - t1, b - a)
            for (a, t0), (b, t1) in zip(mem.samples, mem.samples[1:], strict=False)
            if -0.05 <= t0 - t1 < 1.0
        ]
        if len(calm) >= 6:  # an hour of idle history
            mem.loss_k_per_h = max(sum(d for d, _ in calm) / sum(s for _, s in calm) * 3600, 0.0)
        return mem.loss_k_per_h if mem.loss_k_per_h is not None else DEFAULT_COOLING_K_PER_H

    def heat_wh_per_k(self, m: LoadFacts) -> float:
        mem = self.memory.get(m.spec.name)
        if mem is not None and mem.heat_wh_per_k:
            return mem.heat_wh_per_k
        return self.tank_litres.get(m.spec.name, 300.0) * WH_PER_LITRE_K

    def _eco_requests(self, now: float, views: Mapping[str, LoadFacts]) -> list[EcoRequest]:
        by_key = {s.key: s for s in self.schedules}
        wanted: dict[str, EcoRequest] = {}
        for key, run in self.runs.items():
            s = by_key[key]
            m = views.get(s.load)
            if m is None or s.action != "eco" or not m.can_be_forced:
                continue
            if m.spec.min_energy_wh is not None and m.thresholds is None:
                if m.has_deficit:
                    run.triggered = True
                    wanted[s.load] = EcoRequest(s.load, run.closes_at, "deficit")
                continue
            if m.thresholds is None or m.temperature_c is None:
                continue
            if self._eco_heats(s, run, m, now, views):
                wanted[s.load] = EcoRequest(s.load, run.closes_at, "forced_window")
        return list(wanted.values())

    def _eco_heats(
        self, s: Schedule, run: WindowRun, m: LoadFacts, now: float, views: Mapping[str, LoadFacts]
    ) -> bool:
        th = m.thresholds
        t = m.temperature_c
        assert th is not None and t is not None
        mem = self.memory.setdefault(m.spec.name, LoadMemory())
        if self.seed_rule:  # the seed: heat at once at temp_min, up to temp_eco
            if t <= th.temp_min:
                run.triggered = run.heating = True
            if run.heating and t >= th.temp_eco:
                run.heating = False
            return run.heating
        left_s = (run.closes_at - now) if run.closes_at is not None else 0.0
        end_t = t - self.cooling_k_per_h(m.spec.name) * left_s / 3600.0
        self._plan(s, run, m, now, views)
        if run.planned and run.goal_c is not None:
            goal = run.goal_c  # heat only if the tank will be below it at the close
            run.triggered = run.triggered or end_t < goal
        else:
            goal = th.temp_eco
            if not run.triggered:
                run.triggered = t <= th.temp_min or end_t <= th.temp_min
        if not run.triggered:
            return False
        if run.reached:  # hold ≥ the goal until the window closes
            if t < goal + HOLD_BAND_K / 2:
                run.heating = True
            elif t >= goal + HOLD_BAND_K:
                run.heating = False
            return run.heating
        if t >= goal:
            run.reached, run.heating = True, False
            self._learn_capacity(mem, m, now, t)
            return False
        if not run.heating:
            need_s = (goal - t) * self.heat_wh_per_k(m) / m.spec.max_w * 3600.0
            if run.closes_at is None or left_s <= need_s * START_SAFETY + START_MARGIN_S:
                run.heating = True  # as late as still reaches the goal by the close
                mem.heat_start = (now, t)
        return run.heating

    def _tank(self, m: LoadFacts, views: Mapping[str, LoadFacts]) -> TankFacts | None:
        """The heating plan's view of a temperature-driven load with a fresh reading."""
        th = m.thresholds
        if th is None or not m.temperature_known or m.temperature_c is None:
            return None
        ahead = 0.0
        for other in views.values():  # priority order: the loads served before it
            if other.spec.name == m.spec.name:
                break
            if other.spec.enabled:
                ahead += other.spec.max_w
        return TankFacts(
            m.spec.name,
            m.temperature_c,
            th.temp_min,
            th.temp_max,
            m.spec.max_w,
            self.heat_wh_per_k(m),
            self.standing_loss_k_per_h(m.spec.name),
            ahead,
        )

    def _plan(
        self, s: Schedule, run: WindowRun, m: LoadFacts, now: float, views: Mapping[str, LoadFacts]
    ) -> None:
        """Set the window's goal from the heating plan, at most every `PLAN_EVERY_S`; without
        a plan (no fresh forecast, no draws learnt, a tariff window) today's rule holds."""
        if self.heat is None or run.closes_at is None:
            return
        if run.planned_at is not None and now - run.planned_at < PLAN_EVERY_S:
            return
        run.planned_at = now
        tank = self._tank(m, views)
        opens = [t for t, e in next_events(s, run.closes_at, self.tz, 2) if e == "open"]
        until = opens[0] if opens else run.closes_at + 86400.0
        goal = None if tank is None else self.heat.goal(now, run.closes_at, until, tank)
        before = (run.planned, run.goal_c)
        if goal is None:
            run.planned, reason = False, "no fresh forecast or no draws learnt: today's rule"
        else:
            run.planned, run.goal_c, reason = True, goal.temp_c, goal.reason
        if goal is None:
            note = PlanNote(now, None, reason)
        else:
            note = PlanNote(now, goal.temp_c, reason, goal.grid_wh, goal.steps)
        self.plans[m.spec.name] = note
        if not run.reason or _changed(before, (run.planned, run.goal_c)):
            self.plan_version += 1
            run.reason = reason
            self._emit(s, "plan", now, temperature_c=m.temperature_c, detail=reason)

    def plan_doc(self, tz: ZoneInfo) -> dict[str, Any]:
        """The heating plans as published (docs/topics.md): per load, the goal, its reason,
        the grid energy it takes and what it costs, and the tank's quarter hours ahead."""
        out: dict[str, Any] = {}
        tariff = self.heat.tariff if self.heat is not None else None
        for name, note in self.plans.items():
            price = None
            if tariff is not None and note.steps:
                first = datetime.fromtimestamp(note.steps[0].start - 1, tz)
                colour = self.heat.colour(first.timestamp()) if self.heat else None
                price = tariff.prices[tariff.key(first, colour)]
            out[name] = {
                "planned_at": datetime.fromtimestamp(note.at, tz).isoformat(timespec="seconds"),
                "goal_c": None if note.goal_c is None else round(note.goal_c, 1),
                "reason": note.reason,
                "grid_wh": round(note.grid_wh, 1),
                "grid_eur": None if price is None else round(note.grid_wh * price / 1000, 3),
                "slots": [
                    {
                        "start": datetime.fromtimestamp(st.start, tz).isoformat(timespec="minutes"),
                        "temp_c": round(st.temp_c, 1),
                        "sun_wh": round(st.sun_wh, 1),
                        "drawn": round(st.drawn, 3),
                    }
                    for st in note.steps
                ],
            }
        return out

    def plan_status(self, name: str, now: float) -> dict[str, Any] | None:
        """The heating plan of load `name` for the status: the forecast it plans with, the
        last goal and its reason; None without a plan."""
        if self.heat is None:
            return None
        f = self.heat.forecast
        note = self.plans.get(name)
        return {
            "forecast": None
            if f is None
            else {
                "source": f.source,
                "issued_at": f.issued_at,
                "fresh": f.is_fresh(now, self.heat.max_age_s),
            },
            "planned_at": None if note is None else note.at,
            "goal_c": None if note is None or note.goal_c is None else round(note.goal_c, 1),
            "reason": None if note is None else note.reason,
        }

    def _learn_capacity(self, mem: LoadMemory, m: LoadFacts, now: float, t: float) -> None:
        """Wh per K actually seen while eco heated at full power, for tomorrow's start time."""
        if mem.heat_start is None:
            return
        t0_at, t0 = mem.heat_start
        mem.heat_start = None
        if t - t0 >= 2.0 and now > t0_at:
            c = m.spec.max_w * (now - t0_at) / 3600.0 / (t - t0)
            if 20.0 <= c <= 2000.0:
                mem.heat_wh_per_k = c
