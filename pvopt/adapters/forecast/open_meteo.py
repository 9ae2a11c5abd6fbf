"""Open-Meteo (no account): the hourly irradiance on the panels' plane, turned into AC power.

Checked against Open-Meteo's documentation (https://open-meteo.com/en/docs):
- `hourly=global_tilted_irradiance` with `tilt` (0° horizontal … 90°) and `azimuth` counted
  from the south (0° south, −90° east, 90° west): the config's compass azimuth is converted.
- every radiation variable is the *mean over the preceding hour*, in W/m²: the value at
  `time` T is the hour `[T − 1 h, T)`, so it becomes the slot that starts at T − 1 h.
- the answer is `{"hourly": {"time": [...], "global_tilted_irradiance": [...]},
  "hourly_units": {...}}`; `timeformat=unixtime` gives epoch seconds, `timezone=UTC` keeps
  them in UTC; an error is HTTP 400 with `{"error": true, "reason": "..."}`.
"""

from __future__ import annotations

import math
import urllib.parse
from datetime import UTC, datetime, tzinfo
from typing import Any

from machines.errors import ForecastError
from machines.forecast import SLOT_S, Forecast, Slot
from pvopt.adapters.forecast.http import get_json
from pvopt.config.forecast import ForecastConfig

NAME = "open-meteo"
BASE_URL = "https://api.open-meteo.com"
VARIABLE = "global_tilted_irradiance"


class OpenMeteo:
    """`ForecastSource` for Open-Meteo's forecast API."""

    name = NAME

    def __init__(self, cfg: ForecastConfig, tz: tzinfo):
        if cfg.latitude is None or cfg.longitude is None or cfg.kwp is None or cfg.tilt is None:
            raise ForecastError(f"{NAME}: forecast.latitude, longitude, tilt and kwp are needed")
        self.cfg = cfg
        self.kwp = cfg.kwp
        self.tz = tz

    def url(self) -> str:
        params = {
            "latitude": self.cfg.latitude,
            "longitude": self.cfg.longitude,
            "hourly": VARIABLE,
            "tilt": self.cfg.tilt,
            "azimuth": self.cfg.vendor_azimuth(),
            "timezone": "UTC",
            "timeformat": "unixtime",
            "forecast_days": 2,
        }
        return f"{self.cfg.base_url or BASE_URL}/v1/forecast?{urllib.parse.urlencode(params)}"

    def fetch(self, now: float) -> Forecast:
        doc = get_json(self.url(), source=NAME, timeout_s=self.cfg.timeout_s)
        return parse(doc, int(now), self.kwp, self.cfg.losses)


def parse(doc: Any, issued_at: int, kwp: float, losses: float) -> Forecast:
    """The answer as a forecast issued at `issued_at` (Open-Meteo does not say when its model
    ran: the fetch time stands for it). AC power = GTI / 1000 W/m² × kWp × 1000 × (1 − losses)."""
    if not isinstance(doc, dict):
        raise ForecastError(f"{NAME}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("error"):
        raise ForecastError(f"{NAME}: the server refused: {doc.get('reason', 'no reason given')}")
    hourly = doc.get("hourly")
    if not isinstance(hourly, dict):
        raise ForecastError(f"{NAME}: hourly: missing or not an object")
    times, values = hourly.get("time"), hourly.get(VARIABLE)
    if not isinstance(times, list) or not times:
        raise ForecastError(f"{NAME}: hourly.time: missing or empty")
    if not isinstance(values, list) or len(values) != len(times):
        raise ForecastError(f"{NAME}: hourly.{VARIABLE}: missing or not one value per hourly.time")
    unit = (doc.get("hourly_units") or {}).get(VARIABLE)
    if unit is not None and unit not in ("W/m²", "W/m2"):
        raise ForecastError(f"{NAME}: hourly_units.{VARIABLE}: {unit!r}, expected W/m²")
    slots = []
    for i, (t, gti) in enumerate(zip(times, values, strict=True)):
        end = _time(t, i)
        if gti is None:  # the model has no value for that hour: a gap, not a zero
            continue
        if isinstance(gti, bool) or not isinstance(gti, int | float) or not math.isfinite(gti):
            raise ForecastError(f"{NAME}: hourly.{VARIABLE}[{i}]: {gti!r} is not a number")
        # small negative values come back near sunrise and sunset: no power, not an error
        pv_w = max(0.0, float(gti)) / 1000.0 * kwp * 1000.0 * (1.0 - losses)
        slots.append(Slot(end - SLOT_S, round(pv_w, 3)))
    if not slots:
        raise ForecastError(f"{NAME}: hourly.{VARIABLE}: no value at all")
    try:
        return Forecast(issued_at, NAME, tuple(slots))
    except ForecastError as exc:
        raise ForecastError(f"{exc} (in hourly.time)") from None


def _time(t: Any, i: int) -> int:
    """One `hourly.time` entry: epoch seconds (`timeformat=unixtime`) or ISO-8601 in UTC."""
    if isinstance(t, int) and not isinstance(t, bool):
        return t
    if isinstance(t, str):
        try:
            when = datetime.fromisoformat(t)
        except ValueError:
            pass
        else:
            return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())
    raise ForecastError(f"{NAME}: hourly.time[{i}]: {t!r} is not a time")
