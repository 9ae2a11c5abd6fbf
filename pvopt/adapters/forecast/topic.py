"""A forecast another system publishes on an MQTT topic (Home Assistant, Node-RED): the last
good payload is the forecast. The payload is the JSON document of docs/forecast.md or the
file format's CSV text.

`feed` is what the MQTT client's callback calls (on paho's thread: it only parses and keeps);
`fetch` hands the kept one to the keeper. The subscription itself is the service's wiring.
"""

from __future__ import annotations

from datetime import tzinfo

from machines.errors import ForecastError, ForecastUnavailable
from machines.forecast import Forecast, parse_payload
from pvopt.config.forecast import ForecastConfig

NAME = "topic"


class TopicForecast:
    """`ForecastSource` holding the newest good payload of `forecast.topic`."""

    name = NAME

    def __init__(self, cfg: ForecastConfig, tz: tzinfo):
        if cfg.topic is None:
            raise ForecastError(f"{NAME}: forecast.topic is needed")
        self.topic = cfg.topic
        self.latest: Forecast | None = None
        self.last_error: str | None = None

    def feed(self, payload: bytes, now: float) -> Forecast:
        """Parse one payload and keep it; a bad one raises ForecastError and keeps the last
        good one (one assignment: the reader on another thread sees the old or the new)."""
        where = f"topic {self.topic}"
        try:
            text = payload.decode("utf-8")
            forecast = parse_payload(text, NAME, where=where)
        except UnicodeDecodeError:
            self.last_error = f"{where}: the payload is not UTF-8 text"
            raise ForecastError(self.last_error) from None
        except ForecastError as exc:
            self.last_error = str(exc)
            raise
        self.last_error = None
        self.latest = forecast
        return forecast

    def fetch(self, now: float) -> Forecast:
        latest = self.latest
        if latest is None:
            why = f" (last payload refused: {self.last_error})" if self.last_error else ""
            raise ForecastUnavailable(f"{NAME}: nothing received on {self.topic} yet{why}")
        return latest
