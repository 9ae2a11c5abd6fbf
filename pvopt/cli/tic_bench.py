"""The TIC benchmarks, `pvopt bench-tic` and `bench-tic-e2e`: simulator commands (`sim` extra)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pvopt.cli.common import console, require_sim


@click.command("bench-tic")
@click.option("--seconds", default=60.0, show_default=True, help="Live measuring window.")
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the figures.")
def bench_tic(seconds: float, json_path: str | None) -> None:
    """Parser frames/s, and CPU %, RSS of `pvopt tic` fed 9600-baud frames over a pty."""
    require_sim("`pvopt bench-tic`")
    from pvsim.tic_bench import measure_reader

    figures = measure_reader(seconds, console)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


@click.command("bench-tic-e2e")
@click.option("--config", "config_path", default="seed_house", show_default=True)
@click.option("--trace", "trace_path", default="broken_clouds", show_default=True)
@click.option("--start", default="11:45", show_default=True, metavar="HH:MM")
@click.option("--minutes", default=15.0, show_default=True)
@click.option("--workdir", default="out/bench-tic", show_default=True)
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the figures.")
def bench_tic_e2e(
    config_path: str,
    trace_path: str,
    start: str,
    minutes: float,
    workdir: str,
    json_path: str | None,
) -> None:
    """House → TIC frames → `pvopt tic` → `pvopt run` against the direct-MQTT house, side by
    side: capture, and the frame-written → command latency (median, p99)."""
    require_sim("`pvopt bench-tic-e2e`")
    from pvopt.examples import config_path as shipped_config
    from pvopt.examples import trace_path as shipped_trace
    from pvsim.tic_bench import measure_chain

    figures = measure_chain(
        shipped_config(config_path),
        shipped_trace(trace_path),
        start,
        minutes,
        Path(workdir),
        console,
    )
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


COMMANDS = (bench_tic, bench_tic_e2e)
