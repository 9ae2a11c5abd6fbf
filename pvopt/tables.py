"""Rich tables of the service's own figures, shared by the CLI and the demo."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from rich.table import Table

from machines.export import ordered, short_label
from machines.forecast import Forecast, ForecastStatus


def energy_unit(values: Iterable[float | None]) -> tuple[str, float]:
    """One unit for a whole table: kWh once any figure reaches 1 kWh, else Wh."""
    top = max((abs(v) for v in values if v is not None), default=0.0)
    return ("kWh", 1000.0) if top >= 1000.0 else ("Wh", 1.0)


def fmt_number(v: float | None) -> str:
    """Enough digits that a small figure never prints as 0: 1,234 · 12.3 · 1.23 · 0.035."""
    if v is None:
        return "—"
    if v == 0:
        return "0"
    size = abs(v)
    if size >= 100:
        return f"{v:,.0f}"
    if size >= 10:
        return f"{v:.1f}"
    if size >= 1:
        return f"{v:.2f}"
    return f"{v:.{-math.floor(math.log10(size)) + 1}f}"


def fmt_energy(wh: float | None, unit: tuple[str, float]) -> str:
    return "—" if wh is None else fmt_number(wh / unit[1])


def fmt_age(seconds: float) -> str:
    """45 s · 12 min · 3 h 05 min · 2 days."""
    s = max(seconds, 0.0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
    return f"{s / 86400:.0f} days"


def _temps(e: dict[str, Any]) -> str:
    if e.get("temp_max") is None:
        return ""
    t = e.get("temperature_c")
    return (
        f"{'?' if t is None else f'{t:.1f}'} "
        f"({e['temp_min']:g}/{e['temp_eco']:g}/{e['temp_sol_min']:g}/{e['temp_max']:g})"
    )


def status_table(doc: dict[str, Any], origin: str) -> Table:
    """The status document as a table: one row per load."""
    grid = doc.get("grid_w")
    meter = doc.get("meter", {})
    title = (
        f"{doc['time']} — grid {'?' if grid is None else f'{grid:+.0f} W'}"
        f"{' — METER STALE' if meter.get('stale') and grid is not None else ''} — {origin}"
    )
    table = Table(title=title)
    unit = energy_unit(e.get("energy_today_wh") for e in doc["loads"])
    for col in ("load", "id", "state", "mode", "reason", "power W", f"today {unit[0]}"):
        table.add_column(col, justify="right" if col.endswith(("W", "Wh", "id")) else "left")
    table.add_column("forced until")
    table.add_column("water °C (min/eco/sol/max)")
    for e in doc["loads"]:
        table.add_row(
            e["name"],
            str(e["id"]),
            e["state"],
            e["mode"],
            e["reason"],
            f"{e['power_w']:.0f}",
            fmt_energy(e.get("energy_today_wh"), unit),
            e["forced_until"] or "",
            _temps(e),
        )
    notes = []
    if doc.get("dry_run"):
        notes.append("DRY RUN: no command sent")
    export = doc.get("export") or {}
    if export.get("reason"):
        notes.append(f"exporting {export['w']:.0f} W: {export['why']}")
    if meter.get("rejected"):
        notes.append(f"{meter['rejected']} meter payload(s) rejected")
    battery = doc.get("battery")
    if battery:
        power, soc = battery.get("power_w"), battery.get("soc")
        flow = "no reading" if power is None else f"{power:+.0f} W (+ charging)"
        notes.append(f"battery {'?' if soc is None else f'{soc:.0f} %'}, {flow}, {battery['mode']}")
    money = doc.get("money")
    if money:
        saved, bill = money["saved_eur"], money["cost_eur"]
        notes.append(f"today: €{saved:.2f} saved by the loads, grid bill €{bill:.2f}")
    influx = doc.get("influxdb")
    if influx:
        behind = "" if not influx.get("error") else f" — waiting: {influx['error']}"
        notes.append(
            f"InfluxDB: {influx.get('written', 0)} interval(s) written this run, "
            f"{influx.get('dropped', 0)} dropped{behind}"
        )
    if notes:
        table.caption = " · ".join(notes)
    return table


def dry_run_table(doc: dict[str, Any], origin: str) -> Table:
    """A dry run's status: what it would have done, labelled so it never reads as real."""
    grid = doc.get("grid_w")
    table = Table(
        title=f"DRY RUN — what `pvopt run --dry-run` would have done — {origin} — "
        f"grid {'?' if grid is None else f'{grid:+.0f} W'}",
        caption="Hypothetical: a dry run sends no command and writes no store, so no load drew "
        "this power and none of this energy is in `pvopt energy`.",
    )
    unit = energy_unit(e.get("would_be_energy_wh") for e in doc["loads"])
    for col in ("load", "would be in", "mode", "reason"):
        table.add_column(col)
    table.add_column("would draw W", justify="right")
    table.add_column(f"would-be {unit[0]} today", justify="right")
    table.add_column("water °C (min/eco/sol/max)")
    for e in doc["loads"]:
        table.add_row(
            e["name"],
            e["state"],
            e["mode"],
            e["reason"],
            f"{e['power_w']:.0f}",
            fmt_energy(e.get("would_be_energy_wh"), unit),
            _temps(e),
        )
    return table


def energy_table(rows: list[Any], names: list[str]) -> Table:
    """`pvopt energy`: one row per day, energy in one unit chosen by magnitude, then ratios."""
    values = [
        v
        for _, t, _ in rows
        for v in (*t["loads"].values(), t["loads_wh"], t["import_wh"], t["export_wh"], t["pv_wh"])
    ]
    unit = energy_unit(values)
    table = Table(title=f"energy ({unit[0]}) from the local store")
    table.add_column("day")
    for name in names:
        table.add_column(name, justify="right")
    pv = any(t["pv_wh"] is not None for _, t, _ in rows)  # only with meter.pv_topic
    cols = ["all loads", "from surplus", "import", "export", "export by reason", "surplus kept"]
    priced = all("money" in t for _, t, _ in rows) and bool(rows)  # with a `tariff:`
    extra = ["cost €", "heating bought €", "solar saved €"] if priced else []
    for col in cols + (["PV", "self-cons.", "self-suff."] if pv else []) + extra:
        table.add_column(col, justify="right")

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.0f} %"

    for d, t, _ in rows:
        partial = "" if t["covered_h"] >= 23 else f" ({t['covered_h']:g} h)"
        table.add_row(
            f"{d.isoformat()}{partial}",
            *(fmt_energy(t["loads"][n], unit) for n in names),
            fmt_energy(t["loads_wh"], unit),
            fmt_energy(t["diverted_wh"], unit),
            fmt_energy(t["import_wh"], unit),
            fmt_energy(t["export_wh"], unit),
            ", ".join(
                f"{fmt_energy(v, unit)} {short_label(k)}"
                for k, v in ordered(t.get("export_by_reason_wh", {}))
            ),
            pct(t["surplus_kept"]),
            *(
                [
                    fmt_energy(t["pv_wh"], unit),
                    pct(t["self_consumption"]),
                    pct(t["self_sufficiency"]),
                ]
                if pv
                else []
            ),
            *(_money_cells(t["money"]) if priced else []),
        )
    table.caption = (
        "from surplus: load energy that would otherwise have been exported. "
        "export by reason: why the loads left it (nothing left = every load full or satisfied; "
        "margin = the aimed small export and dead band; relay waiting = a relay's start budget). "
        "surplus kept = from surplus ÷ (from surplus + export): the share of the solar surplus "
        "the loads took; 100 % means nothing was exported."
    )
    if pv:
        table.caption += (
            " self-cons. = (PV − export) ÷ PV; self-suff. = (PV − export) ÷ (PV − export + import)."
        )
    if priced:
        table.caption += (
            " cost = import × its price − export × the export price; heating bought = the grid "
            "energy of the loads × its price; solar saved = their solar energy × (price − export "
            "price): what the grid would have charged, less the export it replaced."
        )
    return table


def _money_cells(m: dict[str, Any]) -> list[str]:
    loads = m["loads"].values()
    return [
        f"{m['cost_eur']:.2f}",
        f"{sum(x['grid_eur'] for x in loads):.2f}",
        f"{sum(x['solar_eur'] for x in loads):.2f}",
    ]


def forecast_table(forecast: Forecast, status: ForecastStatus, tz: tzinfo, now: float) -> Table:
    """`pvopt forecast`: the hours from the current one on, in the site's time, and what they
    add up to today and tomorrow; the status as the caption."""
    issued = datetime.fromtimestamp(forecast.issued_at, tz)
    table = Table(
        title=f"solar forecast from {forecast.source}, issued {issued:%a %d %b %H:%M %Z} "
        f"({fmt_age(forecast.age_s(now))} ago)"
    )
    table.add_column("hour")
    table.add_column("PV mean (W)", justify="right")
    table.add_column("energy (Wh)", justify="right")
    for slot in forecast.slots:
        if slot.end <= now:
            continue
        start = datetime.fromtimestamp(slot.start, tz)
        table.add_row(f"{start:%a %d %b %H:%M}", f"{slot.pv_w:.0f}", f"{slot.pv_w:.0f}")
    today = datetime.fromtimestamp(now, tz).date()
    midnight = [
        datetime.combine(today + timedelta(days=d), time(0), tz).timestamp() for d in (1, 2)
    ]
    rest = forecast.energy_wh(now, midnight[0]) / 1000
    tomorrow = forecast.energy_wh(midnight[0], midnight[1]) / 1000
    table.caption = f"{status.reason}; expected: {rest:.1f} kWh for the rest of today, " + (
        f"{tomorrow:.1f} kWh tomorrow"
        if forecast.covered_s(midnight[0], midnight[1]) >= 12 * 3600
        else "tomorrow not covered"
    )
    return table
