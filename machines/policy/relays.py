"""When the all-or-nothing loads run: start on a budget that lasts, stop on an integrated
shortfall, hold min on/off times (docs/regulation.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from machines.model import Kind, LoadView, PolicyMemo, RelayTimer
from machines.policy.params import RelayParams, SunParams
from machines.value import value

INF = math.inf


def running_reason(view: LoadView, running: bool) -> str:
    if view.tops_up:
        return "topping_up" if running else "satisfied"
    return "surplus" if running else "no_surplus"


def nominal_w(view: LoadView, memo: PolicyMemo) -> float:
    return memo.learned_w.get(view.spec.name, view.spec.max_w)


@value
class Outlook:
    """What the sun says of the next `sun_horizon_s` (machines/sun.py): the PV production's
    expected change (W, + rising), and the rule's tuning."""

    change_w: float
    params: SunParams


@value
class RelayPlan:
    """Which relays run, their start/stop timers, and the min on/off holds (the reason)."""

    on: set[str]
    timers: dict[str, RelayTimer]
    reasons: dict[str, str]


def decide_relays(
    order: Sequence[LoadView],
    budget: float,
    params: RelayParams,
    now: float,
    memo: PolicyMemo,
    outlook: Outlook | None = None,
) -> RelayPlan:
    """Which relays run: walk in priority order, dimmers tentatively taking what they can,
    so a relay starts on what is left once the loads above it are served; a running one
    stops only when the whole budget (less the relays above) falls short of it.

    With an `outlook` (the sun-aware rule) a start must cover the relay now and over the
    horizon, and a running relay short now rides out a dip the sky ahead covers but stops
    soon when the sky ahead is short too."""
    start_headroom, on_delay = params.relay_start_headroom_w, params.relay_on_delay_s
    change = 0.0
    if outlook is not None:
        change = outlook.change_w
        start_headroom, on_delay = (
            outlook.params.sun_start_headroom_w,
            outlook.params.sun_on_delay_s,
        )
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
        nominal = nominal_w(view, memo)
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
            limit = params.relay_stop_deficit_wh
            if outlook is not None:
                sun = outlook.params
                limit = sun.sun_stop_short_wh if short - change > 0 else sun.sun_stop_deficit_wh
            if deficit >= limit:
                keep = False
            else:
                new_timer = RelayTimer(deficit_wh=deficit, deficit_at=now)
        elif not running and _covers(left, change, nominal, start_headroom, outlook is not None):
            since = timer.want_on_since if timer.want_on_since is not None else now
            if now - since >= on_delay:
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


def _covers(left: float, change: float, nominal: float, headroom: float, sun: bool) -> bool:
    """Whether what is left covers a relay's start: now and beyond by `headroom`; with the
    sun's outlook, now and, beyond by `headroom`, over the horizon."""
    if not sun:
        return left >= nominal + headroom
    return left >= nominal and left + change >= nominal + headroom
