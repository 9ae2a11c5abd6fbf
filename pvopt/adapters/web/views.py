"""The page's read-only views of the status, the store and the config: each load's device line,
today's chart and energy table, the transition log, the schedules' next firings. Plain
functions, JSON out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from machines.schedules import Schedule, next_events
from machines.status import local_iso
from machines.tariff import day_bounds
from pvopt.energy_report import summarize
from state.store import StateStore

TRANSITIONS_SHOWN = 50
NBSP = "\u00a0"  # inside a figure and before its unit: "1 180 W" never breaks on a phone
# A load's trouble with its device, by the reason the machine gives (machines/loads.py TICK):
# the badge's words and its tone. Any other reason shows as it is, below the badge.
DEVICE_BADGES: dict[str, tuple[str, str]] = {
    "device_offline": ("device offline", "bad"),
    "device_not_following": ("not following", "bad"),
    "thermostat_cut": ("thermostat cut", "info"),
}
# The status's `energy_from` (machines/status.py) in the page's words.
ENERGY_FROM = {
    "measured": "energy from the device's measurement",
    "commanded": "energy from the command",
    "offline": "no energy counted: device offline",
}


def watts(w: float) -> str:
    """1180.4 → "1 180 W" (the page's own figure format, thousands apart)."""
    return f"{round(w):,}".replace(",", NBSP) + f"{NBSP}W"


def load_view(load: dict[str, Any]) -> dict[str, Any]:
    """What the page says of one load's device: its power line (measured beside commanded),
    a badge when the device is offline or does not follow, and what its energy is counted on.
    Worded here, so the script only places text and a test can read it."""
    commanded = watts(load.get("power_w") or 0.0)
    measured = load.get("measured_w")
    if measured is None:
        power = f"{commanded} commanded"
    else:
        power = f"{watts(measured)} measured / {commanded} commanded"
    reason = load.get("reason")
    badge = None
    if load.get("online") is False:  # whatever the reason says this tick
        badge = DEVICE_BADGES["device_offline"]
    elif reason in DEVICE_BADGES:
        badge = DEVICE_BADGES[reason]
    energy_from = load.get("energy_from")
    return {
        "power": power,
        "badge": None if badge is None else {"text": badge[0], "tone": badge[1]},
        "energy_from": ENERGY_FROM.get(energy_from or "", energy_from),
    }


def page_status(doc: dict[str, Any]) -> dict[str, Any]:
    """The status as the page gets it: each load with its `view`. A new document, the
    service's own is left untouched (it is still being published elsewhere)."""
    loads = doc.get("loads")
    if not isinstance(loads, list):
        return doc
    return {**doc, "loads": [{**load, "view": load_view(load)} for load in loads]}


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
