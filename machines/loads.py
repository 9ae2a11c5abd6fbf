"""One `transitions` state machine per load: off / eco / solar / boost, auto or manual
(docs/states.md).

The machine owns everything that must survive a restart (state, mode, thresholds, deadline,
energy counters, the actuator setpoint) and turns events — a temperature, a command, a tick —
into moves. Time always comes in as `now` (epoch seconds); nothing here reads a clock.
`TICK` is the whole automatic rule and `RELEASE` what AUTO does to a boost; commands move the
machine directly (`forced`, `switched_off`). `transitions` holds the state and checks that each
move leaves from a state the rule allows; the Python below only supplies the guards it names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from transitions import EventData, Machine

from machines.device import DeviceHealth
from machines.model import FORCED_STATES, Kind, LoadSpec, Mode, State, Thresholds
from machines.thermostat import ThermostatWatch
from machines.value import value

OFF, ECO, SOLAR, BOOST = State.OFF, State.ECO, State.SOLAR, State.BOOST
ANY = frozenset(State)


def eco_reason(m: LoadMachine) -> str:
    """The reason the planner gave with its eco request (forced_window, deficit)."""
    return m.eco_reason or "eco"


def device_reason(m: LoadMachine) -> str:
    """Why its device cannot be used: offline, or not following its commands."""
    return "device_offline" if m.device.offline else "device_not_following"


# Reason a row gives: a code, a function of the machine, or None to keep the current reason.
Reason = str | Callable[["LoadMachine"], str] | None


@value
class Row:
    """From a state of `source`, when every guard of `when` holds: go to `dest` by `move`
    (already there: stay) with `reason`. `dest` None stays whatever the state."""

    source: frozenset[State]
    when: tuple[str, ...]
    dest: State | None
    move: str = ""  # the event `transitions` fires and the transition log keeps
    reason: Reason = None
    ends_boost: bool = False  # the load goes back to the automatic rules

    @property
    def label(self) -> str:
        return f"{self.move or 'stay'} when {' and '.join(self.when) or 'otherwise'}"


Guard = Callable[["LoadMachine", float, bool], bool]


class Table:
    """Rows tried in order, the first that holds wins; indexed by source state on first use,
    so a tick reads only its own state's rows."""

    def __init__(self, *rows: tuple[Any, ...]) -> None:
        self.rows = tuple(Row(frozenset(r[0]), *r[1:]) for r in rows)
        self._by_state: tuple[tuple[State, tuple[tuple[Row, tuple[Guard, ...]], ...]], ...] = ()

    def first(self, m: LoadMachine, now: float, meter_stale: bool) -> Row:
        """The row that decides for `m`'s state at `now`."""
        state = m.state
        for source, rows in self._by_state or self.index():
            if source is state:  # identity over four states: cheaper than an Enum's hash
                for row, guards in rows:
                    for guard in guards:
                        if not guard(m, now, meter_stale):
                            break
                    else:
                        return row
        raise RuntimeError(f"{m.spec.name}: no row for {state.value}")

    def index(self) -> tuple[tuple[State, tuple[tuple[Row, tuple[Guard, ...]], ...]], ...]:
        def guards(row: Row) -> tuple[Guard, ...]:
            return tuple(getattr(LoadMachine, f"guard_{name}") for name in row.when)

        self._by_state = tuple(
            (state, tuple((row, guards(row)) for row in self.rows if state in row.source))
            for state in State
        )
        return self._by_state


# The rule of a tick. For the machine's state, the FIRST row whose guards all hold decides;
# `update()` applies rows until one keeps the state (an ended boost may reach eco in the same
# tick). The guards are `LoadMachine.guard_*` methods of (now, meter_stale).
_AUTO = {OFF, ECO, SOLAR}
_IDLE = {OFF, SOLAR}  # what is left once eco has decided
# fmt: off
TICK = Table(
    # source  when                         dest   move                       reason
    (ANY,     ("disabled",),               OFF,   "disable",                 "disabled"),
    # its device said it is offline, or does not do what it is told (machines/device.py)
    ({BOOST}, ("device_unusable",),        OFF,   "device_lost",             device_reason, True),
    (_AUTO,   ("device_unusable",),        OFF,   "device_lost",             device_reason),
    # it draws nothing while commanded: its own thermostat cut (machines/thermostat.py)
    ({BOOST}, ("thermostat_cut",),         OFF,   "cut_off",                 "thermostat_cut", True),  # noqa: E501
    (_AUTO,   ("thermostat_cut",),         OFF,   "cut_off",                 "thermostat_cut"),
    # a boost runs to its deadline or temp_max, in auto and manual mode alike
    ({BOOST}, ("expired", "meter_stale"),  OFF,   "force_ended_satisfied",   "deadline", True),
    ({BOOST}, ("expired", "reached_goal"), OFF,   "force_ended_satisfied",   "deadline", True),
    ({BOOST}, ("expired",),                SOLAR, "force_ended",             "deadline", True),
    ({BOOST}, ("hot",),                    OFF,   "force_ended_satisfied",   "satisfied", True),
    ({BOOST}, (),                          None),  # keeps the reason it was forced with
    # manual (an OFF command, or restored so): stays where the command put it
    (_AUTO,   ("manual",),                 None,  "",                        "manual"),
    # eco: a schedule's guarantee is at risk (docs/schedules.md); ends with the request
    (_AUTO,   ("eco_requested",),          ECO,   "guarantee_at_risk",       eco_reason),
    ({ECO},   ("meter_stale",),            OFF,   "guarantee_met_satisfied", "guarantee_met"),
    ({ECO},   ("satisfied",),              OFF,   "guarantee_met_satisfied", "guarantee_met"),
    ({ECO},   (),                          SOLAR, "guarantee_met",           "guarantee_met"),
    # solar / off: shed without fresh meter data, off once satisfied, else on surplus
    (_IDLE,   ("meter_stale",),            OFF,   "meter_lost",              "meter_stale"),
    (_IDLE,   ("satisfied",),              OFF,   "goal_reached",            "satisfied"),
    (_IDLE,   ("temperature_unknown",),    SOLAR, "needs_surplus",           "temp_unknown"),
    (_IDLE,   (),                          SOLAR, "needs_surplus",           "surplus"),
)
# AUTO, unforce, a tariff window's close: a boost ends at once
RELEASE = Table(
    ({BOOST}, ("meter_stale",),            OFF,   "force_ended_satisfied",   "auto"),
    ({BOOST}, ("satisfied",),              OFF,   "force_ended_satisfied",   "auto"),
    ({BOOST}, (),                          SOLAR, "force_ended",             "auto"),
)
# fmt: on
# Commands, whatever the state: ON / force / a schedule's boost; a manual OFF.
COMMAND_MOVES = {"forced": BOOST, "switched_off": OFF}


def _graph(*tables: Table) -> list[dict[str, Any]]:
    """The moves `transitions` allows, read off the tables: each move from where it may leave."""
    sources: dict[tuple[str, State], set[State]] = {}
    for row in (r for table in tables for r in table.rows):
        if row.dest is not None:
            sources.setdefault((row.move, row.dest), set()).update(row.source - {row.dest})
    moves = [
        {"trigger": move, "source": sorted(src, key=list(State).index), "dest": dest}
        for (move, dest), src in sources.items()
    ]
    return moves + [
        {"trigger": move, "source": list(State), "dest": dest}
        for move, dest in COMMAND_MOVES.items()
    ]


MOVES = _graph(TICK, RELEASE)
MAX_MOVES_PER_TICK = 2  # boost → solar → eco is the longest chain the table allows

# The machine's plain fields a restart restores as they were (`dump()` adds the state, the mode,
# the reason and the thresholds, which `restore()` checks before taking them).
PERSISTED = (
    "forced_until",
    "forced_w",
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
)

TEMP_RANGE = (-20.0, 110.0)
PROBE_ERROR_CODES = (85.0, -127.0)  # DS18B20: power-up value and read error
TEMP_STALE_S = 300.0
TZ_QUANTUM_S = 900.0


class CommandError(ValueError):
    """A command or threshold the machine refuses; nothing was changed."""


def check_temperature(value: float) -> float:
    """Refuse probe error codes and values no water heater can have."""
    if not math.isfinite(value) or not TEMP_RANGE[0] <= value <= TEMP_RANGE[1]:
        raise CommandError(f"temperature {value} °C outside {TEMP_RANGE[0]}..{TEMP_RANGE[1]}")
    if value in PROBE_ERROR_CODES:
        raise CommandError(f"temperature {value} °C is a DS18B20 error code")
    return value


@value
class TransitionRecord:
    load: str
    source: str
    dest: str
    trigger: str
    reason: str
    at: float


@value
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
    energy_total_wh: float = 0.0  # never resets: the heating plan's energy balance

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
        self._tz_bucket = -1  # the quarter hour of UTC `_tz_offset` holds
        self._tz_offset = 0.0
        self._indices_at = math.nan  # `_indices()` of the last time asked (twice a tick)
        self._indices_of = (0, 0)
        self.mode = Mode.AUTO
        self.reason = "starting"
        self.thresholds: Thresholds | None = spec.thresholds
        self.config_thresholds: Thresholds | None = spec.thresholds  # to spot a config edit
        self.forced_until: float | None = None
        self.forced_w: float | None = None
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
        self.device = DeviceHealth()  # what its device reported (not persisted)
        self.thermostat = ThermostatWatch(spec.probes_per_hour)  # (not persisted either)
        self.machine = Machine(
            model=self,
            states=State,
            transitions=MOVES,
            initial=SOLAR if spec.enabled else OFF,
            auto_transitions=False,
            send_event=True,
            after_state_change="_log_move",
        )

    # -- the rule ---------------------------------------------------------------------------
    def _log_move(self, event: EventData) -> None:
        """Keep each move (its reason is set before it fires) for the transition log."""
        t = event.transition
        assert t is not None and t.dest is not None
        self.records.append(
            TransitionRecord(
                self.spec.name,
                State[t.source].value,
                State[t.dest].value,
                event.event.name,
                self.reason,
                event.kwargs["now"],
            )
        )

    def _apply(self, table: Table, now: float, meter_stale: bool) -> bool:
        """Take the row of `table` that holds for this state; True when it moved."""
        row = table.first(self, now, meter_stale)
        reason = row.reason(self) if callable(row.reason) else row.reason
        if reason is not None:
            self.reason = reason
        if row.dest is None or row.dest is self.state:
            return False
        self.trigger(row.move, now=now)
        if row.ends_boost:
            self.mode = Mode.AUTO
            self.forced_until = self.forced_w = None
            self.satisfied = self.satisfied or self._is_hot(now)
        return True

    # -- time bookkeeping -------------------------------------------------------------------
    def _local_seconds(self, now: float) -> float:
        """`now` on the local wall clock. This runs each tick: a quarter hour of UTC whose two
        ends share one offset keeps it (a zone changes offset at most once in 15 minutes)."""
        bucket = int(now // TZ_QUANTUM_S)
        if bucket != self._tz_bucket:
            start = bucket * TZ_QUANTUM_S
            offset = self._utc_offset(start)
            same = offset == self._utc_offset(start + TZ_QUANTUM_S - 1e-6)
            self._tz_bucket, self._tz_offset = (bucket, offset) if same else (-1, 0.0)
            if not same:
                return now + self._utc_offset(now)
        return now + self._tz_offset

    def _utc_offset(self, t: float) -> float:
        offset = datetime.fromtimestamp(t, self.tz).utcoffset()
        return offset.total_seconds() if offset else 0.0

    def _day_index(self, now: float, local: float | None = None) -> int:
        return int((self._local_seconds(now) if local is None else local) // 86400)

    def _period_index(self, now: float, local: float | None = None) -> int:
        period = self.spec.period_s
        if 86400 % period != 0:
            return int(now // period)  # periods that do not divide a day run on the epoch
        return int((self._local_seconds(now) if local is None else local) // period)

    def _indices(self, now: float) -> tuple[int, int]:
        """(local day, period) of `now`, with one time-zone lookup: this runs twice a tick."""
        if now != self._indices_at:
            local = self._local_seconds(now)
            self._indices_at = now
            self._indices_of = (self._day_index(now, local), self._period_index(now, local))
        return self._indices_of

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
        """Satisfied but able to take surplus nobody else takes (docs/states.md)."""
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

    # -- guards: what the rows' `when` names, each of (now, meter_stale) ------------------------
    def guard_disabled(self, now: float, meter_stale: bool) -> bool:
        return not self.spec.enabled

    def guard_device_unusable(self, now: float, meter_stale: bool) -> bool:
        """Its device said it is offline, or was left out for not following its commands."""
        return self.device.offline or self.device.not_following(now)

    def guard_thermostat_cut(self, now: float, meter_stale: bool) -> bool:
        """It drew nothing while commanded, and is not on a probe."""
        return self.thermostat.holds(now)

    def guard_manual(self, now: float, meter_stale: bool) -> bool:
        return self.mode is Mode.MANUAL

    def guard_satisfied(self, now: float, meter_stale: bool) -> bool:
        """temp_max reached (until below temp_sol_min), or the period's min_energy reached."""
        return self.satisfied

    def guard_reached_goal(self, now: float, meter_stale: bool) -> bool:
        """Satisfied, or at temp_max even when a min_energy load's period is not done."""
        return self.satisfied or self._is_hot(now)

    def guard_hot(self, now: float, meter_stale: bool) -> bool:
        """At temp_max by a fresh reading: a boost stops heating."""
        return self._is_hot(now)

    def guard_meter_stale(self, now: float, meter_stale: bool) -> bool:
        return meter_stale

    def guard_eco_requested(self, now: float, meter_stale: bool) -> bool:
        """The schedules asked for grid heating, its window is open and the load may be forced."""
        return (
            self.eco_reason is not None
            and (self.eco_until is None or now < self.eco_until)
            and self.can_be_forced(now)
        )

    def guard_expired(self, now: float, meter_stale: bool) -> bool:
        return self.forced_until is not None and now >= self.forced_until

    def guard_temperature_unknown(self, now: float, meter_stale: bool) -> bool:
        """A temperature-driven load without a fresh reading runs on surplus, never forced."""
        return self.is_temp_driven and not self.temperature_known(now)

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
        self.reason = reason  # who forced it: manual, forced_window, deficit
        self.thermostat.clear()  # a boost is tried, not refused: a cut is found again if so
        self.trigger("forced", now=now)

    def switch_off(self, now: float) -> None:
        """Manual OFF: stays off until AUTO or ON."""
        self.mode = Mode.MANUAL
        self.forced_until = self.forced_w = None
        self.reason = "manual"
        self.trigger("switched_off", now=now)

    def set_auto(self, now: float, *, meter_stale: bool = False) -> None:
        """AUTO / unforce: back to the automatic rules; a boost ends at once."""
        self.mode = Mode.AUTO
        self.forced_until = self.forced_w = None
        if self.state is BOOST:
            self._apply(RELEASE, now, meter_stale)
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
        """Move to the state `TICK` gives for `now` (docs/states.md)."""
        self.roll_counters(now)
        self._update_satisfied(now)
        for _ in range(MAX_MOVES_PER_TICK + 1):
            if not self._apply(TICK, now, meter_stale):  # a row that keeps the state: settled
                return
        raise RuntimeError(f"{self.spec.name}: TICK does not settle ({self.state})")

    def set_power(self, power_w: float, now: float) -> None:
        """The power the regulator gives the load; a relay's switching time starts its
        min_on/min_off."""
        if self.spec.kind is Kind.RELAY and (power_w > 0) != (self.setpoint_w > 0):
            self.switched_at = now
        self.setpoint_w = power_w

    @property
    def is_temp_driven(self) -> bool:
        return self.thresholds is not None

    def judged_by_grid(self, now: float) -> bool:
        """Whether the grid's answer to its steps says if its thermostat cut: a watched dimmer
        with neither a power reading nor a known temperature (a relay's false cut would cost
        its min off time; a probe or a reading says more)."""
        return (
            self.thermostat.enabled
            and self.spec.kind is Kind.DIMMER
            and not self.temperature_known(now)
            and self.device.measured(now) is None
        )

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
            energy_total_wh=self.energy_total_wh,
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
            **{key: getattr(self, key) for key in PERSISTED},
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
        config file's own value changed since (docs/commands.md)."""
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
        for key in PERSISTED:
            if key in data:
                setattr(m, key, data[key])
        if spec.kind is Kind.RELAY and m.setpoint_w > 0:
            m.setpoint_w = spec.max_w
        m.roll_counters(now)
        return m


# Index the tables now that their guards exist: a table indexed later would keep whatever the
# guards were then (a test's stand-ins).
for _table in (TICK, RELEASE):
    _table.index()
