"""`pvopt demo`: the service regulating a virtual house through a private Mosquitto, live."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import Progress

from machines.wiring import STATUS_TOPIC
from pvopt import config as cfgmod
from pvopt.adapters.mqtt import MqttBus
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
    from pvsim.tables import ratio_table, summary_table

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
                    parts: list[RenderableType] = [progress]
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
        specs = cfg.specs()
        console.print(
            summary_table(kpis, f"What the virtual house measured in {minutes:g} min", specs, False)
        )
        rows = [(f"live, through the broker ({cfg.regulation.policy} policy)", kpis)]
        rows += [
            (f"simulator, same window, {p} policy", simulate(trace, cfg, p).kpis)
            for p in ("default", "legacy")
        ]
        console.print(ratio_table(rows, "live against the simulator (same window)"))
        store = SqliteStore(cfg.state.path)
        names = [spec.name for spec in specs]
        today = datetime.now(cfg.site.tz).date()
        console.print(energy_table(report(store, cfg.site.tz, names, today, 1), names))
        store.close()
        console.print(
            "Why two views: the first tables come from the virtual house, which knows the true "
            "solar output every second; the last comes from pvopt's own store, which only sees "
            "the meter, so its 'surplus kept' (surplus taken ÷ (taken + exported)) is not "
            "'capture' (taken ÷ the most the loads could physically take), and it counts from the "
            "service's start to its stop, so its import and export differ a little. And "
            f"{minutes:g} minutes of broken clouds is a stress test, not a day: clouds pass every "
            "few seconds, so the import by loads is many times what a whole day gives "
            "(`pvopt simulate broken_clouds --config seed_house`: about 0.7 % over the day).",
            highlight=False,
        )
        console.print(
            f"(`pvopt energy --config {cfg_path}` shows the last table again)", highlight=False
        )
