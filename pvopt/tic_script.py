"""`pvopt tic` (also the lean `pvopt-tic` script): the Linky's TIC onto MQTT.

It lives outside `pvopt.cli` so the `pvopt-tic` script loads only the config, the TIC adapter
and paho — not the service, the store or rich — and fits the Pi's memory aim (~40 MB)."""

from __future__ import annotations

import logging
import signal
import sys

import click

from machines.errors import BrokerError
from pvopt import config as cfgmod

log = logging.getLogger("pvopt.tic")


def _load(path: str | None) -> cfgmod.Config:
    """The config, or one line per problem on stderr and exit 1 (as `pvopt.cli` does)."""
    try:
        return cfgmod.load(cfgmod.default_path(path))
    except cfgmod.ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error {problem}", err=True)
        sys.exit(1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    default=None,
    help="Config file (default: $PVOPT_CONFIG, else ./pvopt.yml).",
)
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

    cfg = _load(config_path)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    t = cfg.tic
    port = port or t.port
    setting = mode or t.mode
    reader = TicReader(
        port,
        setting,  # type: ignore[arg-type]
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
        setting,
        t.topic_prefix,
        cfg.mqtt.host,
        cfg.mqtt.port,
    )
    try:
        bridge.start()
    except BrokerError as exc:  # bad TLS files, a host that does not resolve: say it, exit 1
        click.echo(f"error mqtt: {exc}", err=True)
        sys.exit(1)
    reader.run()
    bridge.stop()
    log.info("pvopt tic stopped")


def historic_note(cfg: cfgmod.Config) -> None:
    """`config check`: one warning line if the running TIC bridge reads a historic meter."""
    from pvopt.adapters.tic.bridge import historic_warning, read_summary, reads_tic

    if not reads_tic(cfg):
        return

    line = historic_warning(cfg, read_summary(cfg))
    if line is not None:
        click.echo(f"{click.style('warning', fg='yellow')} {line}", err=True)


if __name__ == "__main__":
    tic()
