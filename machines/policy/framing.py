"""What every policy shares: the registry, the framing of a tick (forced and idle loads take
their power, a stale meter sheds the surplus loads) and the bookkeeping of a decision."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from machines.export import FULL
from machines.model import FORCED_STATES, Decision, LoadView, MeterSnapshot, Mode, PolicyMemo, State
from machines.policy.params import PolicyParams
from machines.registry import Registry, UnknownName
from machines.value import value

CHANGE_EPS_W = 0.5  # setpoint changes smaller than this are not commands


@value
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


@value
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
        return finish(loads, power, reasons, memo, now, limits=limits)
    frame = Frame(snapshot, loads, flexible, power, reasons, limits)
    return policy.spread(frame, params, now, memo)


def _idle_limit(view: LoadView) -> str:
    """Why a load the policy does not steer takes nothing."""
    if view.mode is Mode.MANUAL:
        return "manual"
    if view.reason in ("meter_stale", "disabled"):
        return view.reason
    return "satisfied"


def dimmer_limit(view: LoadView, p: float, why: str) -> str:
    """`full` at max power, else what held the load back."""
    return FULL if p >= view.spec.max_w - CHANGE_EPS_W else why


def finish(
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
