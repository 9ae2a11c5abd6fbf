"""The page's read-only views of the store and the config: today's chart and energy table, the
transition log, the schedules' next firings. Plain functions, JSON out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from machines.schedules import Schedule, next_events
from machines.status import local_iso
from pvopt.energy_report import day_bounds, summarize
from state.store import StateStore

TRANSITIONS_SHOWN = 50


def today(store: StateStore | None, tz: ZoneInfo, names: list[str], day: date) -> dict[str, Any]:
    """Average powers per interval (W) and mean water temperatures, with the day's totals."""
    found: list[dict[str, Any]] = []
    if store is not None:
        start, end = day_bounds(day, tz)
        found = store.intervals(start, until=end)
    points = []
    for doc in found:
        span_h = doc["interval_s"] / 3600.0
        g = doc["grid"]
        loads = doc["loads"]
        points.append(
            {
                "end": doc["end"],
                "interval_s": doc["interval_s"],
                "import_w": round(g.get("import_wh", 0.0) / span_h, 1),
                "export_w": round(g.get("export_wh", 0.0) / span_h, 1),
                "pv_w": round(g["pv_wh"] / span_h, 1) if "pv_wh" in g else None,
                "loads_w": {n: loads[n]["power_w"] for n in names if n in loads},
                "temperature_c": {
                    n: loads[n]["temperature_c"]
                    for n in names
                    if n in loads and "temperature_c" in loads[n]
                },
            }
        )
    start, end = day_bounds(day, tz)
    return {
        "day": day.isoformat(),
        "start": start,
        "end": end,
        "names": names,
        "points": points,
        "totals": summarize(found, names),
    }


def history(store: StateStore | None, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The newest transitions, newest first, with their reasons."""
    if store is None:
        return []
    return [
        {
            "at": local_iso(r.at, tz),
            "load": r.load,
            "source": r.source,
            "dest": r.dest,
            "trigger": r.trigger,
            "reason": r.reason,
        }
        for r in reversed(store.transitions(limit=TRANSITIONS_SHOWN))
    ]


def schedules(items: list[Schedule], now: float, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Each schedule with what it does and its next firings."""
    out = []
    for s in items:
        if s.at is not None:
            when = f"at {s.at:%H:%M}"
        elif s.start is not None and s.end is not None:
            when = f"{s.start:%H:%M}–{s.end:%H:%M}"
        else:
            when = "off-peak tariff"
        out.append(
            {
                "name": s.name,
                "load": s.load,
                "action": s.action,
                "when": when,
                "days": sorted(s.days),
                "next": [
                    {"at": local_iso(at, tz), "event": ev} for at, ev in next_events(s, now, tz, 3)
                ],
            }
        )
    return out


def local_today(now: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(now, tz).date()
