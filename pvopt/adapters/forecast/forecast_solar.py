"""Forecast.Solar (public API, no account): its estimate of the plant's power.

Checked against its documentation (https://doc.forecast.solar/api:estimate and
https://doc.forecast.solar/api):
- `GET /estimate/:lat/:lon/:dec/:az/:kwp`: `dec` 0 (horizontal) … 90 (vertical), an integer;
  `az` −180 … 180 with −180 = north, −90 = east, 0 = south, 90 = west, an integer: the
  config's compass azimuth is converted (the docs warn that Home Assistant's 0…360 must be).
- timestamps are the site's local time unless `?time=utc` is asked: pvopt asks, and still
  reads a time without an offset in `message.info.timezone` (else the site's zone).
- the answer is `{"result": {"watts": {time: W}, "watt_hours_period": …, "watt_hours": …,
  "watt_hours_day": …}, "message": {"code": 0, "type": "success", "text": …, "info": {…},
  "ratelimit": {"period": 3600, "limit": 12, "remaining": …}}}`; over the limit, HTTP 429.
- `watts` are the power *at* each time (hourly, plus sunrise and sunset at their own times):
  pvopt takes the power as linear between two times at most 3 h apart, zero across the night,
  and averages it over each UTC hour (the trapezoids add up to their `watt_hours_period`).
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from machines.errors import ForecastError, ForecastRateLimited
from machines.forecast import Forecast, hourly_means
from pvopt.adapters.forecast.http import get_json
from pvopt.config.forecast import ForecastConfig

NAME = "forecast-solar"
BASE_URL = "https://api.forecast.solar"
MAX_GAP_S = 3 * 3600  # longer than any gap between two daytime values, shorter than a night


class ForecastSolar:
    """`ForecastSource` for Forecast.Solar's public estimate."""

    name = NAME

    def __init__(self, cfg: ForecastConfig, tz: tzinfo):
        if cfg.latitude is None or cfg.longitude is None or cfg.kwp is None or cfg.tilt is None:
            raise ForecastError(f"{NAME}: forecast.latitude, longitude, tilt and kwp are needed")
        self.cfg = cfg
        self.tz = tz

    def url(self) -> str:
        c = self.cfg
        dec, az = round(c.tilt or 0.0), round(c.vendor_azimuth())
        path = f"estimate/{c.latitude:.4f}/{c.longitude:.4f}/{dec}/{az}/{c.kwp:g}"
        return f"{c.base_url or BASE_URL}/{path}?time=utc"

    def fetch(self, now: float) -> Forecast:
        doc = get_json(self.url(), source=NAME, timeout_s=self.cfg.timeout_s)
        return parse(doc, now, self.tz)


def parse(doc: Any, now: float, site_tz: tzinfo) -> Forecast:
    """The answer as a forecast; issued at `message.info.time` when it says, else `now`."""
    if not isinstance(doc, dict):
        raise ForecastError(f"{NAME}: expected a JSON object, got {type(doc).__name__}")
    message = doc.get("message")
    if not isinstance(message, dict):
        raise ForecastError(f"{NAME}: message: missing or not an object")
    code = message.get("code")
    if code == 429:
        raise ForecastRateLimited(f"{NAME}: rate limit reached: {message.get('text', '')}")
    if code != 0:
        raise ForecastError(f"{NAME}: message.code {code!r}: {message.get('text', 'no text')}")
    raw_info = message.get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    tz = _zone(info.get("timezone"), site_tz)
    result = doc.get("result")
    watts = result.get("watts") if isinstance(result, dict) else None
    if not isinstance(watts, dict) or not watts:
        raise ForecastError(f"{NAME}: result.watts: missing, empty or not an object")
    samples = []
    for key, w in watts.items():
        at = _time(key, tz, f"result.watts key {key!r}")
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise ForecastError(f"{NAME}: result.watts[{key!r}]: {w!r} is not a power in W")
        samples.append((at, float(w)))
    samples.sort()
    issued = now
    if isinstance(info.get("time"), str):
        issued = _time(info["time"], tz, "message.info.time")
    return Forecast(int(issued), NAME, tuple(hourly_means(samples, MAX_GAP_S)))


def _zone(name: Any, fallback: tzinfo) -> tzinfo:
    if not isinstance(name, str):
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ForecastError(f"{NAME}: message.info.timezone: unknown zone {name!r}") from None


def _time(text: str, tz: tzinfo, field: str) -> float:
    """A Forecast.Solar time: with an offset (`?time=utc`), or local in `tz` (the default
    `2026-12-07 08:00:00`; in the hour a fall-back night repeats, its first pass)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ForecastError(f"{NAME}: {field}: {text!r} is not a time") from None
    return (when if when.tzinfo else when.replace(tzinfo=tz)).timestamp()
