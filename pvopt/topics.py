"""MQTT topics and payloads of DESIGN §2, §3, §7, §8: the wire contract the seed's users rely on."""

from __future__ import annotations

import math
from dataclasses import dataclass

from machines.model import Kind, LoadSpec
from pvopt.config import Config

STATUS_TOPIC = "regulation/status"
ONLINE_TOPIC = "regulation/online"
CONTROL_TOPIC = "regulation/control"
# A dry run reports apart, so what it would have done is never read as what happened.
DRY_RUN_STATUS_TOPIC = "regulation/dry_run/status"
DRY_RUN_ONLINE_TOPIC = "regulation/dry_run/online"


def status_topic(dry_run: bool) -> str:
    """Where a run (or a dry run) publishes its retained status."""
    return DRY_RUN_STATUS_TOPIC if dry_run else STATUS_TOPIC


def online_topic(dry_run: bool) -> str:
    """A run's (or a dry run's) retained `online`/`offline`, also its Last Will."""
    return DRY_RUN_ONLINE_TOPIC if dry_run else ONLINE_TOPIC


@dataclass(frozen=True, slots=True)
class LoadWiring:
    """Where one load listens and reports, and how its command is written."""

    spec: LoadSpec
    command_topic: str
    control_topic: str  # the seed's scr/{id}/control
    temperature_topic: str | None
    retain: bool
    linearisation: str  # phase_angle | linear (dimmers)

    def payload(self, power_w: float) -> str:
        """The command for `power_w`: a dimmer percent with one decimal, or a relay's 1/0."""
        if self.spec.kind is Kind.RELAY:
            return "1" if power_w > 0 else "0"
        return f"{dimmer_percent(power_w, self.spec.max_w, self.linearisation):.1f}"

    def power_of(self, payload: str) -> float:
        """The power a command payload asks for (the virtual house's end of the wire)."""
        value = float(payload)
        if self.spec.kind is Kind.RELAY:
            return self.spec.max_w if value > 0 else 0.0
        return dimmer_power(value, self.spec.max_w, self.linearisation)


def dimmer_percent(power_w: float, max_w: float, linearisation: str) -> float:
    """Phase-angle firing percent that delivers `power_w` from a resistive load (the fork's
    acos(1 − 2·P/Pmax)/π·100), or the plain ratio for a `linear` dimmer."""
    ratio = min(max(power_w / max_w, 0.0), 1.0)
    if linearisation == "linear":
        return ratio * 100.0
    return math.acos(1.0 - 2.0 * ratio) / math.pi * 100.0


def dimmer_power(percent: float, max_w: float, linearisation: str) -> float:
    """Inverse of `dimmer_percent`."""
    x = min(max(percent / 100.0, 0.0), 1.0)
    if linearisation == "linear":
        return x * max_w
    return (1.0 - math.cos(x * math.pi)) / 2.0 * max_w


def wiring(cfg: Config) -> list[LoadWiring]:
    """Each load's topics, in priority order (the seed's `scr/{id}/…` and `wifi_plug/{id}/…`)."""
    by_name = {eq.name: eq for eq in cfg.equipment}
    out = []
    for spec in cfg.specs():
        eq = by_name[spec.name]
        default = f"scr/{spec.id}/in" if spec.kind is Kind.DIMMER else f"wifi_plug/{spec.id}/in"
        temp_topic = None
        if spec.thresholds is not None:
            temp_topic = getattr(eq, "temperature_topic", None) or f"scr/{spec.id}/temperature"
        out.append(
            LoadWiring(
                spec=spec,
                command_topic=eq.command_topic or default,
                control_topic=f"scr/{spec.id}/control",
                temperature_topic=temp_topic,
                retain=eq.retain,
                linearisation=getattr(eq, "linearisation", "linear"),
            )
        )
    return out
