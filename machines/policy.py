"""The regulator: given the meter, the loads and the time, a power per load (DESIGN §5).

Pure and deterministic: same inputs, same decision. Two policies share the framing (forced
loads, shedding on a stale meter) and differ in how they spread the surplus:

* `default` aims straight at the measured imbalance: the power the surplus-driven loads may draw
  is what they draw now plus the surplus less a margin, spread in priority order. Relays switch
  on hysteresis timers and respect min on/off times; loads that cannot be cut make the others
  yield; a decision waits for a meter sample taken after the last command had settled.
* `legacy` is the seed's `evaluate()`: quarter steps of the imbalance, flaws included.

Policies are registered by name (`register_policy`); `PolicyParams.name` picks one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from machines.meter import active_power_bounded
from machines.model import (
    FORCED_STATES,
    Decision,
    Kind,
    LoadView,
    MeterSnapshot,
    PolicyMemo,
    RelayTimer,
    State,
)

INF = math.inf
CHANGE_EPS_W = 0.5  # setpoint changes smaller than this are not commands


@dataclass(frozen=True, slots=True)
class PolicyParams:
    """Tuning of the regulator; defaults are the shipped ones (tuned on the traces)."""

    name: str = "default"
    balance_band_w: float = 50.0
    margin_w: float = 20.0
    settle_s: float = 1.5
    relay_on_delay_s: float = 60.0  # budget must cover a relay this long before it starts
    relay_stop_deficit_wh: float = 7.5  # ... and stops once it ran this short of it
    relay_start_headroom_w: float = 300.0  # budget beyond nominal needed to start a relay
    relay_stop_tolerance_w: float = 0.0  # shortfall a running relay may have without counting
    min_rise_gain: float = 0.125
    legacy_threshold_w: float = 50.0
    legacy_min_dimmer_w: float = 50.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One tick as every policy sees it after the shared framing: forced and idle loads have
    their power in `power`, the surplus loads are `flexible`, and the meter is fresh."""

    snapshot: MeterSnapshot  # grid_w and sampled_at are known
    loads: Sequence[LoadView]
    flexible: list[LoadView]
    power: dict[str, float]  # filled in by the policy for `flexible`
    reasons: dict[str, str]


Spread = Callable[[Frame, PolicyParams, float, PolicyMemo], Decision]


@dataclass(frozen=True, slots=True)
class Policy:
    """A regulation policy: how it spreads the surplus over the surplus loads, and the flags the
    framing and the shell ask about."""

    name: str
    spread: Spread
    tops_up: bool = True  # satisfied heaters below temp_max may take leftover surplus
    seed_rule: bool = False  # the planner applies the seed's schedule rule (DESIGN §6)


class UnknownPolicy(KeyError):
    def __str__(self) -> str:
        name = str(self.args[0])
        close = difflib.get_close_matches(name, policy_names(), n=1, cutoff=0.0)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown policy {name!r}; {guess}(valid: {', '.join(policy_names())})"


_POLICIES: dict[str, Policy] = {}


def register_policy(policy: Policy, *, replace: bool = False) -> Policy:
    """Make `policy.name` a valid `regulation.policy`."""
    if policy.name in _POLICIES and not replace:
        raise ValueError(f"policy {policy.name!r} is already registered")
    _POLICIES[policy.name] = policy
    return policy


def unregister_policy(name: str) -> None:
    """Forget a policy (tests that register their own)."""
    _POLICIES.pop(name, None)


def get_policy(name: str) -> Policy:
    """The registered policy called `name`; UnknownPolicy otherwise."""
    try:
        return _POLICIES[name]
    except KeyError:
        raise UnknownPolicy(name) from None


def policy_names() -> tuple[str, ...]:
    return tuple(_POLICIES)


def decide(
    snapshot: MeterSnapshot,
    loads: Sequence[LoadView],
    params: PolicyParams,
    now: float,
    memo: PolicyMemo,
) -> Decision:
    """Decide every load's power for this tick. `loads` is in priority order."""
    policy = get_policy(params.name)
    power: dict[str, float] = {}
    reasons: dict[str, str] = {}
    flexible: list[LoadView] = []
    for view in loads:
        name = view.spec.name
        if view.state in FORCED_STATES:
            power[name] = view.forced_w if view.forced_w is not None else view.spec.max_w
            reasons[name] = view.reason
        elif view.state is State.SOLAR or (view.tops_up and policy.tops_up):
            flexible.append(view)
        else:
            power[name] = 0.0
            reasons[name] = view.reason

    if snapshot.stale or snapshot.grid_w is None or snapshot.sampled_at is None:
        for view in flexible:
            power[view.spec.name] = 0.0
            reasons[view.spec.name] = "meter_stale"
        return _finish(loads, power, reasons, memo, now)
    return policy.spread(Frame(snapshot, loads, flexible, power, reasons), params, now, memo)


def _spread_default(frame: Frame, params: PolicyParams, now: float, memo: PolicyMemo) -> Decision:
    """Aim at the measured imbalance less a margin, once the last command has settled."""
    snapshot, loads, flexible = frame.snapshot, frame.loads, frame.flexible
    power, reasons = frame.power, frame.reasons
    assert snapshot.sampled_at is not None and snapshot.grid_w is not None
    memo = _learn(snapshot, loads, params, memo)
    settled = memo.last_command_at is None or (
        snapshot.sampled_at >= memo.last_command_at + params.settle_s
    )
    if not settled:
        for view in flexible:
            power[view.spec.name] = view.setpoint_w
            reasons[view.spec.name] = "settling"
        return _finish(loads, power, reasons, memo, now)

    grid = _grid_estimate(snapshot)
    error = -grid - params.margin_w
    # Cut imports at once; take surplus at once too, unless the last rise overshot into an
    # import (a lagging Q estimate after a reactive step does that): then rise by halves.
    # This rise takes the share in force; the next one twice that (doubling first, as before,
    # undid every halving before it was ever applied).
    gain = memo.rise_gain
    rise_share = gain
    if error < 0 and grid > 0 and memo.last_move > 0:
        gain = max(gain / 2, params.min_rise_gain)
    elif error > 0:
        gain = min(gain * 2, 1.0)
    fixed_now = sum(power.values())
    drawn_now = sum(v.setpoint_w for v in loads)
    budget = drawn_now + (error * rise_share if error > 0 else error) - fixed_now
    order = [v for v in flexible if not v.tops_up] + [v for v in flexible if v.tops_up]
    relays_on, timers, relay_reasons = _relay_pass(order, budget, params, now, memo)
    relays_changed = any(
        (v.spec.name in relays_on) != (v.setpoint_w > 0) for v in order if v.spec.kind is Kind.RELAY
    )
    # Dead band on the export side only: a small export is the aim, any import is corrected.
    in_band = grid <= 0.0 and error < params.balance_band_w and not relays_changed
    remaining = budget - sum(_nominal(v, memo) for v in order if v.spec.name in relays_on)
    for view in order:
        name = view.spec.name
        if view.spec.kind is Kind.RELAY:
            on = name in relays_on
            power[name] = _nominal(view, memo) if on else 0.0
            reasons[name] = relay_reasons.get(name) or _running_reason(view, on)
            continue
        if in_band:
            p = view.setpoint_w
        else:
            p = min(max(remaining, 0.0), view.spec.max_w)
            if p < view.spec.min_power_w:
                p = 0.0
        remaining -= p
        power[name] = p
        reasons[name] = _running_reason(view, p > 0)
    move = sum(power[v.spec.name] - v.setpoint_w for v in order)
    last_move = memo.last_move if abs(move) < CHANGE_EPS_W else math.copysign(1.0, move)
    memo = replace(memo, relay_timers=timers, rise_gain=gain, last_move=last_move)
    return _finish(loads, power, reasons, memo, now, snapshot.grid_w)


def _grid_estimate(snapshot: MeterSnapshot) -> float:
    """Active power to regulate on: for a Linky, bounded by what S and Q allow."""
    if snapshot.apparent_va is not None and snapshot.reactive_var is not None:
        return active_power_bounded(snapshot.apparent_va, snapshot.reactive_var)
    assert snapshot.grid_w is not None
    return snapshot.grid_w


def _running_reason(view: LoadView, running: bool) -> str:
    if view.tops_up:
        return "topping_up" if running else "satisfied"
    return "surplus" if running else "no_surplus"


def _nominal(view: LoadView, memo: PolicyMemo) -> float:
    return memo.learned_w.get(view.spec.name, view.spec.max_w)


def _relay_pass(
    order: Sequence[LoadView], budget: float, params: PolicyParams, now: float, memo: PolicyMemo
) -> tuple[set[str], dict[str, RelayTimer], dict[str, str]]:
    """Which relays run: walk in priority order, dimmers tentatively taking what they can,
    so a relay sees what is left for it once the loads above it are served."""
    on: set[str] = set()
    timers: dict[str, RelayTimer] = {}
    reasons: dict[str, str] = {}
    left = budget
    for view in order:
        spec = view.spec
        if spec.kind is Kind.DIMMER:
            left -= min(max(left, 0.0), spec.max_w)
            continue
        nominal = _nominal(view, memo)
        running = view.setpoint_w > 0
        since_switch = INF if view.switched_at is None else now - view.switched_at
        timer = memo.relay_timers.get(spec.name, RelayTimer())
        keep = running
        new_timer = RelayTimer()
        if running and since_switch < spec.min_on_s:
            reasons[spec.name] = "min_on_hold"
        elif not running and since_switch < spec.min_off_s:
            reasons[spec.name] = "min_off_hold"
        elif running and left < nominal - params.relay_stop_tolerance_w:
            # Integrate the shortfall: a deep cloud stops the relay soon, a slow sunset later,
            # a passing dip not at all.
            dt = 0.0 if timer.deficit_at is None else now - timer.deficit_at
            short = nominal - params.relay_stop_tolerance_w - left
            deficit = timer.deficit_wh + short * dt / 3600.0
            if deficit >= params.relay_stop_deficit_wh:
                keep = False
            else:
                new_timer = RelayTimer(deficit_wh=deficit, deficit_at=now)
        elif not running and left >= nominal + params.relay_start_headroom_w:
            since = timer.want_on_since if timer.want_on_since is not None else now
            if now - since >= params.relay_on_delay_s:
                keep = True
            else:
                new_timer = RelayTimer(want_on_since=since)
        if new_timer != RelayTimer():
            timers[spec.name] = new_timer
        if keep:
            on.add(spec.name)
            left -= nominal
    return on, timers, reasons


def _learn(
    snapshot: MeterSnapshot, loads: Sequence[LoadView], params: PolicyParams, memo: PolicyMemo
) -> PolicyMemo:
    """Learn an unknown-power relay's real power from the meter step that followed its switch."""
    if not memo.pending_learn or snapshot.grid_w is None or snapshot.sampled_at is None:
        return memo
    learned = dict(memo.learned_w)
    pending = dict(memo.pending_learn)
    for name, (switched_at, grid_before, others_step) in memo.pending_learn.items():
        if snapshot.sampled_at < switched_at + params.settle_s:
            continue
        view = next((v for v in loads if v.spec.name == name), None)
        del pending[name]
        if view is None:
            continue
        direction = 1.0 if view.setpoint_w > 0 else -1.0
        step = (snapshot.grid_w - grid_before - others_step) * direction
        if 0 < step <= 100_000:
            learned[name] = step
    return replace(memo, learned_w=learned, pending_learn=pending)


def _finish(
    loads: Sequence[LoadView],
    power: dict[str, float],
    reasons: dict[str, str],
    memo: PolicyMemo,
    now: float,
    grid_w: float | None = None,
) -> Decision:
    """Stamp the command time and arm power learning for unknown relays that switched."""
    steps = {v.spec.name: power[v.spec.name] - v.setpoint_w for v in loads}
    changed = any(abs(step) >= CHANGE_EPS_W for step in steps.values())
    if changed:
        memo = replace(memo, last_command_at=now)
    if grid_w is not None:
        pending = dict(memo.pending_learn)
        for view in loads:
            name = view.spec.name
            if view.spec.learns_power and (power[name] > 0) != (view.setpoint_w > 0):
                others = sum(step for other, step in steps.items() if other != name)
                pending[name] = (now, grid_w, others)
        if pending != memo.pending_learn:
            memo = replace(memo, pending_learn=pending)
    return Decision(power, reasons, memo, changed)


def _spread_legacy(frame: Frame, params: PolicyParams, now: float, memo: PolicyMemo) -> Decision:
    """The seed's evaluate(), then the shared bookkeeping (no power learning)."""
    assert frame.snapshot.grid_w is not None
    _legacy(frame.snapshot.grid_w, frame.flexible, params, frame.power, frame.reasons)
    return _finish(frame.loads, frame.power, frame.reasons, memo, now)


def _legacy(
    grid_w: float,
    flexible: Sequence[LoadView],
    params: PolicyParams,
    power: dict[str, float],
    reasons: dict[str, str],
) -> None:
    """The seed's evaluate(): move a quarter of the imbalance per tick, no margin, no settling."""
    threshold = params.legacy_threshold_w
    min_w = params.legacy_min_dimmer_w
    for view in flexible:
        power[view.spec.name] = view.setpoint_w
    if grid_w > threshold:
        step = grid_w / 4
        for view in reversed(flexible):
            if step <= 0:
                break
            name = view.spec.name
            current = power[name]
            if current <= 0:
                continue
            if view.spec.kind is Kind.RELAY:
                power[name] = 0.0
                step -= view.spec.max_w
                continue
            new = max(current - step, 0.0)
            if new < min_w:
                new = 0.0
            step -= current - new
            power[name] = new
    elif grid_w < -threshold:
        step = -grid_w / 4
        for view in flexible:
            if step <= 0:
                break
            name = view.spec.name
            current = power[name]
            if view.spec.kind is Kind.RELAY:
                if current <= 0 and step >= view.spec.max_w:
                    power[name] = view.spec.max_w
                    step -= view.spec.max_w
                continue
            new = min(current + step, view.spec.max_w)
            if new < min_w:
                new = current
            step -= new - current
            power[name] = new
            if view.is_temp_driven:
                break  # the seed's flaw: an unsatisfied heater ends the pass, even at max power
    for view in flexible:
        reasons[view.spec.name] = "surplus" if power[view.spec.name] > 0 else "no_surplus"


register_policy(Policy("default", _spread_default))
register_policy(Policy("legacy", _spread_legacy, tops_up=False, seed_rule=True))
