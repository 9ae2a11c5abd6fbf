"""`pvopt energy`: days of energy from the store's per-interval history (not from InfluxDB)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from machines.export import ordered
from machines.tariff import Tariff, day_bounds, money
from state.store import StateStore

GRID_KEYS = ("import_wh", "export_wh", "diverted_wh", "loads_wh")


def summarize(intervals: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Totals of a run of intervals, with the ratios a PV owner asks for."""
    grid = dict.fromkeys(GRID_KEYS, 0.0)
    loads = dict.fromkeys(names, 0.0)
    pv_wh: float | None = None
    covered = 0.0
    by_reason: dict[str, float] = {}
    for doc in intervals:
        g = doc["grid"]
        for reason, wh in doc.get("export_by_reason_wh", {}).items():
            by_reason[reason] = by_reason.get(reason, 0.0) + wh
        for key in GRID_KEYS:
            grid[key] += g.get(key, 0.0)
        covered += g.get("covered_s", 0.0)
        if "pv_wh" in g:
            pv_wh = (pv_wh or 0.0) + g["pv_wh"]
        for name, entry in doc["loads"].items():
            if name in loads:
                loads[name] += entry["energy_wh"]
    out: dict[str, Any] = {
        **{k: round(v, 2) for k, v in grid.items()},
        "loads": {k: round(v, 2) for k, v in loads.items()},
        "export_by_reason_wh": {k: round(v, 2) for k, v in ordered(by_reason)},
        "pv_wh": None if pv_wh is None else round(pv_wh, 2),
        "covered_h": round(covered / 3600.0, 2),
        "intervals": len(intervals),
    }
    surplus = grid["diverted_wh"] + grid["export_wh"]
    out["surplus_kept"] = round(grid["diverted_wh"] / surplus, 4) if surplus > 0 else None
    if pv_wh:
        used = max(pv_wh - grid["export_wh"], 0.0)
        out["self_consumption"] = round(used / pv_wh, 4)
        consumed = used + grid["import_wh"]
        out["self_sufficiency"] = round(used / consumed, 4) if consumed > 0 else None
    else:
        out["self_consumption"] = out["self_sufficiency"] = None
    return out


def report(
    store: StateStore,
    tz: ZoneInfo,
    names: list[str],
    last_day: date,
    days: int,
    tariff: Tariff | None = None,
) -> list[tuple[date, dict[str, Any], list[dict[str, Any]]]]:
    """Per local day, oldest first: (day, totals, the day's intervals); with a `tariff`, the
    totals carry its `money`."""
    out = []
    for k in range(days - 1, -1, -1):
        day = last_day - timedelta(days=k)
        start, end = day_bounds(day, tz)
        found = store.intervals(start, until=end)
        totals = summarize(found, names)
        if tariff is not None:
            totals["money"] = money(found, names, tariff, tz)
        out.append((day, totals, found))
    return out
