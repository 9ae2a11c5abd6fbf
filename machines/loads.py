"""One `transitions` state machine per load: off / eco / solar / boost, auto or manual (DESIGN §4).

The machine owns everything that must survive a restart (state, mode, thresholds, deadline,
energy counters, the actuator setpoint) and turns events — a temperature, a command, a tick —
into transitions. Time always comes in as `now` (epoch seconds); nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from transitions import EventData, Machine

from machines.model import FORCED_STATES, Kind, LoadSpec, Mode, State, Thresholds

OFF, ECO, SOLAR, BOOST = State.OFF, State.ECO, State.SOLAR, State.BOOST

# The whole life of a load, readable at a glance. Triggers are events; the machine picks the
# one whose (source, dest) matches where `update()` decided to go.
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "needs_surplus", "source": OFF, "dest": SOLAR},  # cooled / meter back / auto
    {"trigger": "goal_reached", "source": SOLAR, "dest": OFF},  # temp_max or min_energy
    {"trigger": "meter_lost", "source": SOLAR, "dest": OFF},  # shed: no fresh meter data
    {"trigger": "guarantee_at_risk", "source": [OFF, SOLAR], "dest": ECO},  # schedule / deficit
    {"trigger": "guarantee_met", "source": ECO, "dest": SOLAR},
    {"trigger": "guarantee_met_satisfied", "source": ECO, "dest": OFF},
    {"trigger": "forced", "source": [OFF, ECO, SOLAR, BOOST], "dest": BOOST},  # ON / force / boost
    {"trigger": "force_ended", "source": BOOST, "dest": SOLAR},  # deadline, unforce, temp_max
    {"trigger": "force_ended_satisfied", "source": BOOST, "dest": OFF},
    {"trigger": "switched_off", "source": [OFF, ECO, SOLAR, BOOST], "dest": OFF},  # manual OFF
    {"trigger": "disable", "source": [ECO, SOLAR, BOOST], "dest": OFF},
]
_EXPLICIT_ONLY = {"meter_lost", "forced", "switched_off", "disable"}  # fired by name, not by target
_AUTO_TRIGGER: dict[tuple[State, State], str] = {}
for _t in TRANSITIONS:
    if _t["trigger"] in _EXPLICIT_ONLY:
        continue
    for _source in _t["source"] if isinstance(_t["source"], list) else [_t["source"]]:
        _AUTO_TRIGGER.setdefault((_source, _t["dest"]), _t["trigger"])

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


class LoadMachine:
    """The state of one load and the rules that move it; `transitions` holds the state."""

    state: State

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
        self.eco_reason: str | None = None  # set by the schedules while a guarantee is at risk
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
        self.machine = Machine(
            model=self,
            states=State,
            transitions=TRANSITIONS,
            initial=initial,
            auto_transitions=False,
            send_event=True,
            after_state_change="_record",
        )

    # -- transitions plumbing ---------------------------------------------------------------
    def _record(self, event: EventData) -> None:
        reason = event.kwargs.get("reason", event.event.name)
        self.reason = reason
        self.records.append(
            TransitionRecord(
                self.spec.name,
                State[event.transition.source].value,
                State[event.transition.dest].value,
                event.event.name,
                reason,
                event.kwargs["now"],
            )
        )

    def _go(self, dest: State, reason: str, now: float) -> None:
        if dest is self.state:
            self.reason = reason
            return
        self.trigger(_AUTO_TRIGGER[(self.state, dest)], reason=reason, now=now)

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

    def roll_counters(self, now: float) -> None:
        """Start a new period / local day when `now` crossed a boundary."""
        local = self._local_seconds(now)  # one time-zone lookup per call: this runs every tick
        period = self._period_index(now, local)
        if period != self.period_index:
            self.prev_period_wh = self.period_wh if period == self.period_index + 1 else 0.0
            self.period_wh = 0.0
            self.period_index = period
        day = self._day_index(now, local)
        if day != self.day_index:
            self.energy_yesterday_wh = self.energy_today_wh if day == self.day_index + 1 else 0.0
            self.energy_today_wh = 0.0
            self.day_index = day

    def add_energy(self, wh: float, now: float) -> None:
        """Count energy the load took up to `now` (solar and grid alike)."""
        self.roll_counters(now)
        self.period_wh += wh
        self.energy_today_wh += wh
        self.energy_total_wh += wh

    # -- predicates -------------------------------------------------------------------------
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
        return self.temperature_known(now) and self.temperature_c < self.thresholds.temp_max  # type: ignore[operator]

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
        self.trigger("forced", reason=reason, now=now)

    def switch_off(self, now: float) -> None:
        """Manual OFF: stays off until AUTO or ON."""
        self.mode = Mode.MANUAL
        self.forced_until = self.forced_w = None
        self.trigger("switched_off", reason="manual", now=now)

    def set_auto(self, now: float, *, meter_stale: bool = False) -> None:
        self.mode = Mode.AUTO
        self.forced_until = self.forced_w = None
        if self.state is BOOST:  # AUTO / unforce ends a boost at once
            ended = "force_ended_satisfied" if self.satisfied or meter_stale else "force_ended"
            self.trigger(ended, reason="auto", now=now)
        self.update(now, meter_stale=meter_stale)

    # -- the per-tick rule ------------------------------------------------------------------
    def update(self, now: float, *, meter_stale: bool) -> None:
        """Move to the state the rules of DESIGN §4 give for `now`."""
        self.roll_counters(now)
        self._update_satisfied(now)
        if not self.spec.enabled:
            if self.state is not OFF:
                self.trigger("disable", reason="disabled", now=now)
            self.reason = "disabled"
            return
        if self.state is BOOST:
            expired = self.forced_until is not None and now >= self.forced_until
            hot = (
                self.thresholds is not None
                and self.temperature_known(now)
                and (
                    self.temperature_c >= self.thresholds.temp_max  # type: ignore[operator]
                )
            )
            if not (expired or hot):
                return
            self.mode = Mode.AUTO
            self.forced_until = self.forced_w = None
            self.satisfied = self.satisfied or hot
            why = "deadline" if expired else "satisfied"
            dest_trigger = (
                "force_ended_satisfied" if self.satisfied or meter_stale else "force_ended"
            )
            self.trigger(dest_trigger, reason=why, now=now)
        if self.mode is Mode.MANUAL:
            self.reason = "manual"
            return
        if self.eco_reason is not None and self.can_be_forced(now):
            self._go(ECO, self.eco_reason, now)
            return
        if self.state is ECO:
            trig = "guarantee_met_satisfied" if self.satisfied or meter_stale else "guarantee_met"
            self.trigger(trig, reason="guarantee_met", now=now)
        if meter_stale:
            if self.state is SOLAR:
                self.trigger("meter_lost", reason="meter_stale", now=now)
            self.reason = "meter_stale"
        elif self.satisfied:
            self._go(OFF, "satisfied", now)
        else:
            reason = (
                "temp_unknown"
                if self.is_temp_driven and not self.temperature_known(now)
                else "surplus"
            )
            self._go(SOLAR, reason, now)

    @property
    def is_temp_driven(self) -> bool:
        return self.thresholds is not None

    def can_be_forced(self, now: float) -> bool:
        """Grid heating needs a known temperature when the load is temperature-driven."""
        return self.spec.enabled and (not self.is_temp_driven or self.temperature_known(now))

    @property
    def is_forced(self) -> bool:
        return self.state in FORCED_STATES

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
