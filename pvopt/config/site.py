"""`site:` — where the house is: its time zone, and where its panels are and face (for the
clear-sky curve of the sun-aware relay rule, docs/regulation.md)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from machines.sun import Plant
from pvopt.kinds import Strict


class SiteConfig(Strict):
    timezone: str = "Europe/Paris"
    latitude: float | None = Field(None, ge=-90, le=90)  # degrees, north positive
    longitude: float | None = Field(None, ge=-180, le=180)  # degrees, east positive
    tilt: float = Field(35.0, ge=0, le=90)  # the panels' tilt from horizontal
    azimuth: float = Field(180.0, ge=0, lt=360)  # compass: 0 N, 90 E, 180 S, 270 W

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def plant(self) -> Plant | None:
        """The panels for the clear-sky curve; None without a position."""
        if self.latitude is None or self.longitude is None:
            return None
        return Plant(self.latitude, self.longitude, self.tilt, self.azimuth)
