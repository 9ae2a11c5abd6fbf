"""A private InfluxDB 1.x server (Debian's `influxd`) on loopback ports, in a temporary folder:
for the tests and the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from pvopt.mosquitto import free_port

CANDIDATES = ("influxd", "/usr/bin/influxd")


class InfluxdMissing(RuntimeError):
    pass


def find_binary() -> str:
    for name in CANDIDATES:
        path = shutil.which(name) or (name if Path(name).exists() else None)
        if path:
            return path
    raise InfluxdMissing(
        "influxd is not installed: `sudo apt-get install influxdb` (Debian/Raspberry Pi OS)"
    )


class Influxd:
    """`start()` on 127.0.0.1:`port` (HTTP); `stop()` keeps the data; `start()` again."""

    def __init__(self, port: int | None = None, *, auth: bool = False):
        self.binary = find_binary()
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pvopt-influxd-"))
        self.conf = self.dir / "influxdb.conf"
        self.conf.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.dir}/meta"
[data]
  dir = "{self.dir}/data"
  wal-dir = "{self.dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  auth-enabled = {"true" if auth else "false"}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> Influxd:
        log = open(self.dir / "influxd.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-config", str(self.conf)], stdout=log, stderr=log
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited; see {self.dir / 'influxd.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"influxd did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Influxd:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
