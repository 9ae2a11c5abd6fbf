"""A private Mosquitto broker on a loopback port: for the demo, the benchmarks and the tests."""

from __future__ import annotations

import socket

from pvsim.servers.loopback import LoopbackServer, find_binary, free_port


class Mosquitto(LoopbackServer):
    """A broker on 127.0.0.1:`port` (a free one by default), anonymous, no persistence."""

    name = "mosquitto"

    def __init__(self, port: int | None = None):
        self.binary = find_binary(
            ("mosquitto", "/usr/sbin/mosquitto"),
            "mosquitto is not installed: `sudo apt-get install mosquitto` (Debian/Raspberry Pi OS)",
        )
        super().__init__("pvopt-mosquitto-")
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
            encoding="utf-8",
        )

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf)]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False
