"""`forecast:` — where the solar forecast comes from and how often (docs/forecast.md).

`azimuth` is a compass bearing, as on a map or a phone: 0 north, 90 east, 180 south, 270 west.
Both web services count from the south instead (Open-Meteo and Forecast.Solar: 0 south, −90
east, 90 west); `vendor_azimuth` converts, so no user ever types a south-based figure.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pvopt.kinds import Strict, Text, Topic

SOURCES = ("open-meteo", "forecast-solar", "file", "topic")
HTTP_SOURCES = ("open-meteo", "forecast-solar")
# the keys each source needs, and the sources each key means something for
NEEDS: dict[str, tuple[str, ...]] = {
    "open-meteo": ("latitude", "longitude", "tilt", "azimuth", "kwp"),
    "forecast-solar": ("latitude", "longitude", "tilt", "azimuth", "kwp"),
    "file": ("file",),
    "topic": ("topic",),
}
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "latitude": HTTP_SOURCES,
    "longitude": HTTP_SOURCES,
    "tilt": HTTP_SOURCES,
    "azimuth": HTTP_SOURCES,
    "kwp": HTTP_SOURCES,
    "losses": ("open-meteo",),  # Forecast.Solar models its plant's losses itself
    "base_url": HTTP_SOURCES,
    "timeout_s": HTTP_SOURCES,
    "file": ("file",),
    "topic": ("topic",),
}


class ForecastConfig(Strict):
    source: Literal["open-meteo", "forecast-solar", "file", "topic"]
    latitude: float | None = Field(None, ge=-90, le=90)  # degrees, north positive
    longitude: float | None = Field(None, ge=-180, le=180)  # degrees, east positive
    tilt: float | None = Field(None, ge=0, le=90)  # degrees from horizontal
    azimuth: float | None = Field(None, ge=0, lt=360)  # compass: 0 N, 90 E, 180 S, 270 W
    kwp: float | None = Field(None, gt=0, le=1000)  # the panels' peak power, kW
    losses: float = Field(0.14, ge=0, lt=1)  # irradiance → AC: inverter, wiring, heat, soiling
    file: Text | None = None
    topic: Topic | None = None
    every_min: int = Field(60, ge=15, le=1440)  # Forecast.Solar changes at most every 15 min
    max_age_h: float = Field(12.0, gt=0, le=72)
    base_url: Text | None = None  # another server than the vendor's (a mirror, a test stub)
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value is not None else None

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for what this source lacks and keys it would ignore."""
        out = [
            (key, f"required for source {self.source}")
            for key in NEEDS[self.source]
            if getattr(self, key) is None
        ]
        for key in sorted(self.model_fields_set):
            allowed = ONLY_FOR.get(key)
            if allowed is not None and self.source not in allowed:
                out.append((key, f"only for source {' or '.join(allowed)}, not {self.source}"))
        return out

    def vendor_azimuth(self) -> float:
        """`azimuth` counted from the south, −180…180 (−90 east, 90 west): the vendors' way."""
        compass = self.azimuth if self.azimuth is not None else 180.0
        return (compass % 360.0) - 180.0
