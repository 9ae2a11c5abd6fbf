"""`influxdb:` — where the energy history goes (InfluxDB 1.x)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from pvopt.config.types import Host
from pvopt.kinds import Strict, Text


class InfluxConfig(Strict):
    host: Host = "localhost"
    port: int = Field(8086, ge=1, le=65535)
    database: Text = "teleinfo"
    username: Text | None = None
    password: SecretStr | None = None
    interval_s: int = Field(60, ge=10, le=3600)
    outbox_max_days: float = Field(30.0, gt=0)
    retention_policy: Text | None = "pvopt"  # created if missing (never the default); None: default
    retention: str = Field("INF", pattern=r"^(INF|\d+[hdw])$")  # of the `pvopt` policy
