"""Rich tables of simulation KPIs (docs/kpis.md)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from machines.export import EXPORT_REASONS, ordered, short_label
from machines.model import Kind, LoadSpec
from pvopt.tables import energy_unit, fmt_energy


def summary_table(
    kpis: dict[str, Any], title: str, specs: list[LoadSpec] | None = None, ratios: bool = True
) -> Group:
    """One run's KPIs for a reader who has not seen the code: energy in one unit with a line on
    what each figure means, then each load with only the figures that apply to it."""
    energy = [
        ("Solar produced", kpis["pv_wh"], "what the panels made in this window"),
        ("House's own use", kpis["base_wh"], "everything pvopt does not steer"),
        (
            "Taken by the loads from surplus",
            kpis["diverted_wh"],
            "solar energy the steered loads used instead of exporting it: higher is better",
        ),
        (
            "Most they could have taken",
            kpis["bound_wh"],
            "a perfect regulator that sees every second's surplus in advance: the physical bound",
        ),
        (
            "What a causal regulator reaches",
            kpis.get("ceiling_wh", 0.0),
            "true power at each meter sample, set 1 s later, held to the next: the ceiling",
        ),
        (
            "Grid import caused by the loads",
            kpis["import_by_loads_wh"],
            "paid energy the loads drew because a cloud was faster than the regulator: ideally 0",
        ),
        ("Grid import, whole house", kpis["import_wh"], "the loads' share is the line above"),
        ("Exported anyway", kpis["export_wh"], "surplus the loads did not take"),
    ]
    if kpis.get("forced_import_wh"):
        energy.append(
            (
                "Forced from the grid (schedules)",
                kpis["forced_import_wh"],
                "eco/boost heating the schedules asked for, paid on purpose",
            )
        )
    unit = energy_unit(v for _, v, _ in energy)
    top = Table(title=f"{title} — energy in {unit[0]}")
    top.add_column("figure")
    top.add_column(unit[0], justify="right")
    top.add_column("what it means")
    for label, value, meaning in energy:
        top.add_row(label, fmt_energy(value, unit), meaning)
    parts: list[Table] = [top, loads_table(kpis, specs)]
    if "battery_charge_wh" in kpis:  # only with a `battery:` block
        parts.append(battery_table(kpis))
    if kpis.get("export_by_reason_wh"):
        parts.append(export_table(kpis))
    if ratios:
        parts.insert(1, ratio_table([("this run", kpis)]))
    return Group(*parts)


def battery_table(kpis: dict[str, Any]) -> Table:
    """The home battery's figures (docs/battery.md)."""
    unit = energy_unit([kpis["battery_charge_wh"], kpis["battery_discharge_wh"]])
    table = Table(title="home battery")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("what it means")
    at = kpis["battery_target_at"]
    rows = [
        ("Charged", f"{fmt_energy(kpis['battery_charge_wh'], unit)} {unit[0]}", "AC side"),
        ("Discharged", f"{fmt_energy(kpis['battery_discharge_wh'], unit)} {unit[0]}", "AC side"),
        (
            "Taken by the loads from it",
            f"{fmt_energy(kpis['battery_to_loads_wh'], unit)} {unit[0]}",
            "each second, the discharge up to what pvopt's loads drew",
        ),
        ("State of charge at the end", f"{kpis['battery_soc_end']:.1f} %", ""),
        ("Highest state of charge", f"{kpis['battery_soc_max']:.1f} %", ""),
        ("soc_target reached", "never" if at is None else at[11:16], "local time"),
        ("Cycles", f"{kpis['battery_cycles']:.3f}", "discharged energy / capacity"),
        ("Direction changes", f"{kpis['battery_oscillation']:.1f} /h", "beyond tolerance_w"),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def ratio_table(rows: list[tuple[str, dict[str, Any]]], title: str = "how well") -> Table:
    """Capture and import by loads, as percentages, each with what good looks like."""
    table = Table(title=title)
    table.add_column("run")
    table.add_column("capture %", justify="right")
    table.add_column("efficiency %", justify="right")
    table.add_column("import by loads, % of surplus taken", justify="right")
    for label, k in rows:
        share = 100 * k["import_by_loads_wh"] / k["diverted_wh"] if k["diverted_wh"] else 0.0
        eff = f"{100 * k['efficiency']:.1f}" if "efficiency" in k else ""
        table.add_row(label, f"{100 * k['capture']:.1f}", eff, f"{share:.1f}")
    table.caption = (
        "capture = taken from surplus ÷ the most the loads could have taken; 100 % is perfect, "
        "≥ 90 % over a cloudy day is the target. efficiency = taken ÷ what a regulator reading "
        "the meter every sample can reach (the causal ceiling). import by loads: grid energy the "
        "loads drew per unit of surplus they took; ≤ 1–2 % over a day is good."
    )
    return table


def loads_table(kpis: dict[str, Any], specs: list[LoadSpec] | None = None) -> Table:
    """Per load: energy in one unit; switches for relays, cold draws for water heaters only."""
    by_name = {s.name: s for s in specs or []}
    unit = energy_unit(k["energy_wh"] for k in kpis["loads"].values())
    table = Table(title=f"each load ({unit[0]})")
    for col in ("load", "energy", "of it from surplus", "on/off switches", "cold draws"):
        table.add_column(col, justify="left" if col == "load" else "right")
    for name, k in kpis["loads"].items():
        spec = by_name.get(name)
        relay = spec is None or spec.kind is Kind.RELAY
        heater = spec is None or spec.thresholds is not None
        table.add_row(
            name,
            fmt_energy(k["energy_wh"], unit),
            fmt_energy(k["diverted_wh"], unit),
            str(k["switches"]) if relay else "",
            str(k["cold_draws"]) if heater else "",
        )
    table.caption = (
        "switches: a relay's starts and stops (fewer spare the appliance). cold draws: hot "
        "water drawn while the tank was below temp_min (0 is the aim)."
    )
    return table


def export_table(kpis: dict[str, Any]) -> Table:
    """Exported energy by reason: why the loads left it (machines/export.py)."""
    by = kpis["export_by_reason_wh"]
    unit = energy_unit(by.values())
    table = Table(title=f"exported {fmt_energy(kpis['export_wh'], unit)} {unit[0]}, by reason")
    table.add_column("reason")
    table.add_column(unit[0], justify="right")
    table.add_column("what it means")
    for reason, wh in ordered(by):
        table.add_row(short_label(reason), fmt_energy(wh, unit), EXPORT_REASONS.get(reason, ""))
    return table


def export_summary(by_reason: dict[str, float]) -> str:
    """`nothing left 5.2, margin 0.3` (kWh): a table cell."""
    return ", ".join(f"{short_label(k)} {v / 1000:.2f}" for k, v in ordered(by_reason) if v >= 5)


def kpi_table(results: list[dict[str, Any]], title: str) -> Table:
    """One row per simulation: the headline KPIs of docs/kpis.md."""
    table = Table(title=title)
    for col in (
        "trace",
        "house",
        "policy",
        "capture",
        "efficiency",
        "diverted kWh",
        "bound kWh",
        "ceiling kWh",
        "import by loads Wh",
        "% of diverted",
        "forced import Wh",
        "switches",
        "min on/off viol.",
        "cold draws",
        "min < temp_min",
        "export by reason kWh",
    ):
        left = col in {"trace", "house", "policy", "export by reason kWh"}
        table.add_column(col, justify="left" if left else "right")
    for r in results:
        share = 100 * r["import_by_loads_wh"] / r["diverted_wh"] if r["diverted_wh"] else 0.0
        table.add_row(
            r["trace"],
            r.get("house", ""),
            r["policy"],
            f"{r['capture']:.3f}",
            f"{r.get('efficiency', 0.0):.3f}",
            f"{r['diverted_wh'] / 1000:.2f}",
            f"{r['bound_wh'] / 1000:.2f}",
            f"{r.get('ceiling_wh', 0.0) / 1000:.2f}",
            f"{r['import_by_loads_wh']:.0f}",
            f"{share:.2f}",
            f"{r['forced_import_wh']:.0f}",
            str(r["switches"]),
            str(r["min_on_off_violations"]),
            str(r["cold_draws"]),
            f"{r['minutes_below_temp_min']:.0f}",
            export_summary(r.get("export_by_reason_wh", {})),
        )
    return table
