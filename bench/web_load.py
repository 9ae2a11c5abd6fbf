"""What the page costs the regulation: meter→command latency (median, p99) and RSS of a real
`pvopt run` with the page off, then on with 20 clients holding the live stream open; and the
page's weight (every asset it loads). Prints the figures docs/web.md quotes.

    .venv/bin/python bench/web_load.py [--samples 40] [--clients 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from machines.wiring import ONLINE_TOPIC
from pvopt import config as cfgmod
from pvsim.bench_service import Watch, proc_stat
from pvsim.live import site_config, spawn_service, stop_service
from pvsim.servers.loopback import free_port
from pvsim.servers.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "pvopt" / "adapters" / "web" / "static"
PACE_S = 2.0  # between meter samples: a Linky's own pace


class Stream(threading.Thread):
    """One browser's live stream: reads every event until told to stop."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.events, self.stop = port, 0, threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/api/events", headers={"accept": "text/event-stream"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        while not self.stop.is_set():
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                self.events += 1
        conn.close()


def measure(cfg_path: Path, samples: int, clients: int, port: int | None) -> dict[str, Any]:
    cfg = cfgmod.load(cfg_path, environ={})
    first = cfg.specs()[0]
    cmd_topic = f"scr/{first.id}/in"
    watch = Watch(cfg, [cmd_topic, ONLINE_TOPIC])
    proc = spawn_service(cfg_path)
    streams: list[Stream] = []
    try:
        if watch.wait(ONLINE_TOPIC, 0, 30) is None:
            raise SystemExit(f"pvopt run did not come online; see {cfg_path.parent}/run.log")
        if port is not None:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/session", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            streams = [Stream(port) for _ in range(clients)]
            for s in streams:
                s.start()
        pub = watch.bus
        pub.publish(f"scr/{first.id}/temperature", "50", qos=1)
        lat = []
        for n in range(samples):
            grid = -3500 if n % 2 == 0 else 1500  # surplus, then import: both move the load
            sent = time.perf_counter()
            pub.publish("tic/SINSTS", str(max(grid, 0)), qos=0)
            pub.publish("tic/SINSTI", str(max(-grid, 0)), qos=0)
            got = watch.wait(cmd_topic, sent, PACE_S - 0.1)
            if got is not None:
                lat.append(got - sent)
            time.sleep(max(0.0, sent + PACE_S - time.perf_counter()))
        _, rss, peak = proc_stat(proc.pid)
        lat.sort()
        return {
            "samples": len(lat),
            "median_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 1),
            "rss_mb": round(rss / 1024, 1),
            "rss_peak_mb": round(peak / 1024, 1),
            "streams_alive": sum(s.is_alive() for s in streams),
            "events_per_stream": min((s.events for s in streams), default=0),
        }
    finally:
        for s in streams:
            s.stop.set()
        stop_service(proc)
        watch.bus.stop()


def page_weight(port: int | None = None) -> dict[str, int]:
    """Bytes of every shipped asset (what a first visit downloads, uncompressed)."""
    sizes = {p.name: p.stat().st_size for p in sorted(STATIC.iterdir())}
    sizes["total"] = sum(sizes.values())
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "house.yml")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker:
        off = site_config(args.config, Path(tmp) / "off", broker.port)
        print(f"page off: {args.samples} meter samples, {PACE_S} s apart …", flush=True)
        out["page_off"] = measure(off, args.samples, 0, None)
        port = free_port()
        on = site_config(
            args.config,
            Path(tmp) / "on",
            broker.port,
            sections={"web": {"listen": f"127.0.0.1:{port}"}},
        )
        print(f"page on, {args.clients} live streams open …", flush=True)
        out["page_on"] = measure(on, args.samples, args.clients, port)
    off_, on_ = out["page_off"], out["page_on"]
    out["ratio_median"] = round(on_["median_ms"] / off_["median_ms"], 3)
    out["ratio_p99"] = round(on_["p99_ms"] / off_["p99_ms"], 3)
    out["rss_delta_mb"] = round(on_["rss_mb"] - off_["rss_mb"], 1)
    out["page_weight_bytes"] = page_weight()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
