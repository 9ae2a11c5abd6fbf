"""Shared fixtures: example configs and traces shipped with the project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pvopt import config
from pvsim.servers.influxd import Influxd
from pvsim.servers.loopback import ServerMissing
from pvsim.servers.mosquitto import Mosquitto
from pvsim.traces import Trace, load_trace

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TRACES = EXAMPLES / "traces"
PARIS = ZoneInfo("Europe/Paris")
T0 = 1_781_510_400.0  # 2026-06-15 10:00 Paris (08:00 UTC)


@pytest.fixture(scope="session")
def house() -> config.Config:
    return config.load(EXAMPLES / "house.yml")


@pytest.fixture(scope="session")
def seed_house() -> config.Config:
    return config.load(EXAMPLES / "seed_house.yml")


@pytest.fixture(scope="session")
def broken_clouds() -> Trace:
    return load_trace(TRACES / "broken_clouds.csv.gz")


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port (`.ci/run` installs the Debian package)."""
    try:
        with Mosquitto() as b:
            yield b
    except ServerMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def influxd() -> Iterator[Influxd]:
    """A real InfluxDB 1.x on free loopback ports (`.ci/run` installs the Debian package)."""
    try:
        with Influxd() as server:
            yield server
    except ServerMissing as exc:
        pytest.fail(str(exc))
