"""The regulator: given the meter, the loads and the time, a power per load (docs/regulation.md).

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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from machines.export import FULL
from machines.meter import active_power_bounded
from machines.model import (
    FORCED_STATES,
    Decision,
    Kind,
    LoadView,
    MeterSnapshot,
    Mode,
    PolicyMemo,
    RelayTimer,
    State,
)
from machines.registry import Registry, UnknownName

INF = math.inf
CHANGE_EPS_W = 0.5  # setpoint changes smaller than this are not commands


@dataclass(frozen=True, slots=True)
class MarginParams:
    """How far below the balance to aim. The margin and the dead band adapt (docs/regulation.md):
    each is the larger of a gain × the observed noise and a share of the surplus, kept within
    [*_min_w, its maximum]. A quiet meter and a small surplus (a grey day) get a fine
    regulation; a noisy one or a large surplus the old margin."""

    balance_band_w: float = 50.0  # the band's maximum
    margin_w: float = 100.0  # the margin's maximum
    band_min_w: float = 8.0
    margin_min_w: float = 4.0
    noise_band_gain: float = 1.0
    noise_margin_gain: float = 0.5
    surplus_band_share: float = 0.025
    surplus_margin_share: float = 0.015
    margin_start_w: float = 20.0  # before any noise was observed
    noise_start_w: float = 40.0
    noise_share: float = 0.1  # the noise mean moves by this share of a surprise per sample ...
    noise_clip: float = 3.0  # ... a surprise counted up to this × the mean (+ band_min_w): a
    # kettle's step is one event, not noise; many surprises in a row raise the mean fast


@dataclass(frozen=True, slots=True)
class DampingParams:
    """How fast to move: wait for the command to settle, halve a rise that overshot, move by a
    share of the error inside the band."""

    settle_s: float = 1.5
    min_rise_gain: float = 0.125
    band_gain: float = 0.3  # inside the band, move by this share of the error (0: hold)
    band_min_step_w: float = 2.0  # ... when that is at least this much
    creep_w: float = 5.0  # exporting, but S ≤ Q hides how much: rise by this much


@dataclass(frozen=True, slots=True)
class LinkyParams:
    """A Linky gives S and Q, not P: how Q is found, and how to step by the sign of P near the
    balance where its size is hidden."""

    q_id_min_step_w: float = 30.0  # a step this large identifies Q from S before and after it
    q_id_ttl_s: float = 90.0  # ... and that Q is trusted this long
    q_id_import_tol_var: float = 3.0  # how far an identified Q may be above the truth ...
    q_timed_import_tol_var: float = 6.0  # ... and a timed one (0: assume the worst, P = S)
    q_id_tolerance: float = 0.3  # ... if within this share (or 15 var) of the ERQT estimate
    sign_step_w: float = 3.0  # near the balance a Linky gives the sign: step by this (0: off)
    sign_quantum_va: float = 1.0  # ... allowing for this error of S
    sign_resolve_va: float = 3.0  # ... while |S| is within Q + its errors + this
    q_cross_max_rise_w: float = 10.0  # a crossing on a rise this small gives Q ...
    q_cross_ttl_s: float = 60.0  # ... trusted this long
    sign_hold_s: float = 12.0  # ... and once back from an import, rise no further this long


@dataclass(frozen=True, slots=True)
class RelayParams:
    """When an all-or-nothing load starts and stops."""

    relay_on_delay_s: float = 60.0  # budget must cover a relay this long before it starts
    relay_stop_deficit_wh: float = 7.5  # ... and stops once it ran this short of it
    relay_start_headroom_w: float = 300.0  # budget beyond nominal needed to start a relay
    relay_stop_tolerance_w: float = 0.0  # shortfall a running relay may have without counting


@dataclass(frozen=True, slots=True)
class LegacyParams:
    """The seed's `evaluate()`."""

    legacy_threshold_w: float = 50.0
    legacy_min_dimmer_w: float = 50.0


GROUPS: dict[str, Any] = {  # group name -> its frozen dataclass
    "margin": MarginParams,
    "damping": DampingParams,
    "linky": LinkyParams,
    "relay": RelayParams,
    "legacy": LegacyParams,
}


@dataclass(frozen=True, slots=True)
class PolicyParams:
    """Tuning of the regulator, by concern; defaults are the shipped ones (tuned on the traces).
    Each tunable has one name, the same in every group and in the `regulation:` config."""

    name: str = "default"
    margin: MarginParams = MarginParams()
    damping: DampingParams = DampingParams()
    linky: LinkyParams = LinkyParams()
    relay: RelayParams = RelayParams()
    legacy: LegacyParams = LegacyParams()

    @classmethod
    def from_flat(cls, name: str = "default", **values: float) -> PolicyParams:
        """The params with `values` (flat names, as in the config) put in their groups; a name
        no group has is a TypeError, as a misspelt keyword is."""
        unknown = set(values) - set(flat_names())
        if unknown:
            raise TypeError(f"unknown policy parameter(s): {', '.join(sorted(unknown))}")
        groups = {
            group: kind(**{f.name: values[f.name] for f in fields(kind) if f.name in values})
            for group, kind in GROUPS.items()
        }
        return cls(name, **groups)


def flat_names() -> list[str]:
    """Every tunable's name, group by group."""
    return [f.name for kind in GROUPS.values() for f in fields(kind)]


@dataclass(frozen=True, slots=True)
class Frame:
    """One tick as every policy sees it after the shared framing: forced and idle loads have
    their power in `power`, the surplus loads are `flexible`, and the meter is fresh."""

    snapshot: MeterSnapshot  # grid_w and sampled_at are known
    loads: Sequence[LoadView]
    flexible: list[LoadView]
    power: dict[str, float]  # filled in by the policy for `flexible`
    reasons: dict[str, str]
    limits: dict[str, str]  # why a load does not draw more (machines/export.py)


Spread = Callable[[Frame, PolicyParams, float, PolicyMemo], Decision]


@dataclass(frozen=True, slots=True)
class Policy:
    """A regulation policy: how it spreads the surplus over the surplus loads, and the flags the
    framing and the shell ask about."""

    name: str
    spread: Spread
    tops_up: bool = True  # satisfied heaters below temp_max may take leftover surplus
    seed_rule: bool = False  # the planner applies the seed's schedule rule (docs/schedules.md)


class UnknownPolicy(UnknownName):
    """A `regulation.policy` no module registered."""


POLICIES: Registry[Policy] = Registry("policy", UnknownPolicy)


def register_policy(policy: Policy, *, replace: bool = False) -> Policy:
    """Make `policy.name` a valid `regulation.policy`."""
    return POLICIES.register(policy.name, policy, replace=replace)


def get_policy(name: str) -> Policy:
    """The registered policy called `name`; UnknownPolicy otherwise."""
    return POLICIES.get(name)


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
    limits: dict[str, str] = {}
    flexible: list[LoadView] = []
    for view in loads:
        name = view.spec.name
        if view.state in FORCED_STATES:
            power[name] = view.forced_w if view.forced_w is not None else view.spec.max_w
            reasons[name] = view.reason
            limits[name] = FULL if power[name] >= view.spec.max_w else "forced"
        elif view.state is State.SOLAR or (view.tops_up and policy.tops_up):
            flexible.append(view)
        else:
            power[name] = 0.0
            reasons[name] = view.reason
            limits[name] = _idle_limit(view)

    if snapshot.stale or snapshot.grid_w is None or snapshot.sampled_at is None:
        for view in flexible:
            power[view.spec.name] = 0.0
            reasons[view.spec.name] = "meter_stale"
            limits[view.spec.name] = "meter_stale"
        return _finish(loads, power, reasons, memo, now, limits=limits)
    frame = Frame(snapshot, loads, flexible, power, reasons, limits)
    return policy.spread(frame, params, now, memo)


def _idle_limit(view: LoadView) -> str:
    """Why a load the policy does not steer takes nothing."""
    if view.mode is Mode.MANUAL:
        return "manual"
    if view.reason in ("meter_stale", "disabled"):
        return view.reason
    return "satisfied"


def _dimmer_limit(view: LoadView, p: float, why: str) -> str:
    """`full` at max power, else what held the load back."""
    return FULL if p >= view.spec.max_w - CHANGE_EPS_W else why


def _spread_default(frame: Frame, params: PolicyParams, now: float, memo: PolicyMemo) -> Decision:
    """Aim at the measured imbalance less a margin, once the last command has settled."""
    snapshot = frame.snapshot
    memo = _learn(snapshot, frame.loads, params.damping, memo)
    if not settled(snapshot, memo, params.damping):
        return hold_while_settling(frame, memo, now)
    memo = _identify_q(snapshot, params.linky, memo)
    imbalance = measure_imbalance(snapshot, memo, params.linky, now)
    margin = choose_margin(imbalance, frame.flexible, memo, params.margin)
    aim = aim_below_balance(snapshot, imbalance, margin, memo, params, now)
    rise_share, gain = damp_rise(aim, imbalance.grid_w, memo, params.damping)
    power = frame.power
    fixed_now = sum(power.values())
    drawn_now = sum(v.setpoint_w for v in frame.loads)
    error = aim.error_w
    budget = drawn_now + (error * rise_share if error > 0 else error) - fixed_now
    order = [v for v in frame.flexible if not v.tops_up] + [v for v in frame.flexible if v.tops_up]
    relays = decide_relays(order, budget, params.relay, now, memo)
    relays_changed = any(
        (v.spec.name in relays.on) != (v.setpoint_w > 0) for v in order if v.spec.kind is Kind.RELAY
    )
    # Dead band on the export side only: a small export is the aim, any import is corrected.
    in_band = (
        imbalance.grid_w <= 0.0 and error < margin.band_w and not relays_changed and not aim.hidden
    )
    if in_band:  # inside the band, a fraction of the error: noise averages out, no churn
        budget = drawn_now + error * params.damping.band_gain - fixed_now
    remaining = budget - sum(_nominal(v, memo) for v in order if v.spec.name in relays.on)
    held = "damping" if rise_share < 1.0 and error > 0 else "margin"
    for view in order:
        name = view.spec.name
        if view.spec.kind is Kind.RELAY:
            on = name in relays.on
            power[name] = _nominal(view, memo) if on else 0.0
            frame.reasons[name], frame.limits[name] = explain_relay(view, on, relays.reasons)
            continue
        p, why = spread_over_dimmer(view, remaining, in_band, held, margin.margin_w, params)
        remaining -= p
        power[name] = p
        frame.reasons[name] = _running_reason(view, p > 0)
        frame.limits[name] = _dimmer_limit(view, p, why)
    memo = _crossing(snapshot, memo, params.linky, now, aim.sign_step_w)  # reads the last S, step
    memo = remember(snapshot, frame.loads, order, power, imbalance, margin, aim, gain, relays, memo)
    return _finish(
        frame.loads, power, frame.reasons, memo, now, snapshot.grid_w, limits=frame.limits
    )


def settled(snapshot: MeterSnapshot, memo: PolicyMemo, params: DampingParams) -> bool:
    """Decide only on a sample taken `settle_s` after the last command: an earlier one shows
    the loads before they followed it."""
    assert snapshot.sampled_at is not None
    return memo.last_command_at is None or (
        snapshot.sampled_at >= memo.last_command_at + params.settle_s
    )


def hold_while_settling(frame: Frame, memo: PolicyMemo, now: float) -> Decision:
    """The surplus loads keep their setpoint until a settled sample comes. No sample since the
    command: the export beyond it is the sampling's (`margin`); one inside `settle_s`: the
    command is still settling."""
    assert memo.last_command_at is not None and frame.snapshot.sampled_at is not None
    waiting = "margin" if frame.snapshot.sampled_at <= memo.last_command_at else "settling"
    for view in frame.flexible:
        name = view.spec.name
        frame.power[name] = view.setpoint_w
        frame.reasons[name] = "settling"
        full = view.setpoint_w >= view.spec.max_w - CHANGE_EPS_W
        if view.spec.kind is Kind.RELAY:
            frame.limits[name] = FULL if view.setpoint_w > 0 else "relay_start"
        else:
            frame.limits[name] = FULL if full else waiting
    return _finish(frame.loads, frame.power, frame.reasons, memo, now, limits=frame.limits)


@dataclass(frozen=True, slots=True)
class Imbalance:
    """What the house exchanges with the grid, as far as the meter lets us know."""

    grid_w: float  # the active power to regulate on (+ import)
    q_var: float | None  # a Linky's reactive power the estimate took P from
    q_tol_var: float | None  # ... and how far it is trusted (None: not at all)
    near: bool  # near the balance: the meter gives the sign of P, hardly its size


def measure_imbalance(
    snapshot: MeterSnapshot, memo: PolicyMemo, params: LinkyParams, now: float
) -> Imbalance:
    """The grid power from the freshest Q we trust (a crossing, our own steps, ERQT)."""
    q, tol = _reactive(snapshot, memo, params, now)
    grid = _grid_estimate(snapshot, q, tol)
    return Imbalance(grid, q, tol, _near_balance(snapshot, q, tol, params))


@dataclass(frozen=True, slots=True)
class Margin:
    """How far below the balance to aim, the dead band around it, and the noise they read."""

    margin_w: float
    band_w: float
    noise_w: float


def choose_margin(
    imbalance: Imbalance, flexible: Sequence[LoadView], memo: PolicyMemo, params: MarginParams
) -> Margin:
    """Margin and band from the meter's noise and the surplus: a small surplus is precious, a
    large one noisy. The noise is learnt where P is resolved: near the balance the estimate's
    error is not the house's noise."""
    grid = imbalance.grid_w
    noise = memo.noise_w if imbalance.near else _noise(memo, grid, params)
    if noise is None:  # nothing observed yet: the fixed margin and band
        return Margin(params.margin_start_w, params.balance_band_w, params.noise_start_w)
    surplus = max(sum(v.setpoint_w for v in flexible) - grid, 0.0)
    margin = max(params.noise_margin_gain * noise, params.surplus_margin_share * surplus)
    margin = min(max(margin, params.margin_min_w), params.margin_w)
    band = max(params.noise_band_gain * noise, params.surplus_band_share * surplus)
    band = min(max(band, params.band_min_w), params.balance_band_w)
    return Margin(margin, band, noise)


@dataclass(frozen=True, slots=True)
class Aim:
    """How much more (+) or less (−) the loads should draw, and whether the export's size is
    hidden (a Linky's S ≤ Q): then the move is a creep or a step by the sign."""

    error_w: float
    hidden: bool
    sign_step_w: float | None  # near the balance, the step by the sign (None: on the estimate)


def aim_below_balance(
    snapshot: MeterSnapshot,
    imbalance: Imbalance,
    margin: Margin,
    memo: PolicyMemo,
    params: PolicyParams,
    now: float,
) -> Aim:
    """The error to the aim (the balance less the margin); creep when the sign says export but
    Q hides how much; near the balance, step by the sign instead."""
    grid, m = imbalance.grid_w, margin.margin_w
    error = -grid - m
    hidden = snapshot.apparent_va is not None and snapshot.apparent_va < 0 and grid > -m
    if hidden:
        error = max(error, params.damping.creep_w)
    if imbalance.near:
        assert imbalance.q_var is not None and imbalance.q_tol_var is not None
        q, tol = imbalance.q_var, imbalance.q_tol_var
        step = _sign_step(snapshot, grid, q, tol, memo, params.linky, now, m)
        if step is not None:
            return Aim(step, True, step)
    return Aim(error, hidden, None)


def damp_rise(
    aim: Aim, grid_w: float, memo: PolicyMemo, params: DampingParams
) -> tuple[float, float]:
    """(share of the error this rise takes, the gain for the next rise). Cut imports at once;
    take surplus at once too, unless the last rise overshot into an import (a lagging Q after
    a reactive step does that): then rise by halves. This rise takes the share in force, the
    next one twice that (doubling first undid every halving before it was applied)."""
    gain = memo.rise_gain
    if aim.sign_step_w is not None:
        return 1.0, gain  # steps by the sign are small already: no damping, no learning
    if aim.error_w < 0 and grid_w > 0 and memo.last_move > 0:
        return gain, max(gain / 2, params.min_rise_gain)
    if aim.error_w > 0:
        return gain, min(gain * 2, 1.0)
    return gain, gain


def spread_over_dimmer(
    view: LoadView,
    remaining: float,
    in_band: bool,
    held: str,
    margin_w: float,
    params: PolicyParams,
) -> tuple[float, str]:
    """(power, why not more) for one dimmer from what is left of the budget: inside the band a
    step too small is not worth a command, the margin may pay for the step up to min_power,
    and below min_power a dimmer is off."""
    if in_band and params.damping.band_gain == 0:
        return view.setpoint_w, "margin"
    p = min(max(remaining, 0.0), view.spec.max_w)
    if in_band and abs(p - view.setpoint_w) < params.damping.band_min_step_w:
        p = view.setpoint_w
    why = "margin" if in_band else held
    min_w = view.spec.min_power_w
    if p < min_w <= p + margin_w and p > 0:
        p = min_w
    if p < min_w:
        return 0.0, ("min_power" if p > 0 else held)
    return p, why


def explain_relay(view: LoadView, on: bool, held: dict[str, str]) -> tuple[str, str]:
    """(reason, limit) of a relay: a min on/off hold says so, else whether it runs."""
    hold = held.get(view.spec.name)
    limit = FULL if on else ("min_off" if hold == "min_off_hold" else "relay_start")
    return hold or _running_reason(view, on), limit


def remember(
    snapshot: MeterSnapshot,
    loads: Sequence[LoadView],
    order: Sequence[LoadView],
    power: dict[str, float],
    imbalance: Imbalance,
    margin: Margin,
    aim: Aim,
    gain: float,
    relays: RelayPlan,
    memo: PolicyMemo,
) -> PolicyMemo:
    """What the next tick needs of this one: the move's sign, the grid it aims at (to measure
    the noise), S and the step taken (to identify Q), the relays' timers."""
    move = sum(power[v.spec.name] - v.setpoint_w for v in order)
    # Built whole, not by `replace` (a fifth of the policy's time): every field is named here.
    return PolicyMemo(
        last_command_at=memo.last_command_at,
        last_move=memo.last_move if abs(move) < CHANGE_EPS_W else math.copysign(1.0, move),
        rise_gain=gain,
        noise_w=margin.noise_w,
        expected_grid_w=imbalance.grid_w + move if aim.sign_step_w is None else None,
        s_prev_va=snapshot.apparent_va,
        step_prev_w=sum(power[v.spec.name] - v.setpoint_w for v in loads),
        q_id_var=memo.q_id_var,
        q_id_at=memo.q_id_at,
        sign_crossed_at=memo.sign_crossed_at,
        q_cross_var=memo.q_cross_var,
        q_cross_at=memo.q_cross_at,
        relay_timers=relays.timers,
        learned_w=memo.learned_w,
        pending_learn=memo.pending_learn,
    )


def _noise(memo: PolicyMemo, grid: float, params: MarginParams) -> float | None:
    """Fold the surprise of this sample (the grid less what the last decision aimed at) into
    the noise mean; outliers count only so much. None before any decision; unchanged when the
    last decision aimed at no estimate (a step by the sign)."""
    if memo.expected_grid_w is None or memo.noise_w is None:
        return memo.noise_w
    surprise = abs(grid - memo.expected_grid_w)
    surprise = min(surprise, params.noise_clip * memo.noise_w + params.band_min_w)
    return memo.noise_w + params.noise_share * (surprise - memo.noise_w)


def _identify_q(snapshot: MeterSnapshot, params: LinkyParams, memo: PolicyMemo) -> PolicyMemo:
    """Q from the last step of the loads: with S₁ before and S₂ after a known change ΔL of the
    active power, P₁ = (S₂² − S₁² − ΔL²) / 2ΔL and Q² = S₁² − P₁². Near the balance, where
    P = √(S² − Q²) is most sensitive to Q, the other flows' drift hardly matters (it enters
    as P₂·drift/ΔL). Kept only when it agrees with the ERQT estimate."""
    s2, s1, step = snapshot.apparent_va, memo.s_prev_va, memo.step_prev_w
    if s2 is None or s1 is None or abs(step) < params.q_id_min_step_w:
        if s2 is None and s1 is not None:
            return replace(memo, s_prev_va=None)  # no S now: the last one is no reference
        return memo
    p1 = (s2 * s2 - s1 * s1 - step * step) / (2.0 * step)
    q2 = s1 * s1 - p1 * p1
    ref = snapshot.reactive_timed_var
    if ref is None:
        ref = snapshot.reactive_var
    if q2 < 0 or ref is None:
        return memo
    q = math.sqrt(q2)
    if abs(q - ref) > max(params.q_id_tolerance * ref, 15.0):
        return memo
    return replace(memo, q_id_var=q, q_id_at=snapshot.sampled_at)


def _reactive(
    snapshot: MeterSnapshot, memo: PolicyMemo, params: LinkyParams, now: float
) -> tuple[float | None, float | None]:
    """The Q to take P from, and how far we trust it (var; None: not at all): from a crossing
    when fresh, else identified from our own steps when fresh, else timed on the ERQT steps,
    else the seed's."""
    q = snapshot.reactive_timed_var
    tol: float | None = params.q_timed_import_tol_var
    if q is None:
        q, tol = snapshot.reactive_var, None
    for value, at, ttl, trust in (
        (memo.q_id_var, memo.q_id_at, params.q_id_ttl_s, params.q_id_import_tol_var),
        (memo.q_cross_var, memo.q_cross_at, params.q_cross_ttl_s, params.sign_quantum_va),
    ):
        if value is not None and at is not None and now - at <= ttl:
            q, tol = value, trust
    return q, tol


def _grid_estimate(snapshot: MeterSnapshot, q: float | None, tol: float | None) -> float:
    """Active power to regulate on: for a Linky, bounded by what S and Q (trusted to `tol`)
    allow."""
    s = snapshot.apparent_va
    if tol and s is not None and q is not None and 0 < s < q:
        # An import whose S hides under Q: with a Q we trust to `tol`, the true Q ≥ S − tol,
        # so P ≤ √(2·S·tol). The seed's Q may lag a reactive step: then assume P = S.
        return min(s, math.sqrt(2.0 * s * tol))
    if snapshot.apparent_va is not None and q is not None:
        return active_power_bounded(snapshot.apparent_va, q)
    assert snapshot.grid_w is not None
    return snapshot.grid_w


def _near_balance(
    snapshot: MeterSnapshot, q: float | None, tol: float | None, params: LinkyParams
) -> bool:
    """Near the balance a Linky shows the sign of P, hardly its size: S ≈ Q, so 1 VA of S or
    1 var of Q is tens of watts of P."""
    s = snapshot.apparent_va
    if s is None or q is None or tol is None or params.sign_step_w <= 0:
        return False
    return abs(s) < q + tol + params.sign_quantum_va + params.sign_resolve_va


def _sign_step(
    snapshot: MeterSnapshot,
    grid: float,
    q: float,
    tol: float,
    memo: PolicyMemo,
    params: LinkyParams,
    now: float,
    margin: float,
) -> float | None:
    """Near the balance, step by the sign: rise by what P surely exceeds (at least
    `sign_step_w`); after a rise that crossed into an import, go back by that rise (the import
    is at most that) and the margin. None: regulate on the estimate."""
    s = snapshot.apparent_va
    assert s is not None
    if s < 0:  # an export: at least what S minus its error exceeds Q plus its error
        sure = math.sqrt(max((abs(s) - params.sign_quantum_va) ** 2 - (q + tol) ** 2, 0.0))
        crossed = memo.sign_crossed_at
        if crossed is not None and now - crossed < params.sign_hold_s:
            return sure  # just back from an import: stay a while
        return max(sure, params.sign_step_w)
    prev, rise = memo.s_prev_va, memo.step_prev_w
    if prev is not None and prev < 0 and rise > 0:  # crossed on our own rise
        return -(min(rise, max(grid, 0.0)) + max(params.sign_step_w, margin))
    return None


def _crossing(
    snapshot: MeterSnapshot,
    memo: PolicyMemo,
    params: LinkyParams,
    now: float,
    sign_step: float | None,
) -> PolicyMemo:
    """A small rise of ours just took an export into an import: P ≈ 0 at both samples, so
    both |S| are Q to within the meter's quantum, a finer Q than ERQT or our steps give."""
    if sign_step is None or sign_step >= 0:
        return memo
    s, prev = snapshot.apparent_va, memo.s_prev_va
    if s is None or prev is None or memo.step_prev_w > params.q_cross_max_rise_w:
        return replace(memo, sign_crossed_at=now)
    return replace(memo, sign_crossed_at=now, q_cross_var=(s - prev) / 2.0, q_cross_at=now)


def _running_reason(view: LoadView, running: bool) -> str:
    if view.tops_up:
        return "topping_up" if running else "satisfied"
    return "surplus" if running else "no_surplus"


def _nominal(view: LoadView, memo: PolicyMemo) -> float:
    return memo.learned_w.get(view.spec.name, view.spec.max_w)


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """Which relays run, their start/stop timers, and the min on/off holds (the reason)."""

    on: set[str]
    timers: dict[str, RelayTimer]
    reasons: dict[str, str]


def decide_relays(
    order: Sequence[LoadView], budget: float, params: RelayParams, now: float, memo: PolicyMemo
) -> RelayPlan:
    """Which relays run: walk in priority order, dimmers tentatively taking what they can,
    so a relay starts on what is left once the loads above it are served; a running one
    stops only when the whole budget (less the relays above) falls short of it."""
    on: set[str] = set()
    timers: dict[str, RelayTimer] = {}
    reasons: dict[str, str] = {}
    left = budget
    whole = budget  # the same less the relays only: what a running relay has if dimmers yield
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
        elif running and whole < nominal - params.relay_stop_tolerance_w:
            # Integrate the shortfall of the whole budget (the dimmers above yield to a running
            # relay, as they do in min_on_s: stopping costs min_off_s of export when the sun is
            # back): a deep cloud stops the relay soon, a slow sunset later, a passing dip not
            # at all.
            dt = 0.0 if timer.deficit_at is None else now - timer.deficit_at
            short = nominal - params.relay_stop_tolerance_w - whole
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
            whole -= nominal
    return RelayPlan(on, timers, reasons)


def _learn(
    snapshot: MeterSnapshot, loads: Sequence[LoadView], params: DampingParams, memo: PolicyMemo
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
    *,
    limits: dict[str, str] | None = None,
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
    return Decision(power, reasons, memo, changed, limits if limits is not None else {})


def _spread_legacy(frame: Frame, params: PolicyParams, now: float, memo: PolicyMemo) -> Decision:
    """The seed's evaluate(), then the shared bookkeeping (no power learning)."""
    assert frame.snapshot.grid_w is not None
    _legacy(frame.snapshot.grid_w, frame.flexible, params.legacy, frame.power, frame.reasons)
    grid = frame.snapshot.grid_w
    why = "margin" if abs(grid) <= params.legacy.legacy_threshold_w else "damping"
    blocked = False
    for view in frame.flexible:
        name = view.spec.name
        p = frame.power[name]
        if view.spec.kind is Kind.RELAY:
            frame.limits[name] = FULL if p > 0 else "relay_start"
        else:
            frame.limits[name] = _dimmer_limit(view, p, "blocked" if blocked else why)
        blocked = blocked or (view.is_temp_driven and grid < -params.legacy.legacy_threshold_w)
    return _finish(frame.loads, frame.power, frame.reasons, memo, now, limits=frame.limits)


def _legacy(
    grid_w: float,
    flexible: Sequence[LoadView],
    params: LegacyParams,
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
