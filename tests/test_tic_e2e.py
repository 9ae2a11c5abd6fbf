"""End to end, in real time: a virtual house whose meter speaks TIC on a pseudo-terminal →
`pvopt tic` (subprocess) → Mosquitto → `pvopt run` (subprocess) → the house's loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvopt import config
from pvsim.live import spawn_service, stop_service
from pvsim.servers.mosquitto import Mosquitto
from pvsim.simulator import simulate
from pvsim.tic_bench import TicHouse, spawn_tic, tic_site
from pvsim.tic_writer import PtyLine
from pvsim.traces import load_trace, offset_of, window
from tests.conftest import EXAMPLES, TRACES
from tests.mqtt_probe import Probe

MINUTES = 3  # 11:45–11:48 of broken_clouds: clouds come and go, the loads must follow


@pytest.mark.slow
def test_house_speaks_tic_and_pvopt_regulates_it(tmp_path: Path) -> None:
    full = load_trace(TRACES / "broken_clouds.csv.gz")
    line = PtyLine(tmp_path / "ttyTIC")
    with Mosquitto() as broker:
        cfg_path = tic_site(EXAMPLES / "seed_house.yml", tmp_path, broker.port, line.path)
        cfg = config.load(cfg_path, environ={})
        trace = window(full, offset_of(full, "11:45", cfg.site.tz), MINUTES * 60)
        probe = Probe(broker.port, ("tic/bridge", "scr/+/in", "wifi_plug/+/in"))
        tic = spawn_tic(cfg_path)
        run = spawn_service(cfg_path)
        try:
            house = TicHouse(cfg_path, trace, line)
            house.start()
            house.join()
            probe.sync()
        finally:
            assert stop_service(run) == 0, "pvopt run shuts down cleanly"
            assert stop_service(tic) == 0, "pvopt tic shuts down cleanly"
            line.close()
        summary = json.loads(probe.last("tic/bridge") or b"{}")
        commands = [t for _, t, _ in probe.messages if t.endswith("/in")]
        probe.close()
    assert house.result is not None, house.error
    live = house.result.kpis
    sim = simulate(trace, cfg, cfg.regulation.policy).kpis
    sent = house.meter.frames
    assert sent >= MINUTES * 60 / cfg.sim.meter.period_s - 2
    assert summary["mode"] == "standard" and summary["meter_id"] == "041876543210"
    assert summary["bad_checksum"] == 0 and summary["malformed"] == 0
    assert summary["frames"] >= sent - 2  # every frame read (the first may be cut)
    assert commands, "pvopt run steered the loads"
    assert live["capture"] >= min(0.9, sim["capture"] - 0.05), (live, sim)
