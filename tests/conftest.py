"""Shared fixtures: example configs and traces shipped with the project, real servers on
loopback, and a virtual clock."""

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
from tests.clock import T0, FakeClock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TRACES = EXAMPLES / "traces"
PARIS = ZoneInfo("Europe/Paris")
__all__ = ["EXAMPLES", "PARIS", "ROOT", "T0", "TRACES", "FakeClock"]


@pytest.fixture
def clock() -> FakeClock:
    """A virtual clock at T0 that moves only when the test says (`advance`, `set`)."""
    return FakeClock()


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
