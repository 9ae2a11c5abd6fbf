"""`sim:` — what the simulator and the virtual house assume; `pvopt run` ignores it."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator

from pvopt.config.types import HHMM
from pvopt.kinds import Celsius, Strict


class MeterSimConfig(Strict):
    period_s: float = Field(2.0, gt=0, le=60)
    quantum_va: float = Field(1.0, gt=0, le=1000)
    reactive_ratio: float = Field(0.25, ge=0, le=2)
    # with meter.pv_topic: how often the inverter reports its production, and how late
    pv_period_s: float = Field(5.0, gt=0, le=300)
    pv_lag_s: float = Field(2.0, ge=0, le=300)


class SimConfig(Strict):
    meter: MeterSimConfig = MeterSimConfig()
    ambient_c: Celsius = 20.0
    cold_water_c: Celsius = 15.0
    draws: list[tuple[str, float]] = [
        ("07:00", 40.0),
        ("07:15", 30.0),
        ("13:00", 10.0),
        ("19:30", 50.0),
        ("21:00", 30.0),
    ]
    # the Tempo colour of each day the simulator plays (a day not listed: blue)
    tempo_calendar: dict[date, Literal["blue", "white", "red"]] = {}

    @field_validator("draws")
    @classmethod
    def _draw_times(cls, value: list[tuple[str, float]]) -> list[tuple[str, float]]:
        for at, litres in value:
            if not HHMM.match(at):
                raise ValueError(f"draw time {at!r} is not 'HH:MM'")
            if litres < 0:
                raise ValueError(f"draw of {litres} litres is negative")
        return value
