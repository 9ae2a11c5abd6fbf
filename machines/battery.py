"""Beside a home battery (docs/battery.md): which grid the policy regulates on, by mode.

A battery inverter holds the grid near 0 W, so the grid alone hides the surplus the battery is
taking and the discharge that pays for pvopt's loads. The battery's own reading (+ charging)
gives both back: `grid − battery` is the house's balance as if there were no battery, whatever
the inverter's loop is doing at that instant. The modes choose what the policy sees:

- the battery's charge counts as surplus (`loads_first`; `battery_first` once the battery has
  reached `soc_target`; `soc_by` from its deadline, or at the target): regulate on
  `grid − battery`, and the loads take what they can before the battery;
- it does not (`battery_first` below the target, `soc_by` before its deadline): regulate on the
  grid, and the loads get only what the battery cannot take (export);
- in every mode a discharge beyond `tolerance_w` counts as import, so the loads shed it: none
  of pvopt's loads is paid for by the battery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from machines.export import FULL
from machines.model import BatteryMode, BatteryPlan, Decision, MeterSnapshot
from machines.value import value

BATTERY_FIRST = "battery_first"  # the reason of a load that gets what the battery leaves
DISCHARGING = "battery_discharging"  # ... shed as the battery discharges
SURPLUS_REASONS = frozenset({"surplus", "no_surplus", "topping_up"})  # the policy's own
MODES = frozenset(m.value for m in BatteryMode)  # what `battery.mode` and the select accept


@value
class BatteryView:
    """The grid the policy regulates on beside the battery, and why (None: as the meter)."""

    grid_w: float | None
    why: str | None

    def applied(self, snapshot: MeterSnapshot) -> MeterSnapshot:
        """`snapshot` as the policy sees it: a Linky's net S moved with P (the battery's
        inverter runs at unity power factor: P changes, Q does not)."""
        if self.grid_w is None or self.grid_w == snapshot.grid_w:
            return snapshot
        s = snapshot.apparent_va
        if s is not None:
            q = snapshot.reactive_var or 0.0
            s = math.copysign(math.hypot(self.grid_w, q), self.grid_w)
        return replace(snapshot, grid_w=self.grid_w, apparent_va=s)


def charge_counts(plan: BatteryPlan, soc: float | None, now: float, tz: ZoneInfo) -> bool:
    """Whether the battery's charge counts as surplus for pvopt's loads now."""
    if plan.mode is BatteryMode.LOADS_FIRST:
        return True
    if soc is not None and soc >= plan.soc_target:
        return True
    if plan.mode is BatteryMode.SOC_BY:
        local = datetime.fromtimestamp(now, tz)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return seconds >= plan.soc_by_s
    return False


def battery_view(
    snapshot: MeterSnapshot, plan: BatteryPlan, now: float, tz: ZoneInfo
) -> BatteryView:
    """The grid for the policy (docs/battery.md); the meter's own without a battery reading."""
    grid, battery = snapshot.grid_w, snapshot.battery_w
    if grid is None or battery is None:
        return BatteryView(grid, None)
    if battery < -plan.tolerance_w:
        return BatteryView(grid - battery, DISCHARGING)
    if charge_counts(plan, snapshot.battery_soc, now, tz):
        soc = snapshot.battery_soc
        residual = plan.residual_w if soc is None or soc < FULL_SOC else 0.0
        return BatteryView(grid - max(battery, 0.0) + residual, None)
    return BatteryView(grid, BATTERY_FIRST if battery > plan.tolerance_w else None)


FULL_SOC = 99.0  # % from which the battery takes no more: no residual is left to it


def holds_forced(plan: BatteryPlan, beside: BatteryView) -> bool:
    """Whether forced heating (eco, boost) waits now: the battery discharges beyond
    `tolerance_w` and the user did not allow `forced_from_battery`. It heats from the grid once
    the battery stops (at its own floor, or charging). With `cold_tank_from_battery` a tank
    below `temp_min` heats to it whatever pays, the controller's exception (docs/battery.md)."""
    return beside.why == DISCHARGING and not plan.forced_from_battery


def explain_battery(decision: Decision, why: str) -> None:
    """The battery's reason for each surplus load it holds back (not full): in place."""
    for name, reason in decision.reasons.items():
        if reason in SURPLUS_REASONS and decision.limits.get(name) != FULL:
            decision.reasons[name] = why


def chosen_mode(plan: BatteryPlan, saved: Mapping[str, Any]) -> BatteryPlan:
    """The plan with the mode last chosen at run time (Home Assistant's select, a command),
    kept across a restart; the config's mode wins when the file changed it since (the newer
    word), as a load's thresholds do."""
    mode = saved.get("mode")
    if saved.get("config_mode") != plan.mode.value or mode not in MODES:
        return plan
    return replace(plan, mode=BatteryMode(mode))


@value
class SignCheck:
    """Whether the battery's reading has the sign the config says, from pvopt's own steps.
    The grid is the house's balance plus the battery's true charge: over the moments after a
    step of P that pvopt took, grid − battery moves by P when the reading has the configured
    sign (+ charging), grid + battery when it is the other way, whatever the inverter did
    meanwhile. The sun moves both alike: a step is a vote only when one reading clearly fits
    (docs/battery.md#signs)."""

    agree: int = 0
    disagree: int = 0
    pending: tuple[float, float, float, float] | None = None  # (since, step, battery, grid)

    @property
    def verdict(self) -> str | None:
        """`ok`, `inverted`, or None while the votes do not say."""
        if self.disagree >= SIGN_VOTES and self.disagree >= SIGN_MAJORITY * self.agree:
            return "inverted"
        if self.agree >= SIGN_VOTES and self.agree >= SIGN_MAJORITY * self.disagree:
            return "ok"
        return None


SIGN_STEP_W = 300.0  # a smaller step is lost in the house's own moves
SIGN_VOTES = 5  # clear answers (and three times the others) before pvopt says anything
SIGN_MAJORITY = 3  # a Linky near the balance and the clouds give wrong votes too
SIGN_FIT = 0.3  # a vote: one sign explains the step within 30 %, the other misses by 70 %


def resolved_grid(snapshot: MeterSnapshot) -> float | None:
    """The meter's P where it is measured: a Linky's P from S and Q only where S is at least
    twice Q (near the balance S hides P's size, machines/meter.py)."""
    s, q = snapshot.apparent_va, snapshot.reactive_var
    if s is not None and abs(s) < 2.0 * abs(q or 0.0):
        return None
    return snapshot.grid_w


def check_sign(
    check: SignCheck,
    step_w: float,
    battery_w: float | None,
    grid_w: float | None,
    now: float,
    response_s: float,
) -> SignCheck:
    """One tick of the check: `step_w` is this tick's total command change, `battery_w` and
    `grid_w` the meter's and the battery's readings (the grid as the meter reads it). A step is
    judged `response_s` later (the steps taken meanwhile added to it); a battery that did not
    move (at a limit) makes both signs fit: no vote. `grid_w` None (a Linky near the balance,
    where S hides P: where an inverter holds it) drops the step. It stops at a verdict."""
    if check.verdict is not None:
        return check
    if battery_w is None or grid_w is None:  # a reading missing, or P hidden: no judgement
        return check if check.pending is None else replace(check, pending=None)
    if check.pending is not None:
        since, step, b0, g0 = check.pending
        step += step_w
        if now - since < response_s:
            return replace(check, pending=(since, step, b0, g0))
        db, dg = battery_w - b0, grid_w - g0
        fits, misses = abs(dg - db - step), abs(dg + db - step)
        agree, disagree = check.agree, check.disagree
        big = abs(step) >= SIGN_STEP_W
        if big and fits <= SIGN_FIT * abs(step) and misses >= (1 - SIGN_FIT) * abs(step):
            agree += 1
        elif big and misses <= SIGN_FIT * abs(step) and fits >= (1 - SIGN_FIT) * abs(step):
            disagree += 1
        return SignCheck(agree, disagree, None)
    if abs(step_w) >= SIGN_STEP_W:
        return replace(check, pending=(now, step_w, battery_w, grid_w))
    return check
