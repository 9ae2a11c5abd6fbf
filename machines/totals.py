"""Lifetime energy totals (grid import/export, diverted, per load) for the status document and
Home Assistant's Energy dashboard: sums of the ledger's intervals, never decreasing, persisted
in the same transaction as the intervals they count, so a restart neither loses nor
double-counts one. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import field
from typing import Any

from machines.value import value

GRID_KEYS = ("import_wh", "export_wh", "diverted_wh", "meter_s")


def _figures(interval: Mapping[str, Any]) -> dict[str, float]:
    grid = interval.get("grid", {})
    out = {k: float(grid.get(k, 0.0)) for k in GRID_KEYS}
    for name, load in interval.get("loads", {}).items():
        out[f"load/{name}"] = float(load.get("energy_wh", 0.0))
    return out


def _plus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {*a, *b}}


@value
class Totals:
    """`base` sums every interval before `last_end`; `last` is kept apart because the interval
    open at shutdown is written early and written again, complete, with the same end."""

    base: dict[str, float] = field(default_factory=dict)
    last_end: int | None = None
    last: dict[str, float] = field(default_factory=dict)

    @classmethod
    def restore(cls, doc: Mapping[str, Any]) -> Totals:
        return cls(dict(doc.get("base", {})), doc.get("last_end"), dict(doc.get("last", {})))

    def dump(self) -> dict[str, Any]:
        return {"base": self.base, "last_end": self.last_end, "last": self.last}

    def add(self, intervals: Iterable[Mapping[str, Any]]) -> Totals:
        """These intervals counted too (oldest first); one with the last end replaces it, an
        older one was counted already."""
        base, last_end, last = self.base, self.last_end, self.last
        for iv in intervals:
            end = int(iv["end"])
            if last_end is not None and end < last_end:
                continue
            if end != last_end:
                base = _plus(base, last)
            last_end, last = end, _figures(iv)
        return Totals(base, last_end, last)

    def figures(self) -> dict[str, float]:
        return _plus(self.base, self.last)


class Peak:
    """Holds each figure at its highest: float sums regrouped as intervals close must never
    show Home Assistant a tiny decrease (a `total_increasing` sensor reads it as a reset)."""

    def __init__(self) -> None:
        self.high: dict[str, float] = {}

    def update(self, figures: Mapping[str, float]) -> dict[str, float]:
        for k, v in figures.items():
            self.high[k] = max(v, self.high.get(k, v))
        return dict(self.high)


class DurableTotals:
    """What the status shows: the totals as the store holds them, committed intervals plus the
    open interval as of the last checkpoint. A crash restores exactly that, so no figure ever
    goes back (showing live energy would lose up to a checkpoint's worth to a kill -9)."""

    def __init__(self, doc: Mapping[str, Any], open_intervals: list[dict[str, Any]]):
        self.totals = Totals.restore(doc)
        self.open = open_intervals
        self.peak = Peak()
        self.shown = self.peak.update(self.totals.add(open_intervals).figures())

    def add(self, intervals: Iterable[Mapping[str, Any]]) -> Totals:
        """The totals to write with these intervals."""
        return self.totals.add(intervals)

    def commit(self, totals: Totals, open_intervals: list[dict[str, Any]] | None) -> None:
        """`totals` were written; with the open interval too when it was (a checkpoint)."""
        self.totals = totals
        if open_intervals is not None:
            self.open = open_intervals
        self.shown = self.peak.update(totals.add(self.open).figures())


def annotate(doc: dict[str, Any], figures: Mapping[str, float]) -> None:
    """Add the totals and the instant surplus/diverted power to a status document (docs/topics.md):
    `energy_total` for the site, `energy_total_wh` per load. Grid totals stay null until the
    meter has been counted once: a total of 0 would be a lie that Home Assistant records."""
    known = figures.get("meter_s", 0.0) > 0
    doc["energy_total"] = {
        k: round(figures.get(k, 0.0), 1) if known else None
        for k in ("import_wh", "export_wh", "diverted_wh")
    }
    loads_w = 0.0
    for load in doc["loads"]:
        load["energy_total_wh"] = round(figures.get(f"load/{load['name']}", 0.0), 1)
        loads_w += load["power_w"]
    grid = doc["grid_w"]
    fresh = grid is not None and not doc["meter"]["stale"]
    doc["surplus_w"] = None if grid is None else round(-grid, 1)
    # what the loads take from PV: their power, less what the meter says comes from the grid
    doc["diverted_w"] = round(max(0.0, min(loads_w, loads_w - grid)), 1) if fresh else None
