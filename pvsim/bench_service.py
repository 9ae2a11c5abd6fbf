"""`pvopt bench-service`: what the running service costs and how well it regulates live.

Prints meter-message→command latency through a real broker (median, p99), the RSS of
`pvopt run`, its CPU share over a steady minute and an idle one, its SQLite writes per minute in
steady state, and live replays of a cloudy window with both policies, each on its own broker,
`pvopt run` and virtual house, side by side.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from machines.wiring import ONLINE_TOPIC, STATUS_TOPIC
from pvopt import config as cfgmod
from pvopt.adapters.mqtt import MqttBus
from pvsim.live import Background, site_config, spawn_service, stop_service
from pvsim.servers.mosquitto import Mosquitto
from pvsim.simulator import simulate
from pvsim.traces import load_trace, offset_of, window

CLK_TCK = 100  # os.sysconf("SC_CLK_TCK") on every Linux this runs on


def proc_stat(pid: int) -> tuple[float, int, int]:
    """CPU seconds used, RSS and peak RSS (kB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return cpu, kb["VmRSS"], kb["VmHWM"]


class Watch:
    """Records every message pvopt publishes, with arrival times."""

    def __init__(self, cfg: cfgmod.Config, topics: list[str]):
        self.cond = threading.Condition()
        self.messages: list[tuple[float, str, bytes]] = []
        self.bus = MqttBus(cfg.mqtt, topics, self._keep, client_id="pvopt-bench-watch")
        self.bus.start()
        if not self.bus.connected.wait(10):
            raise SystemExit("bench: no broker")

    def _keep(self, topic: str, payload: bytes) -> None:
        with self.cond:
            self.messages.append((time.perf_counter(), topic, payload))
            self.cond.notify_all()

    def wait(self, topic: str, after: float, timeout_s: float) -> float | None:
        """Arrival time of the first `topic` message after `after`, or None."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                for at, t, _ in self.messages:
                    if t == topic and at > after:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def last(self, topic: str) -> bytes | None:
        with self.cond:
            return next((p for _, t, p in reversed(self.messages) if t == topic), None)


def measure_service(config_path: Path, workdir: Path, console: Console) -> dict[str, Any]:
    """Latency, RSS, CPU and writes of one `pvopt run` on a private broker (about 4 minutes)."""
    out: dict[str, Any] = {}
    with Mosquitto() as broker:
        cfg_path = site_config(config_path, workdir, broker.port)
        cfg = cfgmod.load(cfg_path, environ={})
        first = cfg.specs()[0]
        cmd_topic = f"scr/{first.id}/in"
        watch = Watch(cfg, [cmd_topic, STATUS_TOPIC, ONLINE_TOPIC])
        proc = spawn_service(cfg_path)
        try:
            if watch.wait(ONLINE_TOPIC, 0, 30) is None:
                raise SystemExit(f"pvopt run did not come online; see {cfg_path.parent}/run.log")
            pub = watch.bus
            pub.publish(f"scr/{first.id}/temperature", "50", qos=1)
            # -- latency: samples that each change the first load's command, 2.5 s apart
            lat = []
            console.print("latency: 40 meter samples, 2.5 s apart …")
            for n in range(40):
                grid = -3500 if n % 2 == 0 else 1500  # surplus, then import: both move it
                sent = time.perf_counter()
                pub.publish("tic/SINSTS", str(max(grid, 0)), qos=0)
                pub.publish("tic/SINSTI", str(max(-grid, 0)), qos=0)
                got = watch.wait(cmd_topic, sent, 2.4)
                if got is not None:
                    lat.append(got - sent)
                time.sleep(max(0.0, sent + 2.5 - time.perf_counter()))  # the meter's own pace
            lat.sort()
            out["latency_samples"] = len(lat)
            out["latency_median_ms"] = round(statistics.median(lat) * 1000, 1)
            out["latency_p99_ms"] = round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 1)
            # -- steady minute: a steady surplus every 2 s, nothing to change
            console.print("steady minute: constant surplus every 2 s …")
            for _ in range(5):  # reach full power first
                pub.publish("tic/SINSTS", "0")
                pub.publish("tic/SINSTI", "6000")
                time.sleep(2)
            writes0 = json.loads(watch.last(STATUS_TOPIC) or b"{}").get("store_writes", 0)
            cpu0, _, _ = proc_stat(proc.pid)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                pub.publish("tic/SINSTS", "0")
                pub.publish("tic/SINSTI", "6000")
                time.sleep(2)
            cpu1, rss, _ = proc_stat(proc.pid)
            elapsed = time.monotonic() - t0
            writes1 = json.loads(watch.last(STATUS_TOPIC) or b"{}").get("store_writes", 0)
            out["cpu_steady_pct"] = round(100 * (cpu1 - cpu0) / elapsed, 2)
            out["writes_per_min_steady"] = round((writes1 - writes0) * 60 / elapsed, 2)
            out["rss_mb"] = round(rss / 1024, 1)
            # -- idle minute: no meter message at all
            console.print("idle minute: no meter traffic …")
            cpu0, _, _ = proc_stat(proc.pid)
            time.sleep(60)
            cpu1, rss, peak = proc_stat(proc.pid)
            out["cpu_idle_pct"] = round(100 * (cpu1 - cpu0) / 60, 2)
            out["rss_peak_mb"] = round(peak / 1024, 1)
        finally:
            stop_service(proc)
            watch.bus.stop()
    return out


def live_quality(
    config_path: Path,
    trace_path: Path,
    start: str,
    minutes: float,
    workdir: Path,
    console: Console,
) -> list[dict[str, Any]]:
    """Both policies live, in parallel, each with its own broker, service and house."""
    full = load_trace(trace_path)
    rows = []
    brokers = [Mosquitto().start() for _ in ("default", "legacy")]
    procs = []
    houses = []
    try:
        for policy, broker in zip(("default", "legacy"), brokers, strict=True):
            cfg_path = site_config(
                config_path, workdir / policy, broker.port, regulation={"policy": policy}
            )
            cfg = cfgmod.load(cfg_path, environ={})
            trace = window(full, offset_of(full, start, cfg.site.tz), round(minutes * 60))
            procs.append(spawn_service(cfg_path))
            houses.append((policy, cfg, trace, Background(cfg_path, trace)))
        for *_, house in houses:
            house.start()
        console.print(f"live replay: {minutes:g} min of {full.name} from {start}, both policies …")
        for *_, house in houses:
            house.join()
    finally:
        for proc in procs:
            stop_service(proc)
        for broker in brokers:
            broker.close()
    for policy, cfg, trace, house in houses:
        if house.result is None:
            raise SystemExit(f"virtual house ({policy}) failed: {house.error}")
        live = house.result.kpis
        sim = simulate(trace, cfg, policy).kpis
        rows.append({"policy": policy, "live": live, "sim": sim})
    return rows


def report(service: dict[str, Any], quality: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="pvopt run — measured")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("aim", justify="right")
    aims = {
        "latency_median_ms": "≤ 1000",
        "latency_p99_ms": "≤ 1000",
        "rss_mb": "≤ 60",
        "cpu_idle_pct": "≤ 1",
        "writes_per_min_steady": "≤ 1",
    }
    for key, value in service.items():
        table.add_row(key, str(value), aims.get(key, ""))
    console.print(table)
    if not quality:
        return
    q = Table(title="live replay through the broker (and the simulator on the same window)")
    for col in ("policy", "capture", "import by loads Wh", "% of diverted", "sim capture", "sim %"):
        q.add_column(col, justify="right")
    for row in quality:
        live, sim = row["live"], row["sim"]
        q.add_row(
            row["policy"],
            f"{live['capture']:.3f}",
            f"{live['import_by_loads_wh']:.1f}",
            f"{100 * live['import_by_loads_wh'] / max(live['diverted_wh'], 1e-9):.1f}",
            f"{sim['capture']:.3f}",
            f"{100 * sim['import_by_loads_wh'] / max(sim['diverted_wh'], 1e-9):.1f}",
        )
    console.print(q)
    for row in quality:  # the check: the service regulates as the simulator does
        live, sim = row["live"], row["sim"]
        d_cap = abs(live["capture"] - sim["capture"])
        d_imp = abs(live["import_by_loads_wh"] - sim["import_by_loads_wh"])
        verdict = "matches" if d_cap <= 0.01 and d_imp <= 2.0 else "does NOT match"
        console.print(
            f"{row['policy']}: live {verdict} the simulator (capture {100 * d_cap:.1f} points "
            f"apart, import {d_imp:.1f} Wh apart; aim ≤ 1 point and ≤ 2 Wh)"
        )
    if len(quality) == 2:
        d, leg = (r["live"] for r in quality)
        ratio = d["import_by_loads_wh"] / max(leg["import_by_loads_wh"], 1e-9)
        console.print(f"default imports {100 * ratio:.0f} % of what legacy imports (aim ≤ 60 %)")
