"""`pvopt tic`: the Linky's serial output (TIC) onto MQTT; `pvopt bench-tic`: its figures."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import click

from pvopt import config as cfgmod
from pvopt.cli.common import config_option, console, err_console, load_config

log = logging.getLogger("pvopt.tic")


@click.command()
@config_option
@click.option("--port", default=None, metavar="DEVICE", help="Serial port (default: tic.port).")
@click.option(
    "--mode",
    type=click.Choice(["auto", "historic", "standard"]),
    default=None,
    help="TIC mode: historic 1200 baud, standard 9600 baud, auto finds it (default: tic.mode).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    show_default=True,
)
def tic(config_path: str | None, port: str | None, mode: str | None, log_level: str) -> None:
    """Read the Linky's TIC on a serial port and publish SINSTS, SINSTI, ERQT, the tariff and
    every other label on MQTT, every frame, until SIGTERM/SIGINT."""
    from pvopt.adapters.tic.bridge import TicBridge
    from pvopt.adapters.tic.reader import Backoff, TicReader

    cfg = load_config(config_path)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    t = cfg.tic
    port = port or t.port
    reader = TicReader(
        port,
        mode or t.mode,  # type: ignore[arg-type]
        lambda frame: bridge.on_frame(frame),
        backoff=Backoff(t.reconnect_min_s, t.reconnect_max_s),
        detect_s=t.detect_s,
    )
    bridge = TicBridge(cfg, reader.parser.counters, port=port, reader_state=lambda: reader.state)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: reader.stop())
    log.info(
        "pvopt tic: %s, mode %s, topics %s* → MQTT %s:%d",
        port,
        mode or t.mode,
        t.topic_prefix,
        cfg.mqtt.host,
        cfg.mqtt.port,
    )
    bridge.start()
    reader.run()
    bridge.stop()
    log.info("pvopt tic stopped")


def historic_note(cfg: cfgmod.Config) -> None:
    """`config check`: one warning line if the running TIC bridge reads a historic meter."""
    if cfg.meter.kind != "linky":
        return
    from pvopt.adapters.tic.bridge import historic_warning, read_summary

    line = historic_warning(cfg, read_summary(cfg))
    if line is not None:
        err_console.print(f"[yellow]warning[/yellow] {line}", highlight=False)


@click.command("bench-tic")
@click.option("--seconds", default=60.0, show_default=True, help="Live measuring window.")
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the figures.")
def bench_tic(seconds: float, json_path: str | None) -> None:
    """Parser frames/s, and CPU %, RSS of `pvopt tic` fed 9600-baud frames over a pty."""
    from pvsim.tic_bench import measure_reader

    figures = measure_reader(seconds, console)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


@click.command("bench-tic-e2e")
@click.option("--config", "config_path", default="examples/seed_house.yml", show_default=True)
@click.option("--trace", "trace_path", default="examples/traces/broken_clouds.csv.gz")
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
    from pvsim.tic_bench import measure_chain

    figures = measure_chain(
        Path(config_path), Path(trace_path), start, minutes, Path(workdir), console
    )
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


COMMANDS = (tic, bench_tic, bench_tic_e2e)
