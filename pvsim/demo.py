"""`pvopt demo`: the service regulating a virtual house through a private Mosquitto, live."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import Progress
from rich.table import Table

from pvopt import config as cfgmod
from pvopt.adapters.mqtt import MqttBus
from pvopt.topics import STATUS_TOPIC
from pvsim.live import Background, site_config, spawn_service, stop_service
from pvsim.servers.mosquitto import Mosquitto
from pvsim.simulator import simulate
from pvsim.traces import load_trace, offset_of, window
from state.store import SqliteStore


def run_demo(
    config_path: Path,
    trace_path: Path,
    start: str,
    minutes: float,
    workdir: Path,
    console: Console,
    progress: Progress,
    tic: bool = False,
) -> None:
    from pvopt.energy_report import report
    from pvopt.tables import energy_table, status_table
    from pvsim.tables import summary_table

    seconds = round(minutes * 60)
    with Mosquitto() as broker:
        cfg_path = site_config(config_path, workdir, broker.port)
        tic_site = None
        if tic:  # the house's meter speaks TIC on a pty, `pvopt tic` publishes it
            from pvsim.tic_bench import TicSite

            tic_site = TicSite(config_path, workdir, broker.port)
            cfg_path = tic_site.cfg_path
        cfg = cfgmod.load(cfg_path, environ={})
        full = load_trace(trace_path)
        trace = window(full, offset_of(full, start, cfg.site.tz), seconds)
        console.print(
            f"Mosquitto on 127.0.0.1:{broker.port}; `pvopt run` logs to {workdir / 'run.log'}; "
            f"the virtual house plays {trace.name} from {start} for {minutes:g} min.",
            highlight=False,
        )
        latest: dict[str, bytes] = {}
        seen = threading.Event()

        def keep(topic: str, payload: bytes) -> None:
            latest[topic] = payload
            seen.set()

        watcher = MqttBus(cfg.mqtt, [STATUS_TOPIC], keep, client_id="pvopt-demo-watch")
        proc = spawn_service(cfg_path)
        watcher.start()
        house = tic_site.house(trace) if tic_site else Background(cfg_path, trace)
        house.start()
        task = progress.add_task("virtual house", total=seconds)
        try:
            with Live(console=console, refresh_per_second=2) as live:
                while house.is_alive():
                    house.join(0.5)
                    progress.update(task, completed=house.done)
                    parts: list[object] = [progress]
                    if STATUS_TOPIC in latest:
                        doc = json.loads(latest[STATUS_TOPIC])
                        parts.insert(0, status_table(doc, "live status"))
                    live.update(Group(*parts))
                    if proc.poll() is not None:
                        raise SystemExit(f"pvopt run exited ({proc.returncode}); see run.log")
        finally:
            stop_service(proc)
            watcher.stop()
            if tic_site is not None:
                tic_site.close()
        console.print()
        if house.error is not None or house.result is None:
            raise SystemExit(f"virtual house failed: {house.error}")
        kpis = house.result.kpis
        console.print(summary_table(kpis, f"measured by the virtual house — {minutes:g} min live"))
        table = Table(title="the same window in the simulator (virtual clock), for comparison")
        for col in ("policy", "capture", "import by loads Wh", "% of diverted"):
            table.add_column(col, justify="right")
        rows = [(f"live ({cfg.regulation.policy})", kpis)]
        rows += [(f"sim {p}", simulate(trace, cfg, p).kpis) for p in ("default", "legacy")]
        for label, k in rows:
            share = 100 * k["import_by_loads_wh"] / max(k["diverted_wh"], 1e-9)
            table.add_row(
                label, f"{k['capture']:.3f}", f"{k['import_by_loads_wh']:.1f}", f"{share:.1f}"
            )
        console.print(table)
        store = SqliteStore(cfg.state.path)
        names = [spec.name for spec in cfg.specs()]
        today = datetime.now(cfg.site.tz).date()
        console.print(energy_table(report(store, cfg.site.tz, names, today, 1), names))
        store.close()
        console.print(f"(`pvopt energy --config {cfg_path}` shows it again)", highlight=False)
