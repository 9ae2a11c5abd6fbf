"""One `transitions` state machine per load: off / eco / solar / boost, auto or manual (DESIGN §4).

The machine owns everything that must survive a restart (state, mode, thresholds, deadline,
energy counters, the actuator setpoint) and turns events — a temperature, a command, a tick —
into transitions. Time always comes in as `now` (epoch seconds); nothing here reads a clock.
`TRANSITIONS` is the whole rule: which event moves a load where, under which guards, and with
which reason; the Python below only supplies the predicates the guards name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from transitions import EventData, Machine, Transition

from machines.model import FORCED_STATES, Kind, LoadSpec, Mode, State, Thresholds

OFF, ECO, SOLAR, BOOST = State.OFF, State.ECO, State.SOLAR, State.BOOST


def eco_reason(m: LoadMachine) -> str:
    """The reason the planner gave with its eco request (forced_window, deficit)."""
    return m.eco_reason or "eco"


def force_reason(m: LoadMachine) -> str:
    """Who forced the boost: manual, forced_window (a schedule), deficit (a daily check)."""
    return m.force_reason


# Reason a row gives its destination (or, for a row that keeps the state, the state it keeps):
# a code, a function of the machine, or None to keep the current reason.
Reason = str | Callable[["LoadMachine"], str] | None

# The whole life of a load. Events: `tick` (every regulation step, with `now` and `meter_stale`),
# `forced`, `switched_off`, `released` (commands and schedules, see the methods below). For one
# event and one source state the rows are tried top to bottom and the first whose `conditions`
# all hold and `unless` all fail wins; the `tick` rows of each state are written to exclude each
# other, so each row reads alone. `dest: None` keeps the state and only sets the reason; `name`
# is the move the transition log keeps (DESIGN §4). `update()` repeats `tick` until a row keeps
# the state: an ended boost may go to eco in the same tick.
_GATES = ["is_disabled", "is_manual"]  # what precedes every automatic row
# fmt: off
TRANSITIONS: list[dict[str, Any]] = [
    # disabled in the config: off, whatever it was doing
    {"trigger": "tick", "source": [ECO, SOLAR, BOOST], "dest": OFF, "name": "disable",
     "conditions": "is_disabled",
     "reason": "disabled"},
    {"trigger": "tick", "source": OFF, "dest": None,
     "conditions": "is_disabled",
     "reason": "disabled"},
    # boost: until its deadline or temp_max, in auto and manual mode alike; then back to auto
    {"trigger": "tick", "source": BOOST, "dest": OFF, "name": "force_ended_satisfied",
     "conditions": ["boost_expired", "meter_is_stale"], "unless": "is_disabled",
     "reason": "deadline", "after": "_end_boost"},
    {"trigger": "tick", "source": BOOST, "dest": OFF, "name": "force_ended_satisfied",
     "conditions": ["boost_expired", "reached_goal"], "unless": ["is_disabled", "meter_is_stale"],
     "reason": "deadline", "after": "_end_boost"},
    {"trigger": "tick", "source": BOOST, "dest": SOLAR, "name": "force_ended",
     "conditions": "boost_expired", "unless": ["is_disabled", "meter_is_stale", "reached_goal"],
     "reason": "deadline", "after": "_end_boost"},
    {"trigger": "tick", "source": BOOST, "dest": OFF, "name": "force_ended_satisfied",
     "conditions": "is_hot", "unless": ["is_disabled", "boost_expired"],
     "reason": "satisfied", "after": "_end_boost"},
    {"trigger": "tick", "source": BOOST, "dest": None,
     "unless": ["is_disabled", "boost_expired", "is_hot"],
     "reason": None},  # keeps the reason it was forced with
    # manual (OFF command, or restored so): stays where the command put it
    {"trigger": "tick", "source": [OFF, ECO, SOLAR], "dest": None,
     "conditions": "is_manual", "unless": "is_disabled",
     "reason": "manual"},
    # eco: a schedule's guarantee is at risk (DESIGN §6); eco ends when the request does
    {"trigger": "tick", "source": [OFF, SOLAR], "dest": ECO, "name": "guarantee_at_risk",
     "conditions": "eco_requested", "unless": _GATES,
     "reason": eco_reason},
    {"trigger": "tick", "source": ECO, "dest": None,
     "conditions": "eco_requested", "unless": _GATES,
     "reason": eco_reason},
    {"trigger": "tick", "source": ECO, "dest": OFF, "name": "guarantee_met_satisfied",
     "conditions": "meter_is_stale", "unless": [*_GATES, "eco_requested"],
     "reason": "guarantee_met"},
    {"trigger": "tick", "source": ECO, "dest": OFF, "name": "guarantee_met_satisfied",
     "conditions": "is_satisfied", "unless": [*_GATES, "eco_requested", "meter_is_stale"],
     "reason": "guarantee_met"},
    {"trigger": "tick", "source": ECO, "dest": SOLAR, "name": "guarantee_met",
     "unless": [*_GATES, "eco_requested", "meter_is_stale", "is_satisfied"],
     "reason": "guarantee_met"},
    # solar / off: shed without fresh meter data, off once satisfied, else on surplus
    {"trigger": "tick", "source": SOLAR, "dest": OFF, "name": "meter_lost",
     "conditions": "meter_is_stale", "unless": [*_GATES, "eco_requested"],
     "reason": "meter_stale"},
    {"trigger": "tick", "source": OFF, "dest": None,
     "conditions": "meter_is_stale", "unless": [*_GATES, "eco_requested"],
     "reason": "meter_stale"},
    {"trigger": "tick", "source": SOLAR, "dest": OFF, "name": "goal_reached",
     "conditions": "is_satisfied", "unless": [*_GATES, "eco_requested", "meter_is_stale"],
     "reason": "satisfied"},
    {"trigger": "tick", "source": OFF, "dest": None,
     "conditions": "is_satisfied", "unless": [*_GATES, "eco_requested", "meter_is_stale"],
     "reason": "satisfied"},
    {"trigger": "tick", "source": OFF, "dest": SOLAR, "name": "needs_surplus",
     "conditions": "temperature_unknown",
     "unless": [*_GATES, "eco_requested", "meter_is_stale", "is_satisfied"],
     "reason": "temp_unknown"},
    {"trigger": "tick", "source": OFF, "dest": SOLAR, "name": "needs_surplus",
     "unless": [*_GATES, "eco_requested", "meter_is_stale", "is_satisfied", "temperature_unknown"],
     "reason": "surplus"},
    {"trigger": "tick", "source": SOLAR, "dest": None,
     "conditions": "temperature_unknown",
     "unless": [*_GATES, "eco_requested", "meter_is_stale", "is_satisfied"],
     "reason": "temp_unknown"},
    {"trigger": "tick", "source": SOLAR, "dest": None,
     "unless": [*_GATES, "eco_requested", "meter_is_stale", "is_satisfied", "temperature_unknown"],
     "reason": "surplus"},
    # commands and schedules: ON / force / a schedule's boost, manual OFF (until AUTO or ON)
    {"trigger": "forced", "source": [OFF, ECO, SOLAR, BOOST], "dest": BOOST, "name": "forced",
     "reason": force_reason},
    {"trigger": "switched_off", "source": [OFF, ECO, SOLAR, BOOST], "dest": OFF,
     "name": "switched_off",
     "reason": "manual"},
    # AUTO / unforce / a tariff window's close: a boost ends at once
    {"trigger": "released", "source": BOOST, "dest": OFF, "name": "force_ended_satisfied",
     "conditions": "meter_is_stale",
     "reason": "auto"},
    {"trigger": "released", "source": BOOST, "dest": OFF, "name": "force_ended_satisfied",
     "conditions": "is_satisfied", "unless": "meter_is_stale",
     "reason": "auto"},
    {"trigger": "released", "source": BOOST, "dest": SOLAR, "name": "force_ended",
     "unless": ["meter_is_stale", "is_satisfied"],
     "reason": "auto"},
]
# fmt: on
MAX_MOVES_PER_TICK = 2  # boost → solar → eco is the longest chain the table allows

TEMP_RANGE = (-20.0, 110.0)
PROBE_ERROR_CODES = (85.0, -127.0)  # DS18B20: power-up value and read error
TEMP_STALE_S = 300.0


class CommandError(ValueError):
    """A command or threshold the machine refuses; nothing was changed."""


def check_temperature(value: float) -> float:
    """Refuse probe error codes and values no water heater can have."""
    if not math.isfinite(value) or not TEMP_RANGE[0] <= value <= TEMP_RANGE[1]:
        raise CommandError(f"temperature {value} °C outside {TEMP_RANGE[0]}..{TEMP_RANGE[1]}")
    if value in PROBE_ERROR_CODES:
        raise CommandError(f"temperature {value} °C is a DS18B20 error code")
    return value


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    load: str
    source: str
    dest: str
    trigger: str
    reason: str
    at: float


class Rule(Transition):
    """A row of `TRANSITIONS`: a transition that also names its move and gives its reason."""

    def __init__(
        self,
        source: str,
        dest: str | None,
        conditions: Any = None,
        unless: Any = None,
        before: Any = None,
        after: Any = None,
        prepare: Any = None,
        *,
        name: str | None = None,
        reason: Reason = None,
    ) -> None:
        # dest None is an internal transition at run time; transitions' stubs only say `str`
        super().__init__(source, cast(str, dest), conditions, unless, before, after, prepare)
        self.name = name
        self.reason = reason

    def _eval_conditions(self, event_data: EventData) -> bool:
        """The guards, called by name on the model (`transitions`' own check logs each one)."""
        model = event_data.model
        for cond in self.conditions:
            check = cond.func if callable(cond.func) else getattr(model, cond.func)
            if bool(check(event_data)) is not cond.target:
                return False
        return True

    def execute(self, event_data: EventData) -> bool:
        """Reject a row whose guards fail before `transitions`' bookkeeping: a tick tries up to
        seven rows per load (rows have no `prepare`, which would run first)."""
        if not self._eval_conditions(event_data):
            return False
        return bool(super().execute(event_data))  # checks them again, then moves


class RuleMachine(Machine):
    """A `transitions.Machine` whose rows are `Rule`s (they take `name` and `reason`)."""

    transition_cls = Rule


@dataclass(frozen=True, slots=True)
class LoadFacts:
    """A load as the schedules planner reads it at one tick: a copy, so planning cannot move
    the machine; the planner asks, the controller applies."""

    spec: LoadSpec
    state: State
    mode: Mode
    forced_until: float | None
    thresholds: Thresholds | None
    temperature_c: float | None
    temperature_known: bool  # a reading fresher than the staleness limit
    can_be_forced: bool
    has_deficit: bool
    setpoint_w: float
    energy_today_wh: float
    energy_yesterday_wh: float

    @property
    def is_forced(self) -> bool:
        return self.state in FORCED_STATES


class LoadMachine:
    """The state of one load and the predicates its rules name; `transitions` holds the state."""

    state: State
    trigger: Callable[..., bool]  # bound by `transitions`: fire an event by name

    def __init__(
        self, spec: LoadSpec, tz: ZoneInfo, now: float, temp_stale_s: float = TEMP_STALE_S
    ):
        self.spec = spec
        self.tz = tz
        self.temp_stale_s = temp_stale_s
        self.mode = Mode.AUTO
        self.reason = "starting"
        self.thresholds: Thresholds | None = spec.thresholds
        self.config_thresholds: Thresholds | None = spec.thresholds  # to spot a config edit
        self.forced_until: float | None = None
        self.forced_w: float | None = None
        self.force_reason = "manual"
        self.eco_reason: str | None = None  # requested by the schedules: a guarantee at risk
        self.eco_until: float | None = None  # ... until its window closes (None: open-ended)
        self.satisfied = False
        self.temperature_c: float | None = None
        self.temperature_at: float | None = None
        self.period_index = self._period_index(now)
        self.period_wh = 0.0
        self.prev_period_wh = 0.0
        self.day_index = self._day_index(now)
        self.energy_today_wh = 0.0
        self.energy_yesterday_wh = 0.0
        self.energy_total_wh = 0.0
        self.setpoint_w = 0.0
        self.switched_at: float | None = None
        self.records: list[TransitionRecord] = []
        initial = SOLAR if spec.enabled else OFF
        self.machine = RuleMachine(
            model=self,
            states=State,
            transitions=TRANSITIONS,
            initial=initial,
            auto_transitions=False,
            send_event=True,
            after_state_change="_settled",
        )

    # -- transitions plumbing ---------------------------------------------------------------
    def _settled(self, event: EventData) -> None:
        """Set the reason the row gives and log the move (rows that keep the state log none)."""
        rule = event.transition
        assert isinstance(rule, Rule)
        reason = rule.reason(self) if callable(rule.reason) else rule.reason
        if reason is not None:
            self.reason = reason
        if rule.dest is None:
            return
        self.records.append(
            TransitionRecord(
                self.spec.name,
                State[rule.source].value,
                State[rule.dest].value,
                rule.name or event.event.name,
                self.reason,
                event.kwargs["now"],
            )
        )

    def _end_boost(self, event: EventData) -> None:
        """A boost that ends by itself hands the load back to the automatic rules."""
        self.mode = Mode.AUTO
        self.forced_until = self.forced_w = None
        self.satisfied = self.satisfied or self._is_hot(event.kwargs["now"])

    # -- time bookkeeping -------------------------------------------------------------------
    def _local_seconds(self, now: float) -> float:
        offset = datetime.fromtimestamp(now, self.tz).utcoffset()
        return now + (offset.total_seconds() if offset else 0.0)

    def _day_index(self, now: float, local: float | None = None) -> int:
        return int((self._local_seconds(now) if local is None else local) // 86400)

    def _period_index(self, now: float, local: float | None = None) -> int:
        period = self.spec.period_s
        if 86400 % period != 0:
            return int(now // period)  # periods that do not divide a day run on the epoch
        return int((self._local_seconds(now) if local is None else local) // period)

    def _indices(self, now: float) -> tuple[int, int]:
        """(local day, period) of `now`, with one time-zone lookup: this runs every tick."""
        local = self._local_seconds(now)
        return self._day_index(now, local), self._period_index(now, local)

    def roll_counters(self, now: float) -> None:
        """Start a new period / local day when `now` crossed a boundary."""
        day, period = self._indices(now)
        if period != self.period_index:
            self.prev_period_wh = self.period_wh if period == self.period_index + 1 else 0.0
            self.period_wh = 0.0
            self.period_index = period
        if day != self.day_index:
            self.energy_yesterday_wh = self.energy_today_wh if day == self.day_index + 1 else 0.0
            self.energy_today_wh = 0.0
            self.day_index = day

    def add_energy(self, wh: float, now: float) -> None:
        """Count energy the load took up to `now` (solar and grid alike)."""
        self.roll_counters(now)
        self._count(wh)

    def add_power(self, power_w: float, t0: float, t1: float) -> None:
        """Count `power_w` drawn over [t0, t1], each part in the local day and the period it
        fell in: a tick that spans midnight splits its energy there."""
        while t0 < t1:
            if self._indices(t1) == (self.day_index, self.period_index):
                cut = t1  # no boundary since the counters last rolled: one time-zone lookup
            else:
                cut = self._next_boundary(t0, t1)
                self.roll_counters(t0)
            self._count(power_w * (cut - t0) / 3600.0)
            t0 = cut

    def _count(self, wh: float) -> None:
        self.period_wh += wh
        self.energy_today_wh += wh
        self.energy_total_wh += wh

    def _next_boundary(self, t0: float, t1: float) -> float:
        """The first day or period boundary in (t0, t1], else t1 (to the millisecond)."""
        start = self._indices(t0)
        if self._indices(t1) == start:
            return t1
        lo, hi = t0, t1
        while hi - lo > 1e-3:
            mid = (lo + hi) / 2.0
            lo, hi = (mid, hi) if self._indices(mid) == start else (lo, mid)
        return hi

    # -- predicates ----------------------------------------------------------------------------
    def temperature_known(self, now: float) -> bool:
        return self.temperature_at is not None and now - self.temperature_at <= self.temp_stale_s

    def has_deficit(self) -> bool:
        """The seed's rule: the previous and the current period both below min_energy."""
        goal = self.spec.min_energy_wh
        return goal is not None and self.prev_period_wh < goal and self.period_wh < goal

    def tops_up(self, now: float) -> bool:
        """Satisfied but able to take surplus nobody else takes (DESIGN §4)."""
        if not self.satisfied or self.mode is Mode.MANUAL or not self.spec.enabled:
            return False
        if self.thresholds is None:
            return True
        t = self.temperature_c
        return self.temperature_known(now) and t is not None and t < self.thresholds.temp_max

    def _is_hot(self, now: float) -> bool:
        t = self.temperature_c
        th = self.thresholds
        return th is not None and self.temperature_known(now) and t is not None and t >= th.temp_max

    def _update_satisfied(self, now: float) -> None:
        th = self.thresholds
        if th is not None and self.temperature_known(now):
            t = self.temperature_c
            assert t is not None
            if t >= th.temp_max:
                self.satisfied = True
            elif t < th.temp_sol_min:
                self.satisfied = False
        elif th is not None:
            self.satisfied = False  # unknown temperature: the heater's thermostat protects it
        if self.spec.min_energy_wh is not None:
            self.satisfied = self.period_wh >= self.spec.min_energy_wh

    # -- guards: the predicates `TRANSITIONS` names (events carry `now`, ticks `meter_stale`) --
    def is_disabled(self, event: EventData) -> bool:
        return not self.spec.enabled

    def is_manual(self, event: EventData) -> bool:
        return self.mode is Mode.MANUAL

    def is_satisfied(self, event: EventData) -> bool:
        """temp_max reached (until below temp_sol_min), or the period's min_energy reached."""
        return self.satisfied

    def reached_goal(self, event: EventData) -> bool:
        """Satisfied, or at temp_max even when a min_energy load's period is not done."""
        return self.satisfied or self._is_hot(event.kwargs["now"])

    def is_hot(self, event: EventData) -> bool:
        """At temp_max by a fresh reading: a boost stops heating."""
        return self._is_hot(event.kwargs["now"])

    def meter_is_stale(self, event: EventData) -> bool:
        return bool(event.kwargs["meter_stale"])

    def eco_requested(self, event: EventData) -> bool:
        """The schedules asked for grid heating, its window is open and the load may be forced."""
        now: float = event.kwargs["now"]
        return (
            self.eco_reason is not None
            and (self.eco_until is None or now < self.eco_until)
            and self.can_be_forced(now)
        )

    def boost_expired(self, event: EventData) -> bool:
        return self.forced_until is not None and event.kwargs["now"] >= self.forced_until

    def temperature_unknown(self, event: EventData) -> bool:
        """A temperature-driven load without a fresh reading runs on surplus, never forced."""
        return self.is_temp_driven and not self.temperature_known(event.kwargs["now"])

    # -- inputs -----------------------------------------------------------------------------
    def set_temperature(self, value: float, now: float) -> None:
        self.temperature_c = check_temperature(value)
        self.temperature_at = now

    def set_threshold(self, name: str, value: float) -> None:
        """Change one threshold (MIN/MAX/ECO commands); refused if it breaks the order."""
        self.set_thresholds({name: value})

    def set_thresholds(self, values: Mapping[str, float]) -> None:
        """Change several thresholds at once, checked together: all or none."""
        if self.thresholds is None:
            raise CommandError(f"{self.spec.name} has no temperature thresholds")
        unknown = set(values) - {"temp_min", "temp_eco", "temp_sol_min", "temp_max"}
        if unknown:
            raise CommandError(f"unknown threshold(s) {sorted(unknown)}")
        candidate = replace(self.thresholds, **{k: float(v) for k, v in values.items()})
        if not candidate.is_ordered():
            raise CommandError(
                f"{values} breaks temp_min < temp_eco ≤ temp_sol_min < temp_max "
                f"within -20..110 °C ({asdict(candidate)})"
            )
        self.thresholds = candidate

    def force(
        self,
        now: float,
        *,
        until: float | None,
        power_w: float | None,
        reason: str = "manual",
        manual: bool = True,
    ) -> None:
        """Boost at full (or `power_w`) power until `until` (None: until told otherwise)."""
        if power_w is not None and not 0 < power_w <= self.spec.max_w:
            raise CommandError(f"power {power_w} W outside 0..{self.spec.max_w:g} W")
        if manual:
            self.mode = Mode.MANUAL
        self.forced_until = until
        self.forced_w = power_w
        self.force_reason = reason
        self.trigger("forced", now=now)

    def switch_off(self, now: float) -> None:
        """Manual OFF: stays off until AUTO or ON."""
        self.mode = Mode.MANUAL
        self.forced_until = self.forced_w = None
        self.trigger("switched_off", now=now)

    def set_auto(self, now: float, *, meter_stale: bool = False) -> None:
        """AUTO / unforce: back to the automatic rules; a boost ends at once."""
        self.mode = Mode.AUTO
        self.forced_until = self.forced_w = None
        if self.state is BOOST:
            self.trigger("released", now=now, meter_stale=meter_stale)
        self.update(now, meter_stale=meter_stale)

    def request_eco(self, reason: str, until: float | None) -> None:
        """The schedules' guarantee is at risk: heat from the grid at the next `update()`."""
        self.eco_reason = reason
        self.eco_until = until

    def drop_eco(self) -> None:
        """No guarantee at risk (any more): the next `update()` leaves eco."""
        self.eco_reason = self.eco_until = None

    # -- the per-tick rule ------------------------------------------------------------------
    def update(self, now: float, *, meter_stale: bool) -> None:
        """Move to the state `TRANSITIONS` gives for `now` (DESIGN §4)."""
        self.roll_counters(now)
        self._update_satisfied(now)
        for _ in range(MAX_MOVES_PER_TICK + 1):
            before = self.state
            self.trigger("tick", now=now, meter_stale=meter_stale)
            if self.state is before:  # a row that keeps the state: settled
                return
        raise RuntimeError(f"{self.spec.name}: TRANSITIONS do not settle ({self.state})")

    @property
    def is_temp_driven(self) -> bool:
        return self.thresholds is not None

    def can_be_forced(self, now: float) -> bool:
        """Grid heating needs a known temperature when the load is temperature-driven."""
        return self.spec.enabled and (not self.is_temp_driven or self.temperature_known(now))

    @property
    def is_forced(self) -> bool:
        return self.state in FORCED_STATES

    def facts(self, now: float) -> LoadFacts:
        """What the schedules planner may read of this load at `now`."""
        return LoadFacts(
            spec=self.spec,
            state=self.state,
            mode=self.mode,
            forced_until=self.forced_until,
            thresholds=self.thresholds,
            temperature_c=self.temperature_c,
            temperature_known=self.temperature_known(now),
            can_be_forced=self.can_be_forced(now),
            has_deficit=self.has_deficit(),
            setpoint_w=self.setpoint_w,
            energy_today_wh=self.energy_today_wh,
            energy_yesterday_wh=self.energy_yesterday_wh,
        )

    # -- persistence ------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Everything that must survive a restart, as plain JSON-able values."""
        return {
            "name": self.spec.name,
            "state": self.state.value,
            "mode": self.mode.value,
            "reason": self.reason,
            "thresholds": asdict(self.thresholds) if self.thresholds else None,
            "config_thresholds": asdict(self.config_thresholds) if self.config_thresholds else None,
            "forced_until": self.forced_until,
            "forced_w": self.forced_w,
            "force_reason": self.force_reason,
            "eco_reason": self.eco_reason,
            "eco_until": self.eco_until,
            "satisfied": self.satisfied,
            "temperature_c": self.temperature_c,
            "temperature_at": self.temperature_at,
            "period_index": self.period_index,
            "period_wh": self.period_wh,
            "prev_period_wh": self.prev_period_wh,
            "day_index": self.day_index,
            "energy_today_wh": self.energy_today_wh,
            "energy_yesterday_wh": self.energy_yesterday_wh,
            "energy_total_wh": self.energy_total_wh,
            "setpoint_w": self.setpoint_w,
            "switched_at": self.switched_at,
        }

    @classmethod
    def restore(
        cls,
        spec: LoadSpec,
        tz: ZoneInfo,
        data: dict[str, Any],
        now: float,
        temp_stale_s: float = TEMP_STALE_S,
    ) -> LoadMachine:
        """Rebuild a machine from `dump()`; a threshold set by command survives unless the
        config file's own value changed since (DESIGN §7)."""
        m = cls(spec, tz, now, temp_stale_s)
        m.machine.set_state(State(data["state"]))
        m.mode = Mode(data["mode"])
        m.reason = data.get("reason", "restored")
        saved_cfg = data.get("config_thresholds")
        saved = data.get("thresholds")
        if spec.thresholds is not None and saved is not None:
            merged = asdict(spec.thresholds)
            for key, value in saved.items():
                if saved_cfg is None or saved_cfg.get(key) == merged[key]:
                    merged[key] = value
            candidate = Thresholds(**merged)
            m.thresholds = candidate if candidate.is_ordered() else spec.thresholds
        for key in (
            "forced_until",
            "forced_w",
            "force_reason",
            "eco_reason",
            "eco_until",
            "satisfied",
            "temperature_c",
            "temperature_at",
            "period_index",
            "period_wh",
            "prev_period_wh",
            "day_index",
            "energy_today_wh",
            "energy_yesterday_wh",
            "energy_total_wh",
            "setpoint_w",
            "switched_at",
        ):
            if key in data:
                setattr(m, key, data[key])
        if spec.kind is Kind.RELAY and m.setpoint_w > 0:
            m.setpoint_w = spec.max_w
        m.roll_counters(now)
        return m
