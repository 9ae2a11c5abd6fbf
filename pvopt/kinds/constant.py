"""`ConstantPowerEquipment`: a known-power load on a smart plug (pool pump)."""

from __future__ import annotations

from typing import Literal

from machines.model import Kind
from pvopt.kinds.base import Power, RelayEquipment, SpecFields
from pvopt.kinds.registry import LoadKind


class ConstantPowerEquipment(RelayEquipment):
    type: Literal["ConstantPowerEquipment"]
    nominal_power: Power

    def spec_fields(self) -> SpecFields:
        return {"max_w": self.nominal_power, "min_on_s": self.min_on_s, "min_off_s": self.min_off_s}


KIND = LoadKind(ConstantPowerEquipment, Kind.RELAY, command_topic="wifi_plug/{id}/in")
