"""The small interfaces the jobs run against, so `jobs/` never imports an adapter: the service
plugs the MQTT bus and the InfluxDB client in, tests plug fakes in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from machines.errors import PvoptError
from machines.forecast import Forecast
from machines.model import MeterSnapshot

Clock = Callable[[], float]  # seconds since the epoch (time.time, or a test's virtual clock)
Point = dict[str, Any]  # {"measurement", "tags", "time" (s), "fields"}: one time-series point


class Publisher(Protocol):
    """Where commands and the status go (the MQTT bus)."""

    def publish(self, topic: str, payload: str, *, retain: bool = False, qos: int = 0) -> None:
        """Queue one message; never blocks on the network."""
        ...


class SinkUnavailable(PvoptError):
    """The sink refused or could not be reached; the message says why and what to do."""


class SinkRejected(SinkUnavailable):
    """The sink answered that these points will never be accepted (InfluxDB's 400: a field
    type conflict, points beyond the retention policy): retrying cannot help."""


class Sink(Protocol):
    """Where energy intervals go (InfluxDB)."""

    def write(self, points: list[Point]) -> None:
        """Write every point or raise `SinkUnavailable` (then none counts as written), or
        `SinkRejected` when no retry of these points can succeed."""
        ...


class MeterFeed(Protocol):
    """One meter kind's reader (`pvopt.kinds.MeterSource`): the payloads in, a snapshot out."""

    @property
    def kick_delay_s(self) -> float:
        """How long to wait after a fresh value before deciding (a Linky's pair)."""
        ...

    @property
    def topics(self) -> frozenset[str]:
        """Everything to subscribe to."""
        ...

    @property
    def stale_after_s(self) -> float:
        """How old a value may be and still count (`meter.stale_after_s`)."""
        ...

    def feed(self, topic: str, payload: bytes, now: float) -> bool:
        """Take one message; True for a fresh power value; `MeterValueError` when bad."""
        ...

    def snapshot(self, now: float) -> MeterSnapshot:
        """The latest reading, stale when too old."""
        ...

    def offpeak(self, now: float) -> bool | None:
        """Whether the tariff says off-peak; None when unknown or stale."""
        ...

    def newest_at(self) -> float | None:
        """Arrival of the newest power value, None before the first."""
        ...


class ForecastSource(Protocol):
    """Where the solar forecast comes from (pvopt/adapters/forecast/: Open-Meteo,
    Forecast.Solar, a file, an MQTT topic)."""

    @property
    def name(self) -> str:
        """The source's name in messages and in the store (`open-meteo`)."""
        ...

    def fetch(self, now: float) -> Forecast:
        """The source's current forecast, or `ForecastUnavailable` (worth a retry),
        `ForecastRateLimited` or `ForecastError` (malformed: which field)."""
        ...
