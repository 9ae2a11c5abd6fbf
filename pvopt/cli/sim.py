"""Developer tools on the command line: simulate, bench, demo, bench-service, house.

They import the simulator (`pvsim`, numpy, matplotlib) only when they run, so a slim install
(`pip install pvopt`, without the `sim` extra) keeps `pvopt run` light and says what is missing.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from machines.commands import parse_duration
from machines.loads import CommandError
from machines.policy import POLICIES
from pvopt import config as cfgmod
from pvopt.cli.common import (
    config_option,
    console,
    err_console,
    fail,
    load_config,
    progress_bar,
    require_sim,
)


def run_simulation(
    trace_path: str,
    cfg: cfgmod.Config,
    policy: str | None,
    record: bool = False,
    forecast: str | None = None,
    seed: int = 0,
) -> Any:
    """Simulate one trace with a progress bar; exit 1 on an unreadable trace or forecast.
    `forecast`: `perfect`, `realistic` (seeded), a file of issues, or None (the config's)."""
    from machines.errors import ForecastError
    from pvsim.forecasts import ERRORS, day_ahead, read_history
    from pvsim.simulator import simulate
    from pvsim.traces import TraceError, load_trace

    try:
        trace = load_trace(trace_path)
    except TraceError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(1)
    if forecast is None and cfg.forecast is not None:  # the config's: its file, else made
        forecast = str(cfg.forecast.file) if cfg.forecast.source == "file" else "realistic"
    forecasts = None
    if forecast in ERRORS:
        forecasts = day_ahead(trace, cfg.site.tz, forecast, seed)
    elif forecast is not None:
        try:
            forecasts = read_history(forecast)
        except ForecastError as exc:
            err_console.print(f"[red]error[/red] {exc}", highlight=False)
            sys.exit(1)
    with progress_bar() as bar:
        task = bar.add_task(
            f"{trace.name} ({policy or cfg.regulation.policy})", total=trace.seconds
        )
        return simulate(
            trace,
            cfg,
            policy,
            lambda done, _total: bar.update(task, completed=done),
            record=record,
            forecasts=forecasts,
        )


SHIPPED_HELP = "A shipped example by name works too: traces broken_clouds, clear_summer, "
SHIPPED_HELP += "overcast_winter, week_spring; configs house, seed_house."


def sim_config(path: str | None) -> cfgmod.Config:
    """--config FILE, or a shipped example house by name (`house`, `seed_house`)."""
    from pvopt.examples import config_path

    return load_config(None if path is None else str(config_path(path)))


def sim_trace(path: str) -> str:
    """TRACE, or a shipped trace by name; exit 1 naming the shipped ones when neither exists."""
    from pvopt.examples import shipped_traces, trace_path

    found = trace_path(path)
    if not found.is_file():
        names = ", ".join(shipped_traces())
        fail(f"{path}: no such trace file, and no shipped trace of that name ({names})")
    return str(found)


@click.command(epilog=SHIPPED_HELP)
@click.argument("trace")
@config_option
@click.option(
    "--policy",
    type=click.Choice(POLICIES.names()),
    default=None,
    help="Override regulation.policy.",
)
@click.option("--plot", "plot_path", metavar="PNG", default=None, help="Write a plot of the run.")
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the KPIs as JSON.")
@click.option(
    "--forecast",
    metavar="SOURCE",
    default=None,
    help="Plan the heating with day-ahead forecasts: 'realistic' (made from the trace with a "
    "seeded error), 'perfect', or a FILE of issues (issued_at,start,pv_w). Default: none, "
    "unless the config has forecast:.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="The forecast error's seed.")
def simulate(
    trace: str,
    config_path: str | None,
    policy: str | None,
    plot_path: str | None,
    json_path: str | None,
    forecast: str | None,
    seed: int,
) -> None:
    """Replay TRACE (ts,pv_w,base_load_w; .csv or .csv.gz) through the regulator."""
    cfg = sim_config(config_path)
    result = run_simulation(
        sim_trace(trace), cfg, policy, record=plot_path is not None, forecast=forecast, seed=seed
    )
    kpis = result.kpis
    if json_path:
        Path(json_path).write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        console.print(f"KPIs written to {json_path}", highlight=False)
    else:
        from pvsim.tables import summary_table

        console.print(summary_table(kpis, f"{kpis['trace']} — {cfg.source}", cfg.specs()))
    if plot_path:
        from pvsim.plot import plot_series

        title = f"{kpis['trace']} — policy {kpis['policy']} — capture {kpis['capture']:.3f}"
        plot_series(result.series, cfg.site.tz, title, plot_path)
        console.print(f"plot written to {plot_path}", highlight=False)


@click.command()
@click.option(
    "--traces",
    "traces_dir",
    metavar="DIR",
    default=None,
    help="Folder of traces (default: ../shared/traces if present, else the shipped traces).",
)
@click.option(
    "--houses",
    metavar="FILES",
    default="seed_house,house",
    show_default=True,
    help="Comma-separated configs to simulate (files, or shipped examples by name).",
)
@click.option(
    "--json", "json_path", metavar="FILE", default=None, help="Write all results as JSON."
)
def bench(traces_dir: str | None, houses: str, json_path: str | None) -> None:
    """KPIs of both policies on every trace, simulator speed and regulator tick cost."""
    from pvopt.examples import config_path
    from pvsim.bench import run_bench

    paths = [str(config_path(h)) for h in houses.split(",")]
    run_bench(traces_dir, paths, json_path, console, progress_bar)


@click.command(epilog=SHIPPED_HELP)
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    default="seed_house",
    show_default=True,
    help="The house to run (its mqtt and state settings are replaced by private ones).",
)
@click.option("--trace", "trace_path", default="broken_clouds", show_default=True)
@click.option("--start", default="11:45", show_default=True, metavar="HH:MM")
@click.option("--minutes", default=3.0, show_default=True, type=float)
@click.option("--workdir", default="out/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--tic", is_flag=True, help="The meter speaks TIC on a pty, read by `pvopt tic`.")
def demo(
    config_path: str, trace_path: str, start: str, minutes: float, workdir: str, tic: bool
) -> None:
    """A private Mosquitto, `pvopt run` and a virtual house playing a cloudy window in real
    time; shows the live status, then the KPIs."""
    from pvopt.examples import config_path as resolve
    from pvsim.demo import run_demo
    from pvsim.servers.loopback import ServerMissing

    config_file = resolve(config_path)
    load_config(str(config_file))  # say what is wrong with it before starting anything
    try:
        run_demo(
            config_file,
            Path(sim_trace(trace_path)),
            start,
            minutes,
            Path(workdir),
            console,
            progress_bar(),
            tic=tic,
        )
    except ServerMissing as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False)
        sys.exit(1)


@click.command("bench-service", epilog=SHIPPED_HELP)
@click.option("--config", "config_path", default="seed_house", show_default=True)
@click.option("--trace", "trace_path", default="broken_clouds", show_default=True)
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
    from pvopt.examples import config_path as resolve
    from pvsim.bench_service import live_quality, measure_service, report

    config_file, trace_file = resolve(config_path), Path(sim_trace(trace_path))
    service = measure_service(config_file, Path(workdir) / "service", console)
    quality = (
        live_quality(config_file, trace_file, start, minutes, Path(workdir), console)
        if minutes > 0
        else []
    )
    report(service, quality, console)
    if json_path:
        Path(json_path).write_text(
            json.dumps({"service": service, "live": quality}, indent=2) + "\n", encoding="utf-8"
        )


@click.command(epilog=SHIPPED_HELP)
@config_option
@click.option("--trace", "trace_path", required=True)
@click.option("--start", default=None, metavar="HH:MM", help="Local time in the trace to start at.")
@click.option("--duration", default=None, help="How long to play (90s, 15m, 2h; default: all).")
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the KPIs as JSON.")
@click.option(
    "--tic",
    "tic_link",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[LINK]",
    help="Speak TIC (standard mode) on a pseudo-terminal instead of publishing the "
    "meter topics; LINK: a symlink to create for it (for `pvopt tic --port LINK`).",
)
@click.option(
    "--on-change",
    is_flag=True,
    help="Publish a meter label only when it changed (and every minute), like many TIC bridges.",
)
def house(
    config_path: str | None,
    trace_path: str,
    start: str | None,
    duration: str | None,
    json_path: str | None,
    on_change: bool,
    tic_link: str | None,
) -> None:
    """A virtual house in real time: TRACE's PV and load as meter messages over MQTT, the loads
    obeying their command topics. Prints the KPIs it measured when it ends."""
    from pvsim.traces import TraceError, load_trace, offset_of, window
    from pvsim.virtual_house import VirtualHouse

    cfg = sim_config(config_path)
    try:
        trace = load_trace(sim_trace(trace_path))
        offset = offset_of(trace, start, cfg.site.tz) if start else 0
        seconds = int(parse_duration(duration)) if duration else trace.seconds - offset
        trace = window(trace, offset, seconds)
    except (TraceError, CommandError) as exc:
        fail(str(exc))
        return
    if tic_link is None:
        vh = VirtualHouse(cfg, trace, on_change=on_change)
    elif on_change:
        fail("--on-change is how some MQTT bridges publish; --tic speaks every frame")
        return
    else:  # the meter speaks TIC on a pty instead of MQTT
        from pvsim.tic_writer import PtyLine, TicMeter, TicVirtualHouse

        tic = TicMeter(PtyLine(None if tic_link == "-" else Path(tic_link).absolute()))
        console.print(f"TIC frames on {tic.line.port} (`pvopt tic --port {tic.line.port}`)")
        vh = TicVirtualHouse(cfg, trace, tic)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: vh.stopping.set())
    with progress_bar() as bar:
        task = bar.add_task(f"house {trace.name} from {start or 'its start'}", total=trace.seconds)
        result = vh.run(lambda done, _total: bar.update(task, completed=done))
    kpis = result.kpis
    if json_path:
        Path(json_path).write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
    from pvsim.tables import summary_table

    title = f"virtual house — {kpis['trace']} — {kpis['seconds']} s"
    console.print(summary_table(kpis, title, cfg.specs()))


COMMANDS = (simulate, bench, demo, bench_service, house)


def _needs_sim(command: click.Command) -> None:
    """Wrap `command` so a slim install answers with the extra to install, not a traceback."""
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require_sim(f"`pvopt {command.name}`")
        return callback(*args, **kwargs)

    command.callback = checked


for _command in COMMANDS:
    _needs_sim(_command)
