"""`tic:` — `pvopt tic`, the Linky's serial output (TIC) bridged to MQTT."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pvopt.kinds import Strict


class TicConfig(Strict):
    """`pvopt tic`: the Linky's serial output (TIC) bridged to MQTT."""

    port: str = "/dev/ttyUSB0"
    mode: Literal["auto", "historic", "standard"] = "auto"
    topic_prefix: str = Field("tic/", pattern=r"^[^#+]*$")
    summary_every_s: float = Field(10.0, gt=0, le=3600)  # the retained bridge summary
    reconnect_min_s: float = Field(1.0, gt=0, le=600)  # serial reopen backoff (tests: tiny)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    detect_s: float = Field(6.0, gt=0, le=120)  # `auto`: listen this long per baud rate
