"""The `default` policy, step by step (docs/regulation.md): measure the imbalance, choose the
margin, aim below the balance, damp the rise, decide the relays, spread over the dimmers,
explain, remember. Each step is a small pure function with its own test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from machines.export import FULL
from machines.model import Decision, Kind, LoadView, MeterSnapshot, PolicyMemo
from machines.policy.framing import (
    CHANGE_EPS_W,
    Frame,
    Policy,
    dimmer_limit,
    finish,
    register_policy,
)
from machines.policy.linky import (
    crossing,
    grid_estimate,
    identify_q,
    near_balance,
    sign_step,
    trusted_q,
)
from machines.policy.params import (
    DampingParams,
    LinkyParams,
    MarginParams,
    PolicyParams,
    SunParams,
)
from machines.policy.relays import Outlook, RelayPlan, decide_relays, nominal_w, running_reason
from machines.sun import expected_change_w, update_sky
from machines.value import value


def _spread_default(frame: Frame, params: PolicyParams, now: float, memo: PolicyMemo) -> Decision:
    """Aim at the measured imbalance less a margin, once the last command has settled."""
    snapshot = frame.snapshot
    memo = _learn(snapshot, frame.loads, params.damping, memo)
    memo = read_sky(snapshot, params.sun, memo)
    if not settled(snapshot, memo, params.damping):
        return hold_while_settling(frame, memo, now)
    memo = identify_q(snapshot, params.linky, memo)
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
    relays = decide_relays(
        order, budget, params.relay, now, memo, outlook(snapshot, params.sun, memo)
    )
    relays_changed = any(
        (v.spec.name in relays.on) != (v.setpoint_w > 0) for v in order if v.spec.kind is Kind.RELAY
    )
    # Dead band on the export side only: a small export is the aim, any import is corrected.
    in_band = (
        imbalance.grid_w <= 0.0 and error < margin.band_w and not relays_changed and not aim.hidden
    )
    if in_band:  # inside the band, a fraction of the error: noise averages out, no churn
        budget = drawn_now + error * params.damping.band_gain - fixed_now
    remaining = budget - sum(nominal_w(v, memo) for v in order if v.spec.name in relays.on)
    held = "damping" if rise_share < 1.0 and error > 0 else "margin"
    for view in order:
        name = view.spec.name
        if view.spec.kind is Kind.RELAY:
            on = name in relays.on
            power[name] = nominal_w(view, memo) if on else 0.0
            frame.reasons[name], frame.limits[name] = explain_relay(view, on, relays.reasons)
            continue
        p, why = spread_over_dimmer(view, remaining, in_band, held, margin.margin_w, params)
        remaining -= p
        power[name] = p
        frame.reasons[name] = running_reason(view, p > 0)
        frame.limits[name] = dimmer_limit(view, p, why)
    memo = crossing(snapshot, memo, params.linky, now, aim.sign_step_w)  # reads the last S, step
    memo = remember(snapshot, frame.loads, order, power, imbalance, margin, aim, gain, relays, memo)
    return finish(
        frame.loads, power, frame.reasons, memo, now, snapshot.grid_w, limits=frame.limits
    )


def read_sky(snapshot: MeterSnapshot, params: SunParams, memo: PolicyMemo) -> PolicyMemo:
    """Fold a PV sample into the sky's state (machines/sun.py); without one, nothing."""
    pv, clear, at = snapshot.pv_w, snapshot.clear_sky_w, snapshot.pv_at
    if pv is None or clear is None or at is None:
        return memo
    sky = update_sky(memo.sky, pv, clear, at, params.sun_tau_s)
    return memo if sky == memo.sky else replace(memo, sky=sky)


def outlook(snapshot: MeterSnapshot, params: SunParams, memo: PolicyMemo) -> Outlook | None:
    """The sun's outlook for the relays; None (the meter-only rule) without a fresh PV reading,
    a site, or a sun high enough to read the sky by (`update_sky`)."""
    pv, ahead = snapshot.pv_w, snapshot.clear_sky_ahead_w
    if pv is None or ahead is None or memo.sky is None:
        return None
    return Outlook(expected_change_w(memo.sky, pv, ahead, params.sun_caution), params)


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
    return finish(frame.loads, frame.power, frame.reasons, memo, now, limits=frame.limits)


@value
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
    q, tol = trusted_q(snapshot, memo, params, now)
    grid = grid_estimate(snapshot, q, tol)
    return Imbalance(grid, q, tol, near_balance(snapshot, q, tol, params))


@value
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


@value
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
        step = sign_step(snapshot, grid, q, tol, memo, params.linky, now, m)
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
    return hold or running_reason(view, on), limit


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
        sky=memo.sky,
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


register_policy(Policy("default", _spread_default))
