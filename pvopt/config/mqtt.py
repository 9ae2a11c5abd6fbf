"""`mqtt:` — the broker pvopt reads the meter from and drives the loads through."""

from __future__ import annotations

from pydantic import Field, SecretStr

from pvopt.config.types import Host
from pvopt.kinds import Strict, Text


class TlsConfig(Strict):
    ca_file: Text | None = None
    cert_file: Text | None = None
    key_file: Text | None = None


class MqttConfig(Strict):
    host: Host = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    keepalive: int = Field(120, ge=5, le=65535)
    username: Text | None = None
    password: SecretStr | None = None
    tls: TlsConfig = TlsConfig()
    client_id: Text = "pvopt"
