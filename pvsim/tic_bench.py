"""The TIC chain on one machine, and its figures: `pvopt tic` as a subprocess on a pty, a house
that speaks TIC, the reader's cost (`pvopt bench-tic`) and the whole chain against the
direct-MQTT path (`pvopt bench-tic-e2e`)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pvopt import config as cfgmod
from pvopt.adapters.tic.frames import TicParser
from pvsim.bench_service import Watch, proc_stat
from pvsim.live import Background, hermetic_env, site_config, spawn_service, stop_service
from pvsim.physics import SimResult
from pvsim.servers.mosquitto import Mosquitto
from pvsim.simulator import simulate
from pvsim.tic_writer import LinkyTic, PtyLine, TicMeter, TicVirtualHouse, encode_frame
from pvsim.traces import Trace, load_trace, offset_of, window

FAST_TIC = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "detect_s": 2.0}


def tic_site(source: Path, workdir: Path, port: int, tty: Path | str, **tic: Any) -> Path:
    """`site_config` with a `tic:` section reading `tty`, fast to reconnect."""
    return site_config(
        source, workdir, port, sections={"tic": {"port": str(tty), **FAST_TIC, **tic}}
    )


def spawn_tic(cfg_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`pvopt tic` as a real subprocess (the lean `pvopt-tic` entry, as the systemd unit runs
    it); its log goes to tic.log beside the config."""
    log = open(cfg_path.parent / "tic.log", "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "pvopt.tic_script", "--config", str(cfg_path), *extra],
            env=hermetic_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    finally:
        log.close()


class TicHouse(threading.Thread):
    """A house played in a thread whose meter writes TIC frames on `line`."""

    def __init__(self, cfg_path: Path, trace: Trace, line: PtyLine):
        super().__init__(daemon=True)
        cfg = cfgmod.load(cfg_path, environ={})
        self.meter = TicMeter(line)
        self.house = TicVirtualHouse(cfg, trace, self.meter)
        self.result: SimResult | None = None
        self.error: BaseException | None = None
        self.done = 0  # seconds played, for a progress bar

    def run(self) -> None:
        try:
            self.result = self.house.run(self._progress)
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def _progress(self, done: int, _total: int) -> None:
        self.done = done


class TicSite:
    """The TIC half of a site for the demo: a pty for the house's meter, a config reading it,
    and `pvopt tic` running on it."""

    def __init__(self, source: Path, workdir: Path, port: int):
        self.line = PtyLine(workdir.resolve() / "ttyTIC")
        self.cfg_path = tic_site(source, workdir, port, self.line.port)
        self.proc = spawn_tic(self.cfg_path)

    def house(self, trace: Trace) -> TicHouse:
        return TicHouse(self.cfg_path, trace, self.line)

    def close(self) -> None:
        stop_service(self.proc)
        self.line.close()


def three_phase_groups(k: int) -> list[tuple[str, str] | tuple[str, str, str]]:
    """A full three-phase standard frame (the longest a Linky sends), varying with `k`."""
    g: list[tuple[str, str] | tuple[str, str, str]] = list(
        LinkyTic().groups(1000 + k % 500, 0, 1000, 10 * k, 1_781_510_400.0 + k)
    )
    g += [(f"{p}{n}", f"{v:03d}") for n in (1, 2, 3) for p, v in (("IRMS", 5), ("URMS", 231))]
    g += [(f"SINSTS{n}", f"{300 + n:05d}") for n in (1, 2, 3)]
    g += [(f"SMAXSN{n}", "H260101120000", "01234") for n in (1, 2, 3)]
    g += [(f"UMOY{n}", "H260101120000", "230") for n in (1, 2, 3)]
    return g


def parser_rate(frames: int = 3000) -> dict[str, float]:
    """Frames per second the pure parser takes, three-phase standard frames in 64-byte reads."""
    data = b"".join(encode_frame(three_phase_groups(k)) for k in range(frames))
    parser = TicParser()
    t0 = time.perf_counter()
    got = 0
    for k in range(0, len(data), 64):
        got += len(parser.feed(data[k : k + 64]))
    dt = time.perf_counter() - t0
    assert got == frames, (got, parser.counters)
    return {
        "parser_frames_per_s": round(frames / dt),
        "frame_bytes": round(len(data) / frames),
    }


def measure_reader(
    seconds: float, console: Console, workdir: Path = Path("out/bench-tic")
) -> dict[str, Any]:
    """Parser speed, then `pvopt tic` (subprocess) fed at 9600 baud for `seconds`: CPU % of
    one core, RSS, frames published."""
    out: dict[str, Any] = parser_rate()
    console.print(f"parser: {out['parser_frames_per_s']} frames/s ({out['frame_bytes']} B each)")
    line = PtyLine(workdir.resolve() / "ttyTIC")
    stop = threading.Event()
    with Mosquitto() as broker:
        cfg_path = tic_site(
            Path("examples/seed_house.yml"), workdir, broker.port, line.port, mode="standard"
        )
        cfg = cfgmod.load(cfg_path, environ={})
        watch = Watch(cfg, ["tic/SINSTS", "tic/bridge"])
        proc = spawn_tic(cfg_path)

        def feed() -> None:  # back to back at 9600 baud, as a meter in standard mode does
            k = 0
            while not stop.is_set():
                line.write_paced(encode_frame(three_phase_groups(k)), 9600, stop)
                k += 1

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            if watch.wait("tic/SINSTS", 0, 30) is None:
                raise SystemExit(f"pvopt tic published nothing; see {cfg_path.parent}/tic.log")
            console.print(f"`pvopt tic` at 9600 baud for {seconds:g} s …")
            n0 = sum(1 for _, t, _ in list(watch.messages) if t == "tic/SINSTS")
            cpu0, _, _ = proc_stat(proc.pid)
            t0 = time.monotonic()
            time.sleep(seconds)
            cpu1, rss, peak = proc_stat(proc.pid)
            elapsed = time.monotonic() - t0
            n1 = sum(1 for _, t, _ in list(watch.messages) if t == "tic/SINSTS")
            out["cpu_pct"] = round(100 * (cpu1 - cpu0) / elapsed, 2)
            out["rss_mb"] = round(rss / 1024, 1)
            out["rss_peak_mb"] = round(peak / 1024, 1)
            out["frames_per_s_live"] = round((n1 - n0) / elapsed, 2)
        finally:
            stop.set()
            stop_service(proc)
            watch.bus.stop()
            line.close()
    table = Table(title="pvopt tic — measured")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("aim", justify="right")
    aims = {"cpu_pct": "< 2", "rss_mb": "≤ 40", "rss_peak_mb": "≤ 40"}
    for key, value in out.items():
        table.add_row(key, str(value), aims.get(key, ""))
    console.print(table)
    return out


def latency(
    cfg_path: Path, line: PtyLine | None, samples: int = 40, period_s: float = 2.5
) -> dict[str, float]:
    """Meter value → command on the broker, through TIC frames on `line` (or, with None, the
    meter topics published directly): median and p99 in ms."""
    cfg = cfgmod.load(cfg_path, environ={})
    first = cfg.specs()[0]
    cmd_topic = f"scr/{first.id}/in"
    watch = Watch(cfg, [cmd_topic])
    watch.bus.publish(f"scr/{first.id}/temperature", "50", qos=1)
    linky = LinkyTic()
    lat = []
    erqt = 0.0
    try:
        for n in range(samples):
            grid = -3500 if n % 2 == 0 else 1500  # surplus, then import: both move it
            now = time.time()
            sent = time.perf_counter()
            if line is not None:
                line.write(encode_frame(linky.groups(max(grid, 0), max(-grid, 0), grid, erqt, now)))
            else:
                watch.bus.publish("tic/SINSTS", str(max(grid, 0)))
                watch.bus.publish("tic/SINSTI", str(max(-grid, 0)))
            got = watch.wait(cmd_topic, sent, period_s - 0.1)
            if got is not None:
                lat.append(got - sent)
            time.sleep(max(0.0, sent + period_s - time.perf_counter()))
    finally:
        watch.bus.stop()
    lat.sort()
    if not lat:
        return {"latency_samples": 0}
    return {
        "latency_samples": len(lat),
        "latency_median_ms": round(statistics.median(lat) * 1000, 1),
        "latency_p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 1),
    }


def measure_chain(
    config_path: Path,
    trace_path: Path,
    start: str,
    minutes: float,
    workdir: Path,
    console: Console,
) -> dict[str, Any]:
    """Latency of both paths, then `minutes` of the trace live through each path side by side
    (each on its own broker and service), with the simulator on the same window."""
    full = load_trace(trace_path)
    out: dict[str, Any] = {}
    brokers = {p: Mosquitto().start() for p in ("tic", "mqtt")}
    procs: list[subprocess.Popen[bytes]] = []
    line = PtyLine((workdir / "tic").resolve() / "ttyTIC")
    try:

        def configs() -> dict[str, Path]:  # fresh stores each time
            return {
                "tic": tic_site(config_path, workdir / "tic", brokers["tic"].port, line.port),
                "mqtt": site_config(config_path, workdir / "mqtt", brokers["mqtt"].port),
            }

        cfgs = configs()
        procs.append(spawn_tic(cfgs["tic"]))
        runs = [spawn_service(cfgs["tic"]), spawn_service(cfgs["mqtt"])]
        time.sleep(3)  # both services online, the reader has opened the pty
        console.print("latency: 40 meter samples 2.5 s apart, through TIC and directly …")
        lat_threads = {}
        for path in ("tic", "mqtt"):
            t = _Result(latency, cfgs[path], line if path == "tic" else None)
            t.start()
            lat_threads[path] = t
        for path, t in lat_threads.items():
            t.join()
            out[f"{path}_latency"] = t.value
        for proc in runs:
            stop_service(proc)
        cfgs = configs()
        procs += [spawn_service(cfgs["tic"]), spawn_service(cfgs["mqtt"])]
        cfg = cfgmod.load(cfgs["tic"], environ={})
        trace = window(full, offset_of(full, start, cfg.site.tz), round(minutes * 60))
        houses: dict[str, TicHouse | Background] = {
            "tic": TicHouse(cfgs["tic"], trace, line),
            "mqtt": Background(cfgs["mqtt"], trace),
        }
        console.print(f"live replay: {minutes:g} min of {full.name} from {start}, both paths …")
        for h in houses.values():
            h.start()
        for h in houses.values():
            h.join()
        for path, h in houses.items():
            if h.result is None:
                raise SystemExit(f"virtual house ({path}) failed: {h.error}")
            out[f"{path}_kpis"] = h.result.kpis
        out["sim_kpis"] = simulate(trace, cfg, cfg.regulation.policy).kpis
    finally:
        for proc in procs:
            stop_service(proc)
        for broker in brokers.values():
            broker.close()
        line.close()
    table = Table(title=f"house → meter → `pvopt run`: {minutes:g} min of {full.name} from {start}")
    for col in ("path", "capture", "import by loads Wh", "latency median ms", "p99 ms"):
        table.add_column(col, justify="right")
    for path in ("tic", "mqtt"):
        k, lat = out[f"{path}_kpis"], out[f"{path}_latency"]
        table.add_row(
            "TIC frames → pvopt tic" if path == "tic" else "direct MQTT",
            f"{k['capture']:.3f}",
            f"{k['import_by_loads_wh']:.1f}",
            str(lat.get("latency_median_ms")),
            str(lat.get("latency_p99_ms")),
        )
    sim = out["sim_kpis"]
    table.add_row("simulator", f"{sim['capture']:.3f}", f"{sim['import_by_loads_wh']:.1f}", "", "")
    console.print(table)
    return out


class _Result(threading.Thread):
    def __init__(self, fn: Any, *args: Any):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.value: Any = None

    def run(self) -> None:
        self.value = self.fn(*self.args)
