"""A whole site on one machine: a private broker, `pvopt run` as a real subprocess and a virtual
house, wired together on a loopback port. The demo, the service benchmark and the end-to-end
tests are built from these pieces."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from pvopt import config as cfgmod
from pvopt.config import ENV_KEYS
from pvsim.physics import SimResult
from pvsim.traces import Trace
from pvsim.virtual_house import VirtualHouse


def site_config(
    source: Path,
    workdir: Path,
    port: int,
    regulation: dict[str, Any] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A copy of `source` that talks to the broker on 127.0.0.1:`port` and keeps its state in
    `workdir` (fresh: any previous store there is removed); `sections` are merged over it."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("pvopt.db*"):
        old.unlink()
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["mqtt"] = {**data.get("mqtt", {}), "host": "127.0.0.1", "port": port}
    data["state"] = {**data.get("state", {}), "path": str(workdir / "pvopt.db")}
    data["regulation"] = {**data.get("regulation", {}), **(regulation or {})}
    data.pop("influxdb", None)
    for key, value in (sections or {}).items():
        data[key] = {**(data.get(key) or {}), **value}
    path = workdir / "pvopt.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def hermetic_env() -> dict[str, str]:
    """The environment without the seed's variables, so a user's MQTT_BROKER_PORT does not
    redirect a private run."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and k != "PVOPT_CONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn_service(cfg_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`pvopt run` as a real subprocess; its log goes to run.log beside the config."""
    log = open(cfg_path.parent / "run.log", "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "pvopt.cli", "run", "--config", str(cfg_path), *extra],
            env=hermetic_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    finally:
        log.close()


def stop_service(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> int:
    """SIGTERM (the clean shutdown of docs/topics.md), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def play_house(
    cfg_path: Path, trace: Trace, progress: Any = None, *, on_change: bool = False
) -> SimResult:
    """Play `trace` in real time as the house of the config at `cfg_path`; `on_change`: its
    meter bridge publishes a label only when it changed (and every minute)."""
    cfg = cfgmod.load(cfg_path, environ={})
    return VirtualHouse(cfg, trace, on_change=on_change).run(progress)


class Background(threading.Thread):
    """A house played in a thread, its result kept."""

    def __init__(self, cfg_path: Path, trace: Trace, *, on_change: bool = False):
        super().__init__(daemon=True)
        self.cfg_path, self.trace, self.on_change = cfg_path, trace, on_change
        self.result: SimResult | None = None
        self.error: BaseException | None = None
        self.done = 0

    def run(self) -> None:
        try:
            self.result = play_house(
                self.cfg_path, self.trace, self._progress, on_change=self.on_change
            )
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def _progress(self, done: int, _total: int) -> None:
        self.done = done
