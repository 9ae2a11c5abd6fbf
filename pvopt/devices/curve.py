"""A dimmer's curve: the firing percent that delivers a power from a resistive load."""

from __future__ import annotations

import math
from typing import Literal

Curve = Literal["phase_angle", "linear"]


def dimmer_percent(power_w: float, max_w: float, curve: str) -> float:
    """Phase-angle firing percent that delivers `power_w` from a resistive load (the fork's
    acos(1 − 2·P/Pmax)/π·100), or the plain ratio for a `linear` dimmer."""
    ratio = min(max(power_w / max_w, 0.0), 1.0)
    if curve == "linear":
        return ratio * 100.0
    return math.acos(1.0 - 2.0 * ratio) / math.pi * 100.0


def dimmer_power(percent: float, max_w: float, curve: str) -> float:
    """Inverse of `dimmer_percent`."""
    x = min(max(percent / 100.0, 0.0), 1.0)
    if curve == "linear":
        return x * max_w
    return (1.0 - math.cos(x * math.pi)) / 2.0 * max_w
