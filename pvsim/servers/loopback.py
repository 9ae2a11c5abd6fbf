"""Private servers on loopback ports (Mosquitto, InfluxDB) for the demo, the benchmarks and the
tests: a temporary folder, a subprocess, a readiness probe polled with a deadline."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(candidates: tuple[str, ...], hint: str) -> str:
    """The first of `candidates` on PATH or on disk; else `ServerMissing` with `hint`."""
    for name in candidates:
        path = shutil.which(name) or (name if Path(name).exists() else None)
        if path:
            return path
    raise ServerMissing(hint)


class ServerMissing(RuntimeError):
    """The Debian package is not installed; says which one."""


class LoopbackServer:
    """`start()`; `stop()` keeps its folder, so `start()` again resumes (restart tests);
    `close()` removes it. Subclasses give `command()` and `ready()`."""

    name = "server"

    def __init__(self, prefix: str):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout_s: float = 30.0) -> Self:
        log = open(self.dir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.dir / self.name}.log")
            if self.ready():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready; see {self.dir / self.name}.log")

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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
