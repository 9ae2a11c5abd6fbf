"""The `pvopt` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from pvopt import config as cfgmod
from pvopt.cli_common import (
    config_option,
    console,
    err_console,
    load_config,
    progress_bar,
    summary_table,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pvopt — route photovoltaic surplus to your water heater and other loads."""


@main.group("config")
def config_group() -> None:
    """Inspect configuration files."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE; print the resolved config (secrets masked) or every problem (exit 1)."""
    cfg = load_config(file)
    console.print(cfgmod.masked_dump(cfg), highlight=False, markup=False)
    console.print(f"[green]ok[/green] {file}: {len(cfg.equipment)} load(s)", highlight=False)


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


def run_simulation(
    trace_path: str, cfg: cfgmod.Config, policy: str | None, record: bool = False
) -> Any:
    """Simulate one trace with a progress bar; exit 1 on an unreadable trace."""
    from pvopt.simulator import simulate
    from pvopt.traces import TraceError, load_trace

    try:
        trace = load_trace(trace_path)
    except TraceError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(1)
    with progress_bar() as bar:
        task = bar.add_task(
            f"{trace.name} ({policy or cfg.regulation.policy})", total=trace.seconds
        )
        return simulate(
            trace, cfg, policy, lambda done, _total: bar.update(task, completed=done), record=record
        )


@main.command()
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@config_option
@click.option(
    "--policy",
    type=click.Choice(["default", "legacy"]),
    default=None,
    help="Override regulation.policy.",
)
@click.option("--plot", "plot_path", metavar="PNG", default=None, help="Write a plot of the run.")
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the KPIs as JSON.")
def simulate(
    trace: str,
    config_path: str | None,
    policy: str | None,
    plot_path: str | None,
    json_path: str | None,
) -> None:
    """Replay TRACE (ts,pv_w,base_load_w; .csv or .csv.gz) through the regulator."""
    cfg = load_config(config_path)
    result = run_simulation(trace, cfg, policy, record=plot_path is not None)
    kpis = result.kpis
    if json_path:
        Path(json_path).write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        console.print(f"KPIs written to {json_path}", highlight=False)
    else:
        console.print(summary_table(kpis, f"{kpis['trace']} — {cfg.source}"))
    if plot_path:
        from pvopt.plot import plot_series

        title = f"{kpis['trace']} — policy {kpis['policy']} — capture {kpis['capture']:.3f}"
        plot_series(result.series, cfg.site.tz, title, plot_path)
        console.print(f"plot written to {plot_path}", highlight=False)


@main.command()
@click.option(
    "--traces",
    "traces_dir",
    metavar="DIR",
    default=None,
    help="Folder of traces (default: ../shared/traces if present, else examples/traces).",
)
@click.option(
    "--houses",
    metavar="FILES",
    default="examples/seed_house.yml,examples/house.yml",
    help="Comma-separated configs to simulate.",
)
@click.option(
    "--json", "json_path", metavar="FILE", default=None, help="Write all results as JSON."
)
def bench(traces_dir: str | None, houses: str, json_path: str | None) -> None:
    """KPIs of both policies on every trace, simulator speed and regulator tick cost."""
    from pvopt.bench import run_bench

    run_bench(traces_dir, houses.split(","), json_path, console, progress_bar)


@main.command()
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    default="examples/seed_house.yml",
    show_default=True,
    help="The house to run (its mqtt and state settings are replaced by private ones).",
)
@click.option(
    "--trace",
    "trace_path",
    default="examples/traces/broken_clouds.csv.gz",
    show_default=True,
    type=click.Path(exists=True, dir_okay=False),
)
@click.option("--start", default="11:45", show_default=True, metavar="HH:MM")
@click.option("--minutes", default=3.0, show_default=True, type=float)
@click.option("--workdir", default="out/demo", show_default=True, type=click.Path(file_okay=False))
def demo(config_path: str, trace_path: str, start: str, minutes: float, workdir: str) -> None:
    """A private Mosquitto, `pvopt run` and a virtual house playing a cloudy window in real
    time; shows the live status, then the KPIs."""
    from pvopt.demo import run_demo
    from pvopt.servers import ServerMissing

    load_config(config_path)  # say what is wrong with it before starting anything
    try:
        run_demo(
            Path(config_path),
            Path(trace_path),
            start,
            minutes,
            Path(workdir),
            console,
            progress_bar(),
        )
    except ServerMissing as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(1)


@main.command("bench-service")
@click.option("--config", "config_path", default="examples/seed_house.yml", show_default=True)
@click.option("--trace", "trace_path", default="examples/traces/broken_clouds.csv.gz")
@click.option("--start", default="11:45", show_default=True, metavar="HH:MM")
@click.option("--minutes", default=15.0, show_default=True, help="Live replay length (0: none).")
@click.option("--workdir", default="out/bench-service", show_default=True)
@click.option(
    "--json", "json_path", metavar="FILE", default=None, help="Write the figures as JSON."
)
def bench_service(
    config_path: str,
    trace_path: str,
    start: str,
    minutes: float,
    workdir: str,
    json_path: str | None,
) -> None:
    """Latency, RSS, CPU and SQLite writes of `pvopt run`, and live replays of both policies
    (about 4 min + MINUTES)."""
    from pvopt.bench_service import live_quality, measure_service, report

    service = measure_service(Path(config_path), Path(workdir) / "service", console)
    quality = (
        live_quality(Path(config_path), Path(trace_path), start, minutes, Path(workdir), console)
        if minutes > 0
        else []
    )
    report(service, quality, console)
    if json_path:
        Path(json_path).write_text(
            json.dumps({"service": service, "live": quality}, indent=2) + "\n", encoding="utf-8"
        )


from pvopt.cli_live import (  # noqa: E402
    auto,
    energy,
    force,
    history,
    house,
    off,
    run,
    schedules,
    status,
)

for _command in (run, status, history, force, auto, off, house, schedules, energy):
    main.add_command(_command)

if __name__ == "__main__":
    main()
