"""Rich tables of the service's own figures, shared by the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def status_table(doc: dict[str, Any], origin: str) -> Table:
    """The status document as a table: one row per load."""
    grid = doc.get("grid_w")
    meter = doc.get("meter", {})
    title = (
        f"{doc['time']} — grid {'?' if grid is None else f'{grid:+.0f} W'}"
        f"{' — METER STALE' if meter.get('stale') and grid is not None else ''} — {origin}"
    )
    table = Table(title=title)
    for col in ("load", "id", "state", "mode", "reason", "power W", "today Wh", "forced until"):
        table.add_column(col, justify="right" if col.endswith(("W", "Wh", "id")) else "left")
    table.add_column("water °C (min/eco/sol/max)")
    for e in doc["loads"]:
        temps = ""
        if e.get("temp_max") is not None:
            t = e.get("temperature_c")
            temps = (
                f"{'?' if t is None else f'{t:.1f}'} "
                f"({e['temp_min']:g}/{e['temp_eco']:g}/{e['temp_sol_min']:g}/{e['temp_max']:g})"
            )
        table.add_row(
            e["name"],
            str(e["id"]),
            e["state"],
            e["mode"],
            e["reason"],
            f"{e['power_w']:.0f}",
            f"{e['energy_today_wh']:.0f}",
            e["forced_until"] or "",
            temps,
        )
    notes = []
    if doc.get("dry_run"):
        notes.append("DRY RUN: no command sent")
    if meter.get("rejected"):
        notes.append(f"{meter['rejected']} meter payload(s) rejected")
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


def energy_table(rows: list[Any], names: list[str]) -> Table:
    table = Table(title="energy (kWh) from the local store")
    table.add_column("day")
    for name in names:
        table.add_column(name, justify="right")
    for col in (
        "loads",
        "diverted",
        "import",
        "export",
        "PV",
        "surplus kept",
        "self-cons.",
        "self-suff.",
    ):
        table.add_column(col, justify="right")

    def kwh(v: float | None) -> str:
        return "—" if v is None else f"{v / 1000:.2f}"

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.0f} %"

    for d, t, _ in rows:
        partial = "" if t["covered_h"] >= 23 else f" ({t['covered_h']:g} h)"
        table.add_row(
            f"{d.isoformat()}{partial}",
            *(kwh(t["loads"][n]) for n in names),
            kwh(t["loads_wh"]),
            kwh(t["diverted_wh"]),
            kwh(t["import_wh"]),
            kwh(t["export_wh"]),
            kwh(t["pv_wh"]),
            pct(t["surplus_kept"]),
            pct(t["self_consumption"]),
            pct(t["self_sufficiency"]),
        )
    return table
