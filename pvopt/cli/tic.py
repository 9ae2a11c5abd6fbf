"""`pvopt tic`: the Linky's serial output (TIC) onto MQTT; `pvopt bench-tic`: its figures."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path

import click

from pvopt.cli.common import config_option, console, load_config

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
    summary = threading.Thread(target=_summaries, args=(bridge, reader), daemon=True)
    summary.start()
    reader.run()
    bridge.stop()
    log.info("pvopt tic stopped")


def _summaries(bridge: object, reader: object) -> None:
    """The summary also goes out while no frame arrives (a dead meter still says so)."""
    from pvopt.adapters.tic.bridge import TicBridge
    from pvopt.adapters.tic.reader import TicReader

    assert isinstance(bridge, TicBridge) and isinstance(reader, TicReader)
    every = bridge.cfg.tic.summary_every_s
    while not reader.stopping.wait(every):
        now = bridge.clock()
        if bridge.bus.connected.is_set() and now - bridge.summary_at >= every:
            bridge.publish_summary(now)


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
