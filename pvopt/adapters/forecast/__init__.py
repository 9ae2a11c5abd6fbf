"""The solar forecast's sources, one module each, all `jobs.ports.ForecastSource`
(`fetch(now) -> Forecast`): Open-Meteo, Forecast.Solar, a file, an MQTT topic.
docs/forecast.md says what each reads and how its figures become hourly means."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from jobs.ports import ForecastSource
from pvopt.adapters.forecast.file import FileForecast
from pvopt.adapters.forecast.forecast_solar import ForecastSolar
from pvopt.adapters.forecast.open_meteo import OpenMeteo
from pvopt.adapters.forecast.topic import TopicForecast
from pvopt.config.forecast import ForecastConfig

# `forecast.source` → the class reading it; a new source is one module and one line here
SOURCES: dict[str, Callable[[ForecastConfig, tzinfo], ForecastSource]] = {
    "open-meteo": OpenMeteo,
    "forecast-solar": ForecastSolar,
    "file": FileForecast,
    "topic": TopicForecast,
}


def source_for(cfg: ForecastConfig, tz: tzinfo) -> ForecastSource:
    """The source a validated `forecast:` section names."""
    return SOURCES[cfg.source](cfg, tz)


__all__ = ["SOURCES", "FileForecast", "ForecastSolar", "OpenMeteo", "TopicForecast", "source_for"]
