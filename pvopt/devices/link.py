"""One load's device link: pvopt's commands written the way its preset says, the device's
reports read back, and (for the virtual house) its commands read the way the device would."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # (state, power, availability) topics, resolved once: `read` runs on every device message
    _reports: tuple[str | None, str | None, str | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w, verbs = self.wiring, self.wiring.dimmer if self.dimmer else self.wiring.relay
        state = power = None
        if verbs is not None:  # a device that cannot drive its load: config check says so
            state, power = w.state_topic(self.dimmer), w.power_topic(self.dimmer)
        object.__setattr__(self, "_reports", (state, power, w.availability_topic()))

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
        return self._reports[0]

    def power_topic(self) -> str | None:
        return self._reports[1]

    def availability_topic(self) -> str | None:
        return self._reports[2]

    def report_topics(self) -> tuple[str, ...]:
        """Where the device reports (state, power, availability), each topic once."""
        return tuple(dict.fromkeys(t for t in self._reports if t is not None))

    def read(self, topic: str, payload: str) -> DeviceReport:
        """What a message on one of `report_topics()` says; empty when it says nothing."""
        w, dimmer = self.wiring, self.dimmer
        state, power_topic, availability = self._reports
        online = w.read_online(payload) if topic == availability else None
        on = level = power = None
        if topic == state:
            on = w.read_on(dimmer, payload)
            level = w.read_level(payload) if dimmer else None
        if topic == power_topic:
            power = w.read_power(dimmer, payload)
            if power is not None and not 0.0 <= power < 1e6:
                power = None  # a negative or absurd reading is no measurement
        return DeviceReport(online=online, on=on, level_percent=level, power_w=power)

    # -- the device's end (the virtual house): what it publishes about itself ---------------
    def device_state(
        self, on: bool, percent: float, power_w: float, kinds: tuple[str, ...] = ("state", "power")
    ) -> list[tuple[str, str]]:
        """What the device publishes for its state (`DeviceWiring.device_state`)."""
        return self.wiring.device_state(self.dimmer, on, percent, power_w, kinds)

    def device_availability(self, online: bool) -> tuple[str, str] | None:
        return self.wiring.device_availability(online)
