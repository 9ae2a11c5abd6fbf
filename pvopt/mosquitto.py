"""A private Mosquitto broker on a loopback port: for the demo, the benchmarks and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


class MosquittoMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> bool:
    """Poll until something accepts connections on `port` (no fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def find_binary() -> str:
    for name in CANDIDATES:
        path = shutil.which(name) or (name if Path(name).exists() else None)
        if path:
            return path
    raise MosquittoMissing(
        "mosquitto is not installed: `sudo apt-get install mosquitto` (Debian/Raspberry Pi OS)"
    )


class Mosquitto:
    """`start()` a broker on 127.0.0.1:`port` (a free one by default); `stop()`; `start()` again
    on the same port (the broker-restart tests)."""

    def __init__(self, port: int | None = None):
        self.binary = find_binary()
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pvopt-mosquitto-"))
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {self.dir / 'mosquitto.log'}\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not wait_for_port(self.port):
            self.stop()
            raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
