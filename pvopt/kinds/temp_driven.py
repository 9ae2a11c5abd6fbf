"""`TempDrivenVariablePowerEquipment`: a water heater on a dimmer, steered by its probe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from machines.heat_plan import Legionella, Target
from machines.model import Kind, Thresholds
from pvopt.kinds.base import Celsius, DimmerEquipment, SpecFields, Strict, Topic
from pvopt.kinds.registry import LoadKind


class ComfortTarget(Strict):
    """At least `temp` °C at local `by`, every day (docs/planning.md)."""

    temp: Celsius
    by: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    def second_of_day(self) -> int:
        hh, mm = self.by.split(":")
        return int(hh) * 3600 + int(mm) * 60


class LegionellaCycle(Strict):
    """Reach `temp` °C at least once every `every_days` days (docs/planning.md)."""

    temp: Celsius = 60.0
    every_days: int = Field(7, ge=1, le=60)


class TempDrivenVariablePowerEquipment(DimmerEquipment):
    type: Literal["TempDrivenVariablePowerEquipment"]
    temp_min: Celsius
    temp_eco: Celsius
    temp_sol_min: Celsius
    temp_max: Celsius
    temperature_topic: Topic | None = None
    tank_litres: float | None = Field(None, gt=0, le=5000)  # eco planning; learnt after a night
    targets: list[ComfortTarget] = []  # the heating plan's own deadlines (docs/planning.md)
    legionella: LegionellaCycle | None = None

    @field_validator("temp_eco")
    @classmethod
    def _eco_above_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("temp_min")
        if low is not None and not value > low:
            raise ValueError(f"temp_eco ({value:g}) must be above temp_min ({low:g})")
        return value

    @field_validator("temp_sol_min")
    @classmethod
    def _sol_min_not_below_eco(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("temp_eco")
        if low is not None and value < low:
            raise ValueError(f"temp_sol_min ({value:g}) must not be below temp_eco ({low:g})")
        return value

    @field_validator("temp_max")
    @classmethod
    def _max_above_sol_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("temp_sol_min")
        if low is not None and not value > low:
            raise ValueError(f"temp_max ({value:g}) must be above temp_sol_min ({low:g})")
        low = info.data.get("temp_min")
        if low is not None and not value > low:
            raise ValueError(f"temp_max ({value:g}) must be above temp_min ({low:g})")
        return value

    def spec_fields(self) -> SpecFields:
        return {
            "max_w": self.max_power,
            "min_power_w": self.min_power_w,
            "thresholds": Thresholds(
                self.temp_min, self.temp_eco, self.temp_sol_min, self.temp_max
            ),
        }

    def probe_topic(self) -> str | None:
        return self.temperature_topic

    def planning_tank_litres(self) -> float | None:
        return self.tank_litres

    def comfort(self) -> tuple[list[Target], Legionella | None]:
        targets = [Target(t.temp, t.second_of_day()) for t in self.targets]
        lg = self.legionella
        return targets, None if lg is None else Legionella(lg.temp, lg.every_days)


KIND = LoadKind(
    TempDrivenVariablePowerEquipment,
    Kind.DIMMER,
    command_topic="scr/{id}/in",
    temperature_topic="scr/{id}/temperature",
)
