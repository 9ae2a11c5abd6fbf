"""`UnknownPowerEquipment`: a smart-plug load whose real power the policy learns."""

from __future__ import annotations

from typing import Literal

from machines.model import Kind
from pvopt.kinds.base import Power, RelayEquipment, SpecFields
from pvopt.kinds.registry import LoadKind


class UnknownPowerEquipment(RelayEquipment):
    type: Literal["UnknownPowerEquipment"]
    expected_power_w: Power

    def spec_fields(self) -> SpecFields:
        return {
            "max_w": self.expected_power_w,
            "min_on_s": self.min_on_s,
            "min_off_s": self.min_off_s,
        }


KIND = LoadKind(
    UnknownPowerEquipment, Kind.RELAY, command_topic="wifi_plug/{id}/in", learns_power=True
)
