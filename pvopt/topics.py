"""MQTT topics and payloads of DESIGN §2, §3, §7, §8: the wire contract the seed's users rely on."""

from __future__ import annotations

from dataclasses import dataclass

from machines.model import LoadSpec
from pvopt.config import Config
from pvopt.kinds import Codec, dimmer_percent, dimmer_power, load_kind

__all__ = [
    "CONTROL_TOPIC",
    "ONLINE_TOPIC",
    "STATUS_TOPIC",
    "LoadWiring",
    "dimmer_percent",
    "dimmer_power",
    "wiring",
]

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
    codec: Codec  # the kind's payload encoding (dimmer percent, plug 1/0)

    def payload(self, power_w: float) -> str:
        """The command for `power_w`: a dimmer percent with one decimal, or a relay's 1/0."""
        return self.codec.encode(power_w, self.spec.max_w)

    def power_of(self, payload: str) -> float:
        """The power a command payload asks for (the virtual house's end of the wire)."""
        return self.codec.decode(payload, self.spec.max_w)


def wiring(cfg: Config) -> list[LoadWiring]:
    """Each load's topics, in priority order, defaults from its kind (the seed's `scr/{id}/…`
    and `wifi_plug/{id}/…`)."""
    by_name = {eq.name: eq for eq in cfg.equipment}
    out = []
    for spec in cfg.specs():
        eq = by_name[spec.name]
        kind = load_kind(eq.type_name())
        temp_topic = None
        if kind.temperature_topic is not None:
            temp_topic = eq.probe_topic() or kind.temperature_topic.format(id=spec.id)
        out.append(
            LoadWiring(
                spec=spec,
                command_topic=eq.command_topic or kind.command_topic.format(id=spec.id),
                control_topic=f"scr/{spec.id}/control",
                temperature_topic=temp_topic,
                retain=eq.retain,
                codec=eq.codec(),
            )
        )
    return out
