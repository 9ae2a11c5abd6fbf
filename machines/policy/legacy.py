"""The `legacy` policy: the seed's `evaluate()`, flaws included, for comparison."""

from __future__ import annotations

from collections.abc import Sequence

from machines.export import FULL
from machines.model import Decision, Kind, LoadView, PolicyMemo
from machines.policy.framing import Frame, Policy, dimmer_limit, finish, register_policy
from machines.policy.params import LegacyParams, PolicyParams


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
            frame.limits[name] = dimmer_limit(view, p, "blocked" if blocked else why)
        blocked = blocked or (view.is_temp_driven and grid < -params.legacy.legacy_threshold_w)
    return finish(frame.loads, frame.power, frame.reasons, memo, now, limits=frame.limits)


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


register_policy(Policy("legacy", _spread_legacy, tops_up=False, seed_rule=True))
