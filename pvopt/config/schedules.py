"""`schedules:` — forced-heating windows and daily minimum-energy checks (docs/schedules.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pvopt.config.types import HHMM
from pvopt.kinds import Strict, Text

DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
EVERY_DAY: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleConfig(Strict):
    name: Text
    load: str | int
    window: str | None = None
    tariff: Literal["HC"] | None = None
    at: str | None = None
    days: list[DayName] = Field(default_factory=lambda: list(EVERY_DAY))
    action: Literal["eco", "boost", "boost-deficit"] = "eco"
    min_energy_today_wh: float | None = Field(None, ge=0)
    min_energy_two_days_wh: float | None = Field(None, ge=0)

    @field_validator("window")
    @classmethod
    def _window_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.split("-")
        if len(parts) != 2 or not all(HHMM.match(p.strip()) for p in parts):
            raise ValueError(f"window {value!r} is not 'HH:MM-HH:MM'")
        if parts[0].strip() == parts[1].strip():
            raise ValueError(f"window {value!r} has zero length")
        return value

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("no day: the schedule would never run (remove `days` for every day)")
        return value

    @field_validator("at")
    @classmethod
    def _at_format(cls, value: str | None) -> str | None:
        if value is not None and not HHMM.match(value):
            raise ValueError(f"at {value!r} is not 'HH:MM'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleConfig:
        if self.at is not None and (self.window is not None or self.tariff is not None):
            raise ValueError("a schedule has either `at` or a `window`/`tariff`, not both")
        if self.at is None and self.window is None and self.tariff is None:
            raise ValueError("a schedule needs `window`, `tariff` or `at`")
        if (self.action == "boost-deficit") != (self.at is not None):
            raise ValueError("action boost-deficit goes with `at`, eco/boost with a window")
        return self
