"""Rich tables of simulation KPIs (DESIGN §11)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def summary_table(kpis: dict[str, Any], title: str) -> Table:
    """One simulation's KPIs, a row each, then the per-load figures."""
    table = Table(title=title, show_header=False)
    table.add_column("kpi")
    table.add_column("value", justify="right")
    for key, value in kpis.items():
        if not isinstance(value, dict | list):
            table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    for name, k in kpis["loads"].items():
        table.add_row(
            f"{name}",
            f"{k['energy_wh'] / 1000:.2f} kWh, {k['diverted_wh'] / 1000:.2f} "
            f"diverted, {k['switches']} switches, {k['cold_draws']} cold draws",
        )
    return table


def kpi_table(results: list[dict[str, Any]], title: str) -> Table:
    """One row per simulation: the headline KPIs of DESIGN §11."""
    table = Table(title=title)
    for col in (
        "trace",
        "house",
        "policy",
        "capture",
        "diverted kWh",
        "bound kWh",
        "import by loads Wh",
        "% of diverted",
        "forced import Wh",
        "switches",
        "min on/off viol.",
        "cold draws",
        "min < temp_min",
    ):
        table.add_column(col, justify="left" if col in {"trace", "house", "policy"} else "right")
    for r in results:
        share = 100 * r["import_by_loads_wh"] / r["diverted_wh"] if r["diverted_wh"] else 0.0
        table.add_row(
            r["trace"],
            r.get("house", ""),
            r["policy"],
            f"{r['capture']:.3f}",
            f"{r['diverted_wh'] / 1000:.2f}",
            f"{r['bound_wh'] / 1000:.2f}",
            f"{r['import_by_loads_wh']:.0f}",
            f"{share:.2f}",
            f"{r['forced_import_wh']:.0f}",
            str(r["switches"]),
            str(r["min_on_off_violations"]),
            str(r["cold_draws"]),
            f"{r['minutes_below_temp_min']:.0f}",
        )
    return table
