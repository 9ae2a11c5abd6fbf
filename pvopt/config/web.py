"""`web:` — the local web page."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator, model_validator

from pvopt.kinds import Strict


class WebConfig(Strict):
    """`web:` — the local page (off when the section is absent). No default credential: a
    listen address other than loopback needs a password, and reading without it is opt-in."""

    listen: str = "127.0.0.1:8080"
    password: SecretStr | None = Field(None, min_length=8)
    read_without_password: bool = False  # on the LAN: anyone may look, only the password acts

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: may resolve to anything

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"listen {value!r} is not host:port (like 127.0.0.1:8080)")
        return value

    @model_validator(mode="after")
    def _credential(self) -> WebConfig:
        if not self.loopback and self.password is None:
            raise ValueError(
                f"listen {self.listen!r} is reachable from the network: set web.password"
            )
        if self.read_without_password and self.password is None:
            raise ValueError("read_without_password needs a password (to act)")
        return self
