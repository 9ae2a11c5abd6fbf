"""Why the house exports (docs/regulation.md, docs/kpis.md): each watt of export is charged to
the load that could still have taken it and the reason that load's last decision gave for not
taking more.

Pure and shared: the simulator charges true per-second flows, the ledger the meter's held value,
the status the current sample — one rule, so the three agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from machines.value import value

NOTHING_LEFT = "nothing_left"
BETWEEN_SAMPLES = "between_samples"
FULL = "full"

# Every reason a report may show, in display order, with the words a user reads.
EXPORT_REASONS: dict[str, str] = {
    NOTHING_LEFT: "nothing left to take (every load full or satisfied)",
    "margin": "margin and dead band (the aimed small export, meter uncertainty)",
    BETWEEN_SAMPLES: "surplus rose since the last meter sample",
    "settling": "waiting for a meter sample taken after the last command",
    "damping": "rising by steps after an overshoot into import",
    "min_power": "surplus below the load's min_power",
    "relay_start": "relay waiting for its start budget",
    "min_off": "relay inside its min_off_s",
    "meter_stale": "meter stale: loads shed",
    "satisfied": "satisfied (reached its goal, not topping up)",
    "manual": "manual off",
    "forced": "forced below its max power",
    "blocked": "a higher-priority load ends the pass (legacy)",
}

_SHORT: dict[str, str] = {
    NOTHING_LEFT: "nothing left",
    BETWEEN_SAMPLES: "between samples",
    "relay_start": "relay waiting",
    "min_off": "relay min-off",
    "manual": "manual off",
    "min_power": "min power",
    "meter_stale": "meter stale",
}

# Limits under which a load follows the meter: export beyond the last sample's surplus is the
# sampling's, not the margin's.
_TRACKING = frozenset({"margin"})


@value
class Room:
    """What one load could still take now, and why its decision did not."""

    room_w: float
    limit: str
    continuous: bool = True  # a dimmer; a relay can only take its whole step


def short_label(reason: str) -> str:
    """A few words for tables."""
    return _SHORT.get(reason, reason.replace("_", " "))


def room_w(
    max_w: float,
    setpoint_w: float,
    relay: bool,
    *,
    enabled: bool = True,
    temperature_c: float | None = None,
    temp_max: float | None = None,
) -> float:
    """Power a load could still take: none when disabled, full, or at its `temp_max`."""
    if not enabled or (
        temperature_c is not None and temp_max is not None and temperature_c >= temp_max
    ):
        return 0.0
    if relay:
        return 0.0 if setpoint_w > 0 else max_w
    return max(max_w - setpoint_w, 0.0)


def attribute_export(
    export_w: float, rooms: Iterable[Room], lag_w: float = 0.0
) -> dict[str, float]:
    """Split `export_w` by reason: continuous loads first, then relays, each in priority order,
    each charged up to its room; `lag_w` (surplus risen since the last sample) goes to
    `between_samples` out of what tracking loads are charged; the rest is `nothing_left`."""
    out: dict[str, float] = {}
    if export_w <= 0:
        return out
    ordered = sorted(rooms, key=lambda r: not r.continuous)  # stable: priority kept
    left = export_w
    lag = max(lag_w, 0.0)
    for r in ordered:
        if left <= 0:
            break
        if r.room_w <= 0 or r.limit == FULL:
            continue
        take = min(left, r.room_w)
        left -= take
        if r.limit in _TRACKING and lag > 0:
            lagged = min(take, lag)
            lag -= lagged
            take -= lagged
            out[BETWEEN_SAMPLES] = out.get(BETWEEN_SAMPLES, 0.0) + lagged
        if take > 0:
            out[r.limit] = out.get(r.limit, 0.0) + take
    if left > 0:
        out[NOTHING_LEFT] = out.get(NOTHING_LEFT, 0.0) + left
    return out


def main_reason(by_reason: Mapping[str, float]) -> str | None:
    """The reason carrying most of the export (None: no export)."""
    best = max(by_reason.items(), key=lambda kv: kv[1], default=None)
    return None if best is None or best[1] <= 0 else best[0]


def ordered(by_reason: Mapping[str, float]) -> list[tuple[str, float]]:
    """Reasons by decreasing energy, `nothing_left` first when present (what users ask first)."""
    items = [(k, v) for k, v in by_reason.items() if v > 0 and math.isfinite(v)]
    return sorted(items, key=lambda kv: (kv[0] != NOTHING_LEFT, -kv[1]))
