"""A private InfluxDB 1.x server (Debian's `influxd`) on loopback ports, in a temporary folder:
for the tests and the benchmarks."""

from __future__ import annotations

import urllib.request

from pvsim.servers.loopback import LoopbackServer, find_binary, free_port


class Influxd(LoopbackServer):
    """HTTP on 127.0.0.1:`port`; `stop()` keeps the data, `start()` again serves it."""

    name = "influxd"

    def __init__(self, port: int | None = None, *, auth: bool = False):
        self.binary = find_binary(
            ("influxd", "/usr/bin/influxd"),
            "influxd is not installed: `sudo apt-get install influxdb` (Debian/Raspberry Pi OS)",
        )
        super().__init__("pvopt-influxd-")
        self.port = port or free_port()
        self.rpc_port = free_port()
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

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.conf)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1):
                return True
        except OSError:
            return False
