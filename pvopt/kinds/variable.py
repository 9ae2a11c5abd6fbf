"""`VariablePowerEquipment`: a dimmer load with an optional energy target per period."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from machines.model import Kind
from pvopt.kinds.base import MAX_POWER_W, DimmerEquipment, SpecFields
from pvopt.kinds.registry import LoadKind


class VariablePowerEquipment(DimmerEquipment):
    type: Literal["VariablePowerEquipment"]
    min_energy: float | None = Field(None, gt=0, le=10 * MAX_POWER_W * 24)
    period: int = Field(86400, gt=0, le=7 * 86400)

    def spec_fields(self) -> SpecFields:
        return {
            "max_w": self.max_power,
            "min_power_w": self.min_power_w,
            "min_energy_wh": self.min_energy,
            "period_s": self.period,
        }


KIND = LoadKind(VariablePowerEquipment, Kind.DIMMER, command_topic="scr/{id}/in")
