"""The regulator's tick: schedules ask, machines decide (who may run), then the policy (how
much), pure.

The service and the simulator both drive a `Controller`; only the clock and the meter differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, assert_never
from zoneinfo import ZoneInfo

from machines.battery import (
    DISCHARGING,
    BatteryView,
    SignCheck,
    battery_view,
    check_sign,
    explain_battery,
    holds_forced,
    resolved_grid,
)
from machines.energy import Ledger, LoadSpan, export_room
from machines.loads import TEMP_STALE_S, CommandError, LoadMachine, TransitionRecord
from machines.model import (
    BatteryMode,
    BatteryPlan,
    LoadSpec,
    LoadView,
    MeterSnapshot,
    PolicyMemo,
    State,
)
from machines.policy import PolicyParams, decide
from machines.schedules import BoostRequest, EcoRequest, Planner, Release, Request
from machines.sun import Plant, clear_sky, clear_sky_ahead
from machines.thermostat import DROP_MATCH, NOISE_FACTOR, QUIET_W, SETTLE_S, STEP_MIN_W, Steps
from machines.value import value

MAX_ACCOUNT_STEP_S = 300.0  # the service ticks every few seconds; more is a stall or a jump


class UnknownLoad(KeyError):
    """A command named a load that is not configured."""

    def __str__(self) -> str:
        return f"unknown load {self.args[0]!r}"


@value
class TickResult:
    power_w: dict[str, float]
    reasons: dict[str, str]
    changed: bool
    records: list[TransitionRecord]


class Controller:
    """All loads of a site in priority order, their machines, and the policy's memory."""

    def __init__(
        self,
        specs: Sequence[LoadSpec],
        tz: ZoneInfo,
        params: PolicyParams,
        now: float,
        saved: Mapping[str, dict[str, Any]] | None = None,
        temp_stale_s: float = TEMP_STALE_S,
        planner: Planner | None = None,
        ledger: Ledger | None = None,
        plant: Plant | None = None,
        battery: BatteryPlan | None = None,
    ):
        self.tz = tz
        self.plant = plant  # the site's panels: the clear-sky curve for a PV reading
        self.battery = battery  # a home battery's mode (machines/battery.py)
        # the config's mode: a mode chosen at run time is kept until the file changes it
        self.battery_config_mode = None if battery is None else battery.mode
        self.battery_sign = SignCheck()  # the reading's sign against pvopt's own steps
        self.planner = planner
        self.ledger = ledger
        self.intervals: list[dict[str, Any]] = []  # completed by the ledger, not yet drained
        self.last_snapshot: MeterSnapshot | None = None
        self._prev_sample: tuple[float, float] | None = None  # (sampled_at, grid) last seen
        self._steps: Steps | None = None  # the last command steps, until a sample judges them
        self._moved_at: float | None = None  # the commands last moved by QUIET_W or more in all
        self.params = params
        self.memo = PolicyMemo()
        self.last_tick: float | None = None
        self.reasons: dict[str, str] = {}
        self.limits: dict[str, str] = {}  # why each load draws no more (machines/export.py)
        saved = saved or {}
        self.machines: dict[str, LoadMachine] = {}
        for spec in specs:
            if spec.name in saved:
                m = LoadMachine.restore(spec, tz, saved[spec.name], now, temp_stale_s)
            else:
                m = LoadMachine(spec, tz, now, temp_stale_s)
            self.machines[spec.name] = m
            self.reasons[spec.name] = m.reason

    def _with_sun(self, snapshot: MeterSnapshot, now: float) -> MeterSnapshot:
        """`snapshot` with the clear sky at its PV sample and ahead of now (machines/sun.py)."""
        if self.plant is None or snapshot.pv_w is None or snapshot.pv_at is None:
            return snapshot
        horizon = self.params.sun.sun_horizon_s
        return replace(
            snapshot,
            clear_sky_w=clear_sky(self.plant, snapshot.pv_at),
            clear_sky_ahead_w=clear_sky_ahead(self.plant, now, horizon),
        )

    def load(self, key: str | int) -> LoadMachine:
        """A load by name, or by id when `key` is a number (docs/cli.md)."""
        if isinstance(key, str) and key in self.machines:
            return self.machines[key]
        text = str(key)
        if text.lstrip("-").isdigit():
            for m in self.machines.values():
                if m.spec.id == int(text):
                    return m
        raise UnknownLoad(key)

    def account(self, now: float) -> None:
        """Count the energy each load drew since the last tick: its device's measurement, else
        its setpoint, nothing while offline (and, with a ledger, the interval figures: the
        meter value held since the last tick too)."""
        if self.last_tick is not None and now > self.last_tick:
            # a stall or an undetected clock step credits no more than one step's worth
            t0 = max(self.last_tick, now - MAX_ACCOUNT_STEP_S)
            for m in self.machines.values():
                m.add_power(m.device.drawn_w(m.setpoint_w, now), t0, now)
            if self.ledger is not None:
                self._ledger_add(t0, now)
        self.last_tick = now

    def set_battery_mode(self, mode: BatteryMode) -> str:
        """Who fills first from now on (Home Assistant's select, `battery_mode` command)."""
        if self.battery is None:
            raise CommandError("no battery: the config has no `battery:` block")
        self.battery = replace(self.battery, mode=mode)
        return f"battery: {mode.value}"

    def battery_doc(self) -> dict[str, str] | None:
        """What the store keeps of the battery: the mode in force and the config's then."""
        if self.battery is None or self.battery_config_mode is None:
            return None
        return {"mode": self.battery.mode.value, "config_mode": self.battery_config_mode.value}

    def clock_stepped(self, step_s: float) -> None:
        """The wall clock jumped by `step_s` (NTP): move every duration's anchor with it, so
        no energy is credited for the jump, no hold, settle or staleness ends or restarts by
        itself; calendar deadlines (`forced_until`, schedules, days) keep their wall time."""
        if self.last_tick is not None:
            self.last_tick += step_s
        if self._moved_at is not None:
            self._moved_at += step_s
        memo = self.memo
        self.memo = replace(
            memo,
            last_command_at=None if memo.last_command_at is None else memo.last_command_at + step_s,
            q_id_at=None if memo.q_id_at is None else memo.q_id_at + step_s,
            q_cross_at=None if memo.q_cross_at is None else memo.q_cross_at + step_s,
            sign_crossed_at=None if memo.sign_crossed_at is None else memo.sign_crossed_at + step_s,
            relay_timers={
                name: replace(
                    t,
                    want_on_since=None if t.want_on_since is None else t.want_on_since + step_s,
                    deficit_at=None if t.deficit_at is None else t.deficit_at + step_s,
                )
                for name, t in memo.relay_timers.items()
            },
            pending_learn={
                name: (at + step_s, grid, others)
                for name, (at, grid, others) in memo.pending_learn.items()
            },
        )
        for m in self.machines.values():
            if m.switched_at is not None:
                m.switched_at += step_s
            if m.temperature_at is not None:
                m.temperature_at += step_s

    def _ledger_add(self, t0: float, t1: float) -> None:
        assert self.ledger is not None
        spans = [
            LoadSpan(
                name,
                m.device.drawn_w(m.setpoint_w, t1),
                m.state.value,
                m.temperature_c if m.temperature_known(t1) else None,
                **export_room(m, self.limits, t1),
            )
            for name, m in self.machines.items()
        ]
        snap = self.last_snapshot
        fresh = snap is not None and not snap.stale
        self.intervals.extend(
            self.ledger.add(
                t0,
                t1,
                spans,
                snap.grid_w if fresh and snap else None,
                snap.reactive_var if fresh and snap else None,
                snap.pv_w if fresh and snap else None,
            )
        )

    def drain_intervals(self) -> list[dict[str, Any]]:
        out, self.intervals = self.intervals, []
        return out

    def views(self, now: float) -> list[LoadView]:
        # positional, in LoadView's field order: this runs for every load at every tick
        return [
            LoadView(
                m.spec,
                m.state,
                m.mode,
                m.reason,
                m.setpoint_w,
                m.forced_w,
                m.state is State.OFF and m.tops_up(now),
                m.thresholds is not None,  # is_temp_driven
                m.switched_at,
            )
            for m in self.machines.values()
        ]

    def tick(
        self, now: float, snapshot: MeterSnapshot, *, offpeak: bool | None = None
    ) -> TickResult:
        """One regulation step at `now` on `snapshot`; applies the decision to the machines.
        `offpeak` is the meter's tariff for tariff-following schedules (None: unknown)."""
        self.account(now)
        self.last_snapshot = snapshot
        beside = None
        metered = snapshot  # the grid as the meter reads it, before the battery's mode
        if self.battery is not None:  # regulate on the grid the battery's mode gives
            beside = battery_view(snapshot, self.battery, now, self.tz)
            snapshot = beside.applied(snapshot)
        if self.planner is not None:
            facts = {name: m.facts(now) for name, m in self.machines.items()}
            surplus = None  # what the house had to spare: export plus what pvopt routed
            if not snapshot.stale and snapshot.grid_w is not None:
                surplus = sum(m.setpoint_w for m in self.machines.values()) - snapshot.grid_w
            requests = self.planner.update(now, facts, offpeak=offpeak, surplus_w=surplus)
            self.apply_requests(requests, now)
        # The start-up grace (no meter value yet, not stale yet) keeps running loads running
        # but starts nothing: a load shed for a stale meter stays shed until the meter speaks.
        awaiting = snapshot.sampled_at is None and not snapshot.stale
        fresh = not snapshot.stale and snapshot.grid_w is not None
        if fresh:
            self._watch_thermostats(snapshot, now)
        for m in self.machines.values():
            shed = awaiting and m.state is State.OFF and m.reason == "meter_stale"
            m.update(now, meter_stale=snapshot.stale or shed)
        views = self.views(now)
        held = self._held_off_battery(beside, now)
        if held:  # forced heating waits for the battery to stop discharging: 0 W, as commanded
            views = [replace(v, forced_w=0.0) if v.spec.name in held else v for v in views]
        decision = decide(self._with_sun(snapshot, now), views, self.params, now, self.memo)
        self.memo = decision.memo
        if beside is not None and beside.why is not None:
            explain_battery(decision, beside.why)
        for name in held:
            decision.reasons[name] = decision.limits[name] = DISCHARGING
        steps = {n: decision.power_w[n] - m.setpoint_w for n, m in self.machines.items()}
        if self.battery is not None:
            self.battery_sign = check_sign(
                self.battery_sign,
                sum(steps.values()),
                snapshot.battery_w,
                resolved_grid(metered),
                now,
                self.battery.response_s,
            )
        if fresh:
            self._watch_steps(steps, snapshot, now)
        if sum(map(abs, steps.values())) >= QUIET_W:
            self._moved_at = now
        for name, m in self.machines.items():
            m.set_power(decision.power_w[name], now)
        self.reasons = decision.reasons
        self.limits = decision.limits
        records = self.drain_records()
        return TickResult(decision.power_w, decision.reasons, decision.changed, records)

    def _held_off_battery(self, beside: BatteryView | None, now: float) -> frozenset[str]:
        """The forced loads that wait while the battery discharges (machines/battery.py); with
        `cold_tank_from_battery`, all but a tank below its `temp_min`."""
        if beside is None or self.battery is None or not holds_forced(self.battery, beside):
            return frozenset()
        floor = self.battery.cold_tank_from_battery
        return frozenset(
            name
            for name, m in self.machines.items()
            if m.is_forced
            and not (
                floor
                and m.thresholds is not None
                and m.temperature_known(now)
                and m.temperature_c is not None
                and m.temperature_c < m.thresholds.temp_min
            )
        )

    def _watch_thermostats(self, snapshot: MeterSnapshot, now: float) -> None:
        """Tell each load's thermostat watch its reading and the meter's answer to the last
        steps; a grid fall of about one load's command while the commands held is that
        load's cut (machines/thermostat.py)."""
        grid, at = snapshot.grid_w, snapshot.sampled_at
        assert grid is not None
        if at is None:
            return
        for m in self.machines.values():
            m.thermostat.reading(m.setpoint_w, m.device.measured(now), now)
        pending = self._steps
        if pending is not None and at >= pending.at + SETTLE_S:
            self._steps = None
            answered, missed = pending.judge(grid)
            for name in pending.judged:
                watch = self.machines[name].thermostat
                if name == missed and (pending.steps[name] > 0 or watch.verifying):
                    watch.missed(now)  # an unanswered fall: nothing left to cut or confirm
                elif name in answered or watch.verifying:  # a cut not confirmed is undone
                    watch.answered()
        prev, self._prev_sample = self._prev_sample, (at, grid)
        moved = self._moved_at  # a dimmer's small moves leave a load's fall readable
        if prev is None or at <= prev[0] or (moved is not None and prev[0] < moved + SETTLE_S):
            return
        drop = prev[1] - grid
        if drop < max(STEP_MIN_W, NOISE_FACTOR * (self.memo.noise_w or 0.0)):
            return
        for m in self.machines.values():
            watch = m.thermostat
            if (
                m.setpoint_w >= STEP_MIN_W
                and abs(drop - m.setpoint_w) <= DROP_MATCH * m.setpoint_w
                and m.judged_by_grid(now)
            ):
                watch.dropped(now)
                return  # one load's cut explains it

    def _watch_steps(self, steps: dict[str, float], snapshot: MeterSnapshot, now: float) -> None:
        """Arm the grid's answer to this decision's `steps` (command minus setpoint) of loads
        without a power reading: a load its thermostat cut does not move the grid
        (machines/thermostat.py)."""
        # a cut on the grid's word is judged by the fall of its command, whatever the noise
        verify = []
        for name, m in self.machines.items():
            if m.thermostat.verifying:
                if steps[name] < 0:
                    verify.append(name)
                else:
                    m.thermostat.answered()  # no fall to judge it by: undone
        if not verify and (
            self._steps is not None  # the last steps are not judged yet
            or max(map(abs, steps.values()), default=0.0) < STEP_MIN_W  # nothing to judge
        ):
            return
        smallest = max(STEP_MIN_W, NOISE_FACTOR * (self.memo.noise_w or 0.0))
        judged = tuple(
            name
            for name, m in self.machines.items()
            if name in verify or (abs(steps[name]) >= smallest and m.judged_by_grid(now))
        )
        if judged:
            assert snapshot.grid_w is not None
            self._steps = Steps(now, snapshot.grid_w, steps, judged)

    def stop_surplus_loads(self, now: float) -> None:
        """Loads on surplus to 0 W (the service stops); forced loads keep their power."""
        for m in self.machines.values():
            if not m.is_forced:
                m.set_power(0.0, now)

    def apply_requests(self, requests: Sequence[Request], now: float) -> None:
        """Hand the planner's requests to the machines: boosts and releases in order, then eco
        for the loads it names and none for the others; the machines move at `update()`."""
        eco: dict[str, EcoRequest] = {}
        for r in requests:
            match r:
                case EcoRequest():
                    eco[r.load] = r
                case BoostRequest():
                    m = self.machines[r.load]
                    m.force(now, until=r.until, power_w=None, reason=r.reason, manual=False)
                case Release():
                    # the planner never knew the meter: the release judges it fresh, as it
                    # always did; the tick's own update() then sees the meter as it is
                    self.machines[r.load].set_auto(now, meter_stale=False)
                case _:
                    assert_never(r)
        for name, m in self.machines.items():
            wanted = eco.get(name)
            if wanted is None:
                m.drop_eco()
            else:
                m.request_eco(wanted.reason, wanted.until)

    def drain_records(self) -> list[TransitionRecord]:
        """Transition records since the last call, oldest first."""
        out: list[TransitionRecord] = []
        for m in self.machines.values():
            if m.records:
                out.extend(m.records)
                m.records.clear()
        out.sort(key=lambda r: r.at)
        return out

    def dump(self) -> dict[str, dict[str, Any]]:
        return {name: m.dump() for name, m in self.machines.items()}
