"""The solar forecast as a value: hourly mean PV power from an issue time on, the energy it
expects between two instants, how old it is, and its file format (docs/forecast.md).

Pure: no clock (every question takes `now`), no I/O; the adapters fetch, `jobs/forecast.py`
schedules and caches. Times are epoch seconds UTC; a slot is one UTC hour `[start, start+3600)`
and `pv_w` its mean AC power, so a slot's energy is `pv_w` Wh.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from machines.errors import ForecastError
from machines.value import value

SLOT_S = 3600
MAX_PV_W = 1_000_000.0  # 1 MW: a larger figure is a unit mistake (kW as W, Wh as mWh)
CSV_HEADER = "issued_at,start,pv_w"


@value
class Slot:
    """One UTC hour from `start` (epoch s, on the hour) and its mean PV power in W."""

    start: int
    pv_w: float

    @property
    def end(self) -> int:
        return self.start + SLOT_S


@value
class Forecast:
    """Hourly mean PV power issued at `issued_at` by `source`; slots ascending, gaps allowed
    (an hour without a slot is one the source said nothing about, not a zero)."""

    issued_at: int
    source: str
    slots: tuple[Slot, ...]

    def __post_init__(self) -> None:
        if not self.slots:
            raise ForecastError(f"{self.source}: the forecast has no hourly slots")
        previous: int | None = None
        for i, slot in enumerate(self.slots):
            where = f"{self.source}: slot {i} ({iso(slot.start)})"
            if slot.start % SLOT_S:
                raise ForecastError(f"{where}: start is not on a UTC hour")
            if not (math.isfinite(slot.pv_w) and 0 <= slot.pv_w <= MAX_PV_W):
                raise ForecastError(f"{where}: pv_w {slot.pv_w!r} is not a power 0…{MAX_PV_W:g} W")
            if previous is not None and slot.start <= previous:
                raise ForecastError(
                    f"{where}: start is not after the slot before ({iso(previous)})"
                )
            previous = slot.start

    @property
    def start(self) -> int:
        return self.slots[0].start

    @property
    def end(self) -> int:
        return self.slots[-1].end

    def age_s(self, now: float) -> float:
        return now - self.issued_at

    def is_fresh(self, now: float, max_age_s: float) -> bool:
        """Issued at most `max_age_s` ago (a forecast from a clock ahead counts as fresh)."""
        return self.age_s(now) <= max_age_s

    def power_at(self, t: float) -> float | None:
        """The mean power of the hour holding `t`; None outside the slots."""
        for slot in self.slots:
            if slot.start <= t < slot.end:
                return slot.pv_w
        return None

    def energy_wh(self, start: float, end: float) -> float:
        """Energy expected in `[start, end)`, Wh: each slot's mean power over the part of it
        inside the window (linear within a slot); hours without a slot count nothing."""
        total = 0.0
        for slot in self.slots:
            overlap = min(end, slot.end) - max(start, slot.start)
            if overlap > 0:
                total += slot.pv_w * overlap / SLOT_S
        return total

    def covered_s(self, start: float, end: float) -> float:
        """How much of `[start, end)` the slots cover, s: the part `energy_wh` knows about."""
        return sum(max(0.0, min(end, s.end) - max(start, s.start)) for s in self.slots)

    def to_csv(self) -> str:
        """The file format (`parse_csv` reads it back to an equal forecast)."""
        issued = iso(self.issued_at)
        rows = [f"{issued},{iso(s.start)},{_number(s.pv_w)}" for s in self.slots]
        return "\n".join([CSV_HEADER, *rows]) + "\n"

    def to_payload(self) -> dict[str, Any]:
        """The JSON document of the topic format (`parse_payload` reads it back)."""
        return {
            "issued_at": iso(self.issued_at),
            "source": self.source,
            "slots": [{"start": iso(s.start), "pv_w": s.pv_w} for s in self.slots],
        }


class Freshness(Enum):
    FRESH = "fresh"
    STALE = "stale"
    ABSENT = "absent"


@value
class ForecastStatus:
    """Whether the planner may use the forecast, and why not: `fallback` means plan without."""

    freshness: Freshness
    reason: str
    forecast: Forecast | None = None

    @property
    def fallback(self) -> bool:
        return self.freshness is not Freshness.FRESH


def assess(
    forecast: Forecast | None, now: float, max_age_s: float, last_error: str | None = None
) -> ForecastStatus:
    """Fresh, stale or absent, with the reason a person reads (`forecast stale (issued 7.2 h
    ago)`), the last failed fetch appended when there is one."""
    failed = f"; last fetch failed: {last_error}" if last_error else ""
    if forecast is None:
        return ForecastStatus(Freshness.ABSENT, f"no forecast (none fetched yet{failed})")
    age_h = forecast.age_s(now) / 3600
    by = f"by {forecast.source}"
    if not forecast.is_fresh(now, max_age_s):
        reason = f"forecast stale (issued {age_h:.1f} h ago {by}, older than {max_age_s / 3600:g} h"
        return ForecastStatus(Freshness.STALE, f"{reason}{failed})", forecast)
    if forecast.end <= now:
        reason = f"forecast stale (its last hour ended {(now - forecast.end) / 3600:.1f} h ago"
        return ForecastStatus(Freshness.STALE, f"{reason}{failed})", forecast)
    return ForecastStatus(
        Freshness.FRESH, f"forecast fresh (issued {age_h:.1f} h ago {by}{failed})", forecast
    )


def iso(t: float) -> str:
    """Epoch seconds as the format's UTC timestamp, `2026-12-07T06:00:00Z`."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """An ISO-8601 UTC timestamp (`…Z` or `…+00:00`) as epoch seconds; ValueError saying why."""
    value = text.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 time like 2026-12-07T06:00:00Z") from None
    if when.tzinfo is None or when.utcoffset() != timedelta(0):
        raise ValueError(f"{value!r} is not in UTC: end it with Z (2026-12-07T06:00:00Z)")
    stamp = when.timestamp()
    if stamp != int(stamp):
        raise ValueError(f"{value!r} has a fraction of a second")
    return int(stamp)


def _number(w: float) -> str:
    return str(int(w)) if w == int(w) else repr(w)


def _power(text: Any) -> float:
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number of W")
    try:
        w = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a number of W") from None
    if not (math.isfinite(w) and 0 <= w <= MAX_PV_W):
        raise ValueError(f"{text!r} is not a power 0…{MAX_PV_W:g} W")
    return w


def parse_csv(text: str, source: str, where: str | None = None) -> Forecast:
    """Read the file format: the header `issued_at,start,pv_w`, then one line per hour (every
    line the same `issued_at`); ForecastError naming `where` (the file), the line and the
    field. `source` is the forecast's source name."""
    name, source = source, where or source
    lines = text.splitlines()
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise ForecastError(f"{source}: empty; expected the header {CSV_HEADER!r} and hours")
    n, header = numbered[0]
    if header.lstrip("\ufeff").replace(" ", "") != CSV_HEADER:
        raise ForecastError(f"{source}:{n}: header {header!r}; expected {CSV_HEADER!r}")
    issued: int | None = None
    slots = []
    previous: int | None = None
    for n, line in numbered[1:]:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3:
            raise ForecastError(f"{source}:{n}: {len(fields)} fields; expected 3 ({CSV_HEADER})")
        try:
            field = "issued_at"
            at = parse_time(fields[0])
            field = "start"
            start = parse_time(fields[1])
            field = "pv_w"
            pv_w = _power(fields[2])
        except ValueError as exc:
            raise ForecastError(f"{source}:{n}: {field}: {exc}") from None
        if issued is not None and at != issued:
            raise ForecastError(
                f"{source}:{n}: issued_at: {fields[0]} differs from the first line's "
                f"{iso(issued)}: one file is one forecast"
            )
        issued = at
        if start % SLOT_S:
            raise ForecastError(f"{source}:{n}: start: {fields[1]} is not on the hour")
        if previous is not None and start <= previous:
            raise ForecastError(
                f"{source}:{n}: start: {fields[1]} is not after the line before ({iso(previous)})"
            )
        previous = start
        slots.append(Slot(start, pv_w))
    if issued is None:
        raise ForecastError(f"{source}: no hours after the header")
    return Forecast(issued, name, tuple(slots))


def parse_payload(text: str, source: str, where: str | None = None) -> Forecast:
    """A forecast published on a topic: the JSON document (`{"issued_at": "…Z", "slots":
    [{"start": "…Z", "pv_w": 1234}, …]}`) or the file format's CSV text."""
    if not text.lstrip().startswith(("{", "[")):
        return parse_csv(text, source, where)
    name, source = source, where or source
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ForecastError(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ForecastError(f"{source}: expected a JSON object")
    try:
        issued = parse_time(_str(doc, "issued_at"))
    except ValueError as exc:
        raise ForecastError(f"{source}: issued_at: {exc}") from None
    items = doc.get("slots")
    if not isinstance(items, list) or not items:
        raise ForecastError(f"{source}: slots: missing or empty; expected a list of hours")
    slots = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ForecastError(f"{source}: slots[{i}]: expected {{'start': …, 'pv_w': …}}")
        field = "start"
        try:
            start = parse_time(_str(item, "start"))
            field = "pv_w"
            if "pv_w" not in item:
                raise ValueError("missing")
            pv_w = _power(item["pv_w"])
        except ValueError as exc:
            raise ForecastError(f"{source}: slots[{i}].{field}: {exc}") from None
        slots.append(Slot(start, pv_w))
    try:
        return Forecast(issued, name, tuple(slots))
    except ForecastError as exc:  # the order of the slots: say where, not the source's name
        raise ForecastError(f"{source}: {str(exc).partition(': ')[2]}") from None


def _str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ValueError("missing" if value is None else f"{value!r} is not a time string")
    return value


def hourly_means(samples: list[tuple[float, float]], max_gap_s: float) -> list[Slot]:
    """Hourly mean power from instantaneous samples `(t, w)`, ascending: the power is linear
    between two samples at most `max_gap_s` apart, and zero across a longer gap (a night) and
    outside the samples. Each UTC hour the samples touch gets its mean."""
    if not samples:
        return []
    first = int(samples[0][0]) // SLOT_S * SLOT_S
    last = math.ceil(samples[-1][0] / SLOT_S) * SLOT_S
    energy = {h: 0.0 for h in range(first, max(last, first + SLOT_S), SLOT_S)}  # W·s per hour
    for (t0, w0), (t1, w1) in itertools.pairwise(samples):
        if t1 - t0 > max_gap_s or t1 <= t0:
            continue
        # split the segment at hour boundaries; the trapezoid of each part
        a = t0
        while a < t1:
            hour = int(a) // SLOT_S * SLOT_S
            b = min(t1, hour + SLOT_S)
            wa = w0 + (w1 - w0) * (a - t0) / (t1 - t0)
            wb = w0 + (w1 - w0) * (b - t0) / (t1 - t0)
            energy[hour] += (wa + wb) / 2 * (b - a)
            a = b
    return [Slot(h, round(e / SLOT_S, 3)) for h, e in sorted(energy.items())]
