"""One load's device link: pvopt's commands written the way its preset says, the device's
reports read back, and (for the virtual house) its commands read the way the device would."""

from __future__ import annotations

from dataclasses import dataclass

from machines.model import DeviceReport
from pvopt.devices.curve import dimmer_percent, dimmer_power
from pvopt.devices.preset import DeviceWiring


@dataclass(frozen=True, slots=True)
class DeviceLink:
    """The `Codec` of one load (machines/wiring.py): a relay switched, or a dimmer set to the
    firing percent its `curve` gives for the power."""

    wiring: DeviceWiring
    dimmer: bool
    curve: str = "phase_angle"

    @property
    def preset(self) -> str:
        return self.wiring.preset

    @property
    def command_topic(self) -> str:
        return self.wiring.command_topic(self.dimmer)

    def encode(self, power_w: float, max_w: float) -> str:
        if self.dimmer:
            return self.wiring.level(dimmer_percent(power_w, max_w, self.curve), power_w)[1]
        return self.wiring.switch(power_w > 0)[1]

    def decode(self, payload: str, max_w: float) -> float:
        """The power a command asks for, as the device reads it; ValueError otherwise."""
        if self.dimmer:
            percent = self.wiring.parse_level(payload)
            if percent is None:
                raise ValueError(f"not a {self.preset} dimmer command: {payload!r}")
            return dimmer_power(percent, max_w, self.curve)
        on = self.wiring.parse_switch(payload)
        if on is None:
            raise ValueError(f"not a {self.preset} switch command: {payload!r}")
        return max_w if on else 0.0

    def state_topic(self) -> str | None:
        return self.wiring.state_topic(self.dimmer)

    def power_topic(self) -> str | None:
        return self.wiring.power_topic(self.dimmer)

    def availability_topic(self) -> str | None:
        return self.wiring.availability_topic()

    def report_topics(self) -> tuple[str, ...]:
        """Where the device reports (state, power, availability), each topic once."""
        found = (self.state_topic(), self.power_topic(), self.availability_topic())
        return tuple(dict.fromkeys(t for t in found if t is not None))

    def read(self, topic: str, payload: str) -> DeviceReport:
        """What a message on one of `report_topics()` says; empty when it says nothing."""
        w, dimmer = self.wiring, self.dimmer
        online = w.read_online(payload) if topic == w.availability_topic() else None
        on = level = power = None
        if topic == self.state_topic():
            on = w.read_on(dimmer, payload)
            level = w.read_level(payload) if dimmer else None
        if topic == self.power_topic():
            power = w.read_power(dimmer, payload)
            if power is not None and not 0.0 <= power < 1e6:
                power = None  # a negative or absurd reading is no measurement
        return DeviceReport(online=online, on=on, level_percent=level, power_w=power)
