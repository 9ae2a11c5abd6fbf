"""The status document of docs/topics.md: `regulation/status` and `pvopt status --json` share it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from machines.controller import Controller
from machines.energy import export_room
from machines.export import EXPORT_REASONS, Room, attribute_export, main_reason
from machines.model import MeterSnapshot
from machines.schedules import ScheduleEvent


def local_iso(ts: float | None, tz: ZoneInfo) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def build_status(
    ctl: Controller,
    snapshot: MeterSnapshot | None,
    meter_age_s: float | None,
    now: float,
    *,
    policy: str,
    dry_run: bool,
    dry_run_baseline: dict[str, tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """The status at `now`; `snapshot` None when no meter is known (read from the store).

    A dry run passes each load's (day, energy today) when it started: its document then keeps
    the real counters in `energy_today_wh` and what it would have added in `would_be_energy_wh`.
    """
    tz = ctl.tz
    local = datetime.fromtimestamp(now, tz)
    grid = None if snapshot is None or snapshot.grid_w is None else round(snapshot.grid_w, 1)
    loads = []
    equipments = []
    for m in ctl.machines.values():
        th = m.thresholds
        measured = m.device.measured(now)
        real_wh, would_wh = _split_energy(
            m.day_index, m.energy_today_wh, m.spec.name, dry_run_baseline
        )
        loads.append(
            {
                "name": m.spec.name,
                "id": m.spec.id,
                "state": m.state.value,
                "mode": m.mode.value,
                "reason": ctl.reasons.get(m.spec.name, m.reason),
                "limit": ctl.limits.get(m.spec.name),
                "power_w": round(m.setpoint_w, 1),
                "measured_w": None if measured is None else round(measured, 1),
                "online": m.device.online,
                "energy_from": m.device.energy_from(now),
                "energy_today_wh": round(real_wh, 1),
                "forced_until": local_iso(m.forced_until, tz),
                "temperature_c": m.temperature_c,
                "temp_min": th.temp_min if th else None,
                "temp_eco": th.temp_eco if th else None,
                "temp_sol_min": th.temp_sol_min if th else None,
                "temp_max": th.temp_max if th else None,
                "enabled": m.spec.enabled,
            }
        )
        plan = (
            None if ctl.planner is None or th is None else ctl.planner.plan_status(m.spec.name, now)
        )
        if plan is not None:
            loads[-1]["plan"] = plan
        if would_wh is not None:
            loads[-1]["would_be_energy_wh"] = round(would_wh, 1)
        equipments.append(
            {
                "name": m.spec.name,
                "current_power": round(m.setpoint_w, 1),
                "energy": round(real_wh, 1),
                "forced": m.is_forced,
            }
        )
    return {
        "time": local.isoformat(timespec="seconds"),
        "date": round(now, 3),
        "date_str": local.strftime("%Y-%m-%d %H:%M:%S"),
        "grid_w": grid,
        "power_available": round(max(-grid, 0.0)) if grid is not None else None,
        "power_consumed": round(max(grid, 0.0)) if grid is not None else None,
        "meter": {
            "age_s": None if meter_age_s is None else round(meter_age_s, 1),
            "stale": True if snapshot is None else snapshot.stale,
        },
        "export": export_now(ctl, snapshot, now),
        "policy": policy,
        "dry_run": dry_run,
        "loads": loads,
        "equipments": equipments,
    }


def export_now(ctl: Controller, snapshot: MeterSnapshot | None, now: float) -> dict[str, Any]:
    """The current export and why the loads leave it (machines/export.py); none on a stale or
    unknown meter."""
    if snapshot is None or snapshot.stale or snapshot.grid_w is None or snapshot.grid_w >= 0:
        return {"w": 0.0, "reason": None, "why": None, "by_reason_w": {}}
    rooms = []
    for m in ctl.machines.values():
        r = export_room(m, ctl.limits, now)
        rooms.append(Room(r["room_w"], r["limit"] or "settling", r["continuous"]))
    by = attribute_export(-snapshot.grid_w, rooms)
    reason = main_reason(by)
    return {
        "w": round(-snapshot.grid_w, 1),
        "reason": reason,
        "why": EXPORT_REASONS.get(reason or "", reason),
        "by_reason_w": {k: round(v, 1) for k, v in by.items()},
    }


def _split_energy(
    day: int, today_wh: float, name: str, baseline: dict[str, tuple[int, float]] | None
) -> tuple[float, float | None]:
    """(real energy today, a dry run's would-be energy today or None outside a dry run)."""
    if baseline is None:
        return today_wh, None
    base_day, base_wh = baseline.get(name, (day, 0.0))
    if base_day != day:  # the day turned during the dry run: today holds only would-be energy
        return 0.0, today_wh
    return base_wh, max(today_wh - base_wh, 0.0)


def event_json(e: ScheduleEvent, tz: ZoneInfo) -> dict[str, Any]:
    """A schedule event as the simulator's `schedule_events` and the log show it."""
    out: dict[str, Any] = {"name": e.name, "load": e.load, "event": e.event}
    out["at"] = local_iso(e.at, tz)
    if e.event == "close":
        out["triggered"] = e.triggered
        out["temperature_c"] = e.temperature_c
    if e.detail:
        out["detail"] = e.detail
    return out
