"""End to end, in real time: `pvopt run` subprocesses regulating virtual houses through real
brokers, on a cloudy window of `broken_clouds`, the shipped policy beside the seed's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvopt import config
from pvopt.live import Background, site_config, spawn_service, stop_service
from pvopt.mosquitto import Mosquitto
from pvopt.traces import load_trace, offset_of, window
from tests.conftest import EXAMPLES, TRACES

MINUTES = 5  # 11:45–11:50: the seed's policy imports 16 % of what it diverts there


@pytest.mark.slow
def test_live_replay_beats_the_seed(tmp_path: Path) -> None:
    full = load_trace(TRACES / "broken_clouds.csv.gz")
    brokers = {p: Mosquitto().start() for p in ("default", "legacy")}
    procs, houses = [], {}
    try:
        for policy, broker in brokers.items():
            cfg_path = site_config(
                EXAMPLES / "seed_house.yml",
                tmp_path / policy,
                broker.port,
                regulation={"policy": policy},
            )
            cfg = config.load(cfg_path, environ={})
            trace = window(full, offset_of(full, "11:45", cfg.site.tz), MINUTES * 60)
            procs.append(spawn_service(cfg_path))
            houses[policy] = Background(cfg_path, trace)
        for house in houses.values():
            house.start()
        for house in houses.values():
            house.join()
    finally:
        for proc in procs:
            assert stop_service(proc) == 0, "pvopt run shuts down cleanly on SIGTERM"
        for broker in brokers.values():
            broker.close()
    kpis = {}
    for policy, house in houses.items():
        assert house.result is not None, house.error
        kpis[policy] = house.result.kpis
    ours, seed = kpis["default"], kpis["legacy"]
    assert ours["capture"] >= 0.90, ours
    assert ours["import_by_loads_wh"] <= 0.60 * seed["import_by_loads_wh"], (ours, seed)
