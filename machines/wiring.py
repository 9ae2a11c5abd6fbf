"""The MQTT wire contract the seed's users rely on (docs/topics.md): pvopt's own topics, and
where each load listens and reports. Plain data: the config derives it, the jobs use it."""

from __future__ import annotations

from typing import Protocol

from machines.model import DeviceReport, LoadSpec
from machines.value import value

STATUS_TOPIC = "regulation/status"
ONLINE_TOPIC = "regulation/online"
CONTROL_TOPIC = "regulation/control"
OWN_TOPICS = "regulation/"  # no load or meter topic may live under pvopt's own
# A dry run reports apart, so what it would have done is never read as what happened.
DRY_RUN_STATUS_TOPIC = "regulation/dry_run/status"
DRY_RUN_ONLINE_TOPIC = "regulation/dry_run/online"
PLAN_TOPIC = "regulation/plan"  # the heating plan, retained, when it changes
DRY_RUN_PLAN_TOPIC = "regulation/dry_run/plan"


def plan_topic(dry_run: bool) -> str:
    """Where a run (or a dry run) publishes its retained heating plan."""
    return DRY_RUN_PLAN_TOPIC if dry_run else PLAN_TOPIC


def status_topic(dry_run: bool) -> str:
    """Where a run (or a dry run) publishes its retained status."""
    return DRY_RUN_STATUS_TOPIC if dry_run else STATUS_TOPIC


def online_topic(dry_run: bool) -> str:
    """A run's (or a dry run's) retained `online`/`offline`, also its Last Will."""
    return DRY_RUN_ONLINE_TOPIC if dry_run else ONLINE_TOPIC


class Codec(Protocol):
    """A load's device (pvopt/devices): how a command power is written on the wire (and read
    by the virtual house), and what the device's own reports say."""

    @property
    def preset(self) -> str: ...

    def encode(self, power_w: float, max_w: float) -> str: ...

    def decode(self, payload: str, max_w: float) -> float: ...

    def read(self, topic: str, payload: str) -> DeviceReport: ...

    def availability_topic(self) -> str | None: ...

    def power_topic(self) -> str | None: ...


@value
class LoadTopics:
    """The topics of one load, derived once from its entry and kind (the seed's `scr/{id}/…`
    and `wifi_plug/{id}/…` by default): the config checks them, the service subscribes."""

    command: str
    control: str  # the seed's scr/{id}/control
    temperature: str | None  # a temperature-driven load's probe
    reports: tuple[str, ...] = ()  # where its device reports state, power, availability


@value
class LoadWiring:
    """Where one load listens and reports, and how its command is written."""

    spec: LoadSpec
    topics: LoadTopics
    retain: bool
    codec: Codec  # its device's protocol (the seed's: dimmer percent, plug 1/0)

    @property
    def command_topic(self) -> str:
        return self.topics.command

    @property
    def control_topic(self) -> str:
        return self.topics.control

    @property
    def temperature_topic(self) -> str | None:
        return self.topics.temperature

    def payload(self, power_w: float) -> str:
        """The command for `power_w` in the device's protocol (the seed's: a dimmer percent
        with one decimal, or a relay's 1/0)."""
        return self.codec.encode(power_w, self.spec.max_w)

    def power_of(self, payload: str) -> float:
        """The power a command payload asks for (the virtual house's end of the wire)."""
        return self.codec.decode(payload, self.spec.max_w)

    def read(self, topic: str, payload: str) -> DeviceReport:
        """What the device said on one of `topics.reports`."""
        return self.codec.read(topic, payload)
