"""Energy intervals into a real InfluxDB 1.x, through the SQLite outbox; and the pure pieces."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from influxdb import InfluxDBClient

from jobs.influx import Outbox, to_points
from machines.energy import Ledger, LoadSpan, dump_ledger, restore_ledger
from pvopt import config
from pvopt.adapters.influx import InfluxSink, InfluxUnavailable
from pvopt.service import Service
from pvsim.servers.influxd import Influxd
from pvsim.servers.mosquitto import Mosquitto
from state.store import MemoryStore
from tests.clock import T0, FakeClock, wait_until
from tests.mqtt_probe import Probe
from tests.test_service import HOUSE, publish_grid

INTERVAL_S = 10


# -- pure ------------------------------------------------------------------------------------


def wh(x: float) -> Any:
    return pytest.approx(x, abs=1e-4)  # intervals keep 0.1 mWh


def test_ledger_splits_spans_at_interval_ends() -> None:
    ledger = Ledger(60, ["heater"])
    heater = [LoadSpan("heater", 1200.0, "solar", 50.0)]
    assert ledger.add(30, 50, heater, -1500.0) == []
    done = ledger.add(50, 150, heater, 300.0)  # crosses 60 and 120
    assert [d["end"] for d in done] == [60, 120]
    first, second = done
    assert first["loads"]["heater"]["energy_wh"] == wh(1200 * 30 / 3600)
    assert first["loads"]["heater"]["solar_s"] == 30
    assert first["grid"]["export_wh"] == wh(1500 * 20 / 3600)
    assert first["grid"]["import_wh"] == wh(300 * 10 / 3600)
    # exported 1500 W with 1200 W of loads running: all of them came from the sun
    assert first["grid"]["diverted_wh"] == wh(1200 * 20 / 3600 + 900 * 10 / 3600)
    assert second["grid"]["covered_s"] == 60 and second["loads"]["heater"]["power_w"] == 1200
    assert second["loads"]["heater"]["temperature_c"] == 50.0
    assert ledger.add(150, 180, heater, None) != []  # no meter: loads still count
    nometer = ledger.add(180, 240, heater, None)[0]
    assert nometer["grid"]["meter_s"] == 0 and "active_w" not in nometer["grid"]


def test_open_interval_survives_a_restart() -> None:
    ledger = Ledger(60, ["heater"])
    ledger.add(0, 20, [LoadSpan("heater", 600.0, "solar")], 0.0)
    saved = json.loads(json.dumps(dump_ledger(ledger)))
    again = Ledger(60, ["heater"])
    assert restore_ledger(again, json.loads(json.dumps(saved)), 30) == []
    done = again.add(30, 60, [LoadSpan("heater", 600.0, "solar")], 0.0)
    assert done[0]["loads"]["heater"]["energy_wh"] == wh(600 * 50 / 3600)
    late = Ledger(60, ["heater"])  # restarted after the interval's end: emitted as it was
    (partial,) = restore_ledger(late, saved, 75)
    assert partial["end"] == 60 and partial["grid"]["covered_s"] == 20


def test_points_follow_the_documented_schema() -> None:
    ledger = Ledger(60, ["water_heater"])
    (doc,) = ledger.add(0, 60, [LoadSpan("water_heater", 600.0, "solar", 51.0)], -200.0, 80.0)
    grid, load = to_points(doc, {"water_heater": 0})
    assert grid["measurement"] == "pvopt_grid" and grid["time"] == 60
    assert set(grid["fields"]) == {
        "covered_s", "meter_s", "import_wh", "export_wh", "diverted_wh", "loads_wh",
        "active_w", "reactive_var",
    }  # fmt: skip
    assert load["tags"] == {"load": "water_heater", "id": "0"}
    assert set(load["fields"]) == {
        "energy_wh", "power_w", "off_s", "eco_s", "solar_s", "boost_s", "temperature_c",
    }  # fmt: skip


class FlakySink:
    """A `Sink` that fails while `down` is set (pure-unit stand-in for InfluxDB)."""

    def __init__(self) -> None:
        self.down = True
        self.tries = 0
        self.batches: list[list[int]] = []

    def write(self, points: list[dict[str, Any]]) -> None:
        self.tries += 1
        if self.down:
            raise InfluxUnavailable("down")
        self.batches.append(sorted({p["time"] for p in points}))


def test_outbox_keeps_everything_until_written_then_writes_in_order(clock: FakeClock) -> None:
    cfg = config.InfluxConfig(outbox_max_days=1)
    store = MemoryStore()
    store.save({}, [], intervals=[{"end": e, "grid": {}, "loads": {}} for e in range(60, 1261, 60)])
    clock.set(10_000.0)
    outbox = Outbox(cfg.outbox_max_days, {}, clock)
    sink = FlakySink()
    assert outbox.flush(store, sink, {}) == 0
    assert outbox.sent_until == 0 and outbox.backoff_s == 5
    clock.advance(1)
    assert outbox.flush(store, sink, {}) == 0  # backing off: no try
    assert sink.tries == 1
    clock.advance(5)
    assert outbox.flush(store, sink, {}) == 0
    assert sink.tries == 2 and outbox.backoff_s == 10  # tried again, and the backoff doubles
    sink.down = False
    clock.advance(10)
    assert outbox.flush(store, sink, {}) == 21
    assert sink.batches == [list(range(60, 1261, 60))] and outbox.sent_until == 1260
    assert outbox.doc() == {"sent_until": 1260, "dropped": 0, "rejected": 0}


def test_outbox_beyond_its_bound_drops_the_oldest_loudly(
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    cfg = config.InfluxConfig(outbox_max_days=1)
    store = MemoryStore()
    store.save({}, [], intervals=[{"end": e, "grid": {}, "loads": {}} for e in (100, 200, 90_000)])
    clock.set(90_100.0)  # 100 and 200 are over a day old
    outbox = Outbox(cfg.outbox_max_days, {}, clock)
    sink = FlakySink()
    sink.down = False
    outbox.flush(store, sink, {})
    assert outbox.dropped == 2 and sink.batches == [[90_000]]
    assert "dropped its 2 oldest" in caplog.text


# -- a real InfluxDB ---------------------------------------------------------------------------


def site(tmp_path: Path, broker: Mosquitto, influxd: Influxd) -> config.Config:
    data = json.loads(json.dumps(HOUSE))
    data["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "client_id": f"p{time.time_ns()}"}
    data["state"] = {"path": "pvopt.db", "checkpoint_s": 2}
    data["regulation"] = {"tick_s": 1}
    data["influxdb"] = {
        "host": "127.0.0.1",
        "port": influxd.port,
        "database": "teleinfo",
        "interval_s": INTERVAL_S,
    }
    (tmp_path / "pvopt.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return config.load(tmp_path / "pvopt.yml", environ={})


class Meter(threading.Thread):
    """Publishes a surplus every second, like a Linky, until stopped."""

    def __init__(self, probe: Probe, grid_w: float = -1500.0):
        super().__init__(daemon=True)
        self.probe, self.grid_w = probe, grid_w
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            publish_grid(self.probe, self.grid_w)
            self.probe.publish("scr/0/temperature", "50.0")


def query(influxd: Influxd, q: str) -> list[dict[str, Any]]:
    client = InfluxDBClient("127.0.0.1", influxd.port, database="teleinfo")
    return list(client.query(q, epoch="s").get_points())


def wait_for(predicate: Callable[[], object], timeout_s: float) -> bool:
    return wait_until(predicate, timeout_s, poll_s=0.2)  # the store's reads: 5 a second do


def written(svc: Service) -> int:
    return svc.outbox.sent_until if svc.outbox else 0


def test_points_arrive_and_equal_the_store(tmp_path: Path, broker: Mosquitto, influxd: Influxd):
    cfg = site(tmp_path, broker, influxd)
    svc = Service(cfg)
    svc.start()
    probe = Probe(broker.port)
    meter = Meter(probe)
    meter.start()
    try:
        assert wait_for(lambda: len(svc.store.intervals(0)) >= 3, 60)
        assert wait_for(lambda: written(svc) >= svc.committed_until > 0, 30)
    finally:
        meter.halt.set()
        svc.stop()
        probe.close()
    stored = {d["end"]: d for d in svc.store.intervals(0)}
    grid = {p["time"]: p for p in query(influxd, 'SELECT * FROM "pvopt"."pvopt_grid"')}
    loads = query(influxd, 'SELECT * FROM "pvopt"."pvopt_load"')
    closed = {end for end, doc in stored.items() if not doc.get("open")}
    assert set(grid) == closed  # every closed interval; the partial one at shutdown waits
    for end, doc in stored.items():
        if end not in closed:
            continue
        for key, value in doc["grid"].items():
            assert grid[end][key] == pytest.approx(value), (end, key)
        for p in (p for p in loads if p["time"] == end):
            entry = doc["loads"][p["load"]]
            assert p["energy_wh"] == pytest.approx(entry["energy_wh"])
            assert p["solar_s"] == pytest.approx(entry["solar_s"])
    heater_wh = sum(p["energy_wh"] for p in loads if p["load"] == "water_heater")
    machine = svc.ctl.machines["water_heater"]
    stored_wh = {e: d["loads"]["water_heater"]["energy_wh"] for e, d in stored.items()}
    assert sum(stored_wh.values()) == pytest.approx(machine.energy_total_wh, rel=1e-3)
    assert heater_wh == pytest.approx(sum(stored_wh[e] for e in closed), rel=1e-3)
    assert heater_wh > 1.0
    rps = InfluxDBClient("127.0.0.1", influxd.port).get_list_retention_policies("teleinfo")
    assert {p["name"]: p["default"] for p in rps} == {"autogen": True, "pvopt": False}


def test_an_outage_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd
) -> None:
    cfg = site(tmp_path, broker, influxd)
    svc = Service(cfg)
    svc.start()
    probe = Probe(broker.port)
    meter = Meter(probe)
    meter.start()
    try:
        assert wait_for(lambda: written(svc) > 0, 60)
        influxd.stop()
        down_at = svc.committed_until
        assert wait_for(lambda: svc.committed_until >= down_at + 3 * INTERVAL_S, 60)
        assert written(svc) <= down_at + INTERVAL_S  # nothing went through meanwhile
        assert svc.status(time.time())["influxdb"]["error"]
        assert svc.ctl.machines["water_heater"].setpoint_w > 0  # regulation went on
        influxd.start()
        assert wait_for(lambda: written(svc) >= svc.committed_until, 60)
    finally:
        meter.halt.set()
        svc.stop()
        probe.close()
    ends = [d["end"] for d in svc.store.intervals(0) if not d.get("open")]  # closed ones
    for measurement in ("pvopt_grid", "pvopt_load"):
        points = query(influxd, f'SELECT * FROM "pvopt"."{measurement}"')
        times = [p["time"] for p in points]
        per_interval = len(HOUSE["equipment"]) if measurement == "pvopt_load" else 1
        assert sorted(set(times)) == ends, measurement  # every interval, across the outage
        assert all(times.count(t) == per_interval for t in ends), measurement  # exactly once
    steps = {b - a for a, b in itertools.pairwise(ends)}
    assert steps == {INTERVAL_S}


def test_starts_and_regulates_with_influx_down_then_flushes(
    tmp_path: Path, broker: Mosquitto, influxd: Influxd
) -> None:
    influxd.stop()
    cfg = site(tmp_path, broker, influxd)
    svc = Service(cfg)
    svc.start()  # the seed blocked here until InfluxDB answered
    probe = Probe(broker.port)
    meter = Meter(probe)
    meter.start()
    try:
        assert probe.wait(lambda: probe.last("scr/0/in") not in (None, b"0.0"), 15)
        assert wait_for(lambda: svc.committed_until > 0, 60)
        assert written(svc) == 0
        influxd.start()
        assert wait_for(lambda: written(svc) >= svc.committed_until, 60)
    finally:
        meter.halt.set()
        svc.stop()
        probe.close()
    times = {p["time"] for p in query(influxd, 'SELECT * FROM "pvopt"."pvopt_grid"')}
    assert times == {d["end"] for d in svc.store.intervals(0) if not d.get("open")}


def test_an_unreachable_influxdb_is_named() -> None:
    cfg = config.InfluxConfig(host="127.0.0.1", port=9, database="x")  # nothing listens on 9
    with pytest.raises(InfluxUnavailable, match="unreachable"):
        InfluxSink(cfg).write([{"measurement": "m", "time": 1, "fields": {"v": 1}}])


def test_a_user_who_may_not_create_is_told_how_and_nothing_is_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Influxd(auth=True) as server:
        admin = InfluxDBClient("127.0.0.1", server.port)
        admin.query("CREATE USER admin WITH PASSWORD 'secret' WITH ALL PRIVILEGES")
        admin = InfluxDBClient("127.0.0.1", server.port, "admin", "secret")
        admin.create_database("teleinfo")
        admin.create_user("writer", "w")
        admin.grant_privilege("write", "teleinfo", "writer")
        cfg = config.InfluxConfig(
            host="127.0.0.1", port=server.port, username="writer", password="w"
        )
        store = MemoryStore()
        end = int(time.time()) // 60 * 60
        store.save({}, [], intervals=[{"end": end, "grid": {"import_wh": 1.0}, "loads": {}}])
        outbox = Outbox(cfg.outbox_max_days, {}, time.time)
        assert outbox.flush(store, InfluxSink(cfg), {}) == 0
        assert "may not create" in caplog.text and "retention_policy: null" in caplog.text
        assert outbox.sent_until == 0  # kept for later
        # the admin creates the policy as told: the next try writes everything
        admin.create_retention_policy("pvopt", "INF", 1, "teleinfo", default=False)
        outbox.next_attempt = 0.0
        assert outbox.flush(store, InfluxSink(cfg), {}) == 1
        got = admin.query('SELECT * FROM "teleinfo"."pvopt"."pvopt_grid"', epoch="s")
        assert [p["time"] for p in got.get_points()] == [end]


def test_the_grafana_dashboard_reads_only_the_documented_schema() -> None:
    import re

    from tests.conftest import EXAMPLES

    dash = json.loads((EXAMPLES / "grafana-pvopt.json").read_text())
    documented = {
        "pvopt_grid": {"import_wh", "export_wh", "diverted_wh", "loads_wh", "covered_s",
                       "meter_s", "active_w", "reactive_var", "pv_wh"},
        "pvopt_load": {"energy_wh", "power_w", "off_s", "eco_s", "solar_s", "boost_s",
                       "temperature_c"},
    }  # fmt: skip
    titles = {p["title"] for p in dash["panels"]}
    assert {"Grid (+ import, − export)", "Loads", "Energy per day", "Water temperature"} <= titles
    for panel in dash["panels"]:
        for target in panel["targets"]:
            q = target["query"]
            (measurement,) = re.findall(r'FROM "pvopt"\."(\w+)"', q)
            fields = set(re.findall(r'(?:mean|sum)\("(\w+)"\)', q))
            assert fields and fields <= documented[measurement], q


class RecordingSink:
    """A `Sink` that keeps every point written, by measurement and time (like InfluxDB, a later
    point with the same time replaces the earlier one; `writes` counts them all)."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, int, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, int]] = []

    def write(self, points: list[dict[str, Any]]) -> None:
        for p in points:
            key = (p["measurement"], p["time"], p.get("tags", {}).get("load", ""))
            self.points[key] = p["fields"]
            if p["measurement"] == "pvopt_grid":
                self.writes.append((p["measurement"], p["time"]))


def offline_site(tmp_path: Path, interval_s: int = 60) -> config.Config:
    """A site with InfluxDB configured but never reached: tests plug a sink in."""
    data = json.loads(json.dumps(HOUSE))
    data["mqtt"] = {"host": "127.0.0.1", "port": 9, "client_id": f"p{time.time_ns()}"}
    data["state"] = {"path": str(tmp_path / "pvopt.db")}
    data["influxdb"] = {"host": "127.0.0.1", "port": 9, "interval_s": interval_s}
    (tmp_path / "pvopt.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return config.load(tmp_path / "pvopt.yml", environ={})


def run_for(svc: Service, clock: FakeClock, until: float, grid_w: float = -1500.0) -> None:
    """Meter samples and ticks every 5 s of the virtual clock, then a checkpoint."""
    while clock() < until:
        clock.advance(min(5, until - clock()))
        svc.meter.feed("tic/SINSTS", str(max(grid_w, 0)).encode(), clock())
        svc.meter.feed("tic/SINSTI", str(max(-grid_w, 0)).encode(), clock())
        svc.tick()
    svc.regulator.checkpoint()


def test_a_restart_inside_an_interval_ends_with_one_complete_point(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Guards item 3: stopping wrote the open interval's partial point and moved the outbox
    past it, so the completed interval was never sent. Only closed intervals leave the outbox:
    after the restart InfluxDB and the local history hold the complete interval, once."""
    cfg = offline_site(tmp_path)
    start = clock()
    assert start == T0 and T0 % 60 == 0  # an interval boundary
    end = int(start) + 60
    sink = RecordingSink()

    svc = Service(cfg, clock=clock)
    assert svc.flush_job is not None
    svc.flush_job.sink = sink
    run_for(svc, clock, start + 25)
    svc.stop()  # inside [start, end)
    assert ("pvopt_grid", end) not in sink.writes  # not closed: stays in the outbox

    clock.advance(10)  # down for 10 s
    svc = Service(cfg, clock=clock)
    assert svc.flush_job is not None
    svc.flush_job.sink = sink
    run_for(svc, clock, end + 2)  # the checkpoint after `end` closes it
    svc.flush_job()
    svc.stop()

    assert sink.writes.count(("pvopt_grid", end)) == 1
    grid = sink.points[("pvopt_grid", end, "")]
    # ticks from +5 to the stop at +25, then from +40 (first tick after the restart) to +60
    assert grid["covered_s"] == 40
    store = svc.store = type(svc.store)(cfg.state.path)
    try:
        [doc] = [d for d in store.intervals(0) if d["end"] == end]
        assert doc["grid"] == grid and not doc.get("open")
    finally:
        store.close()


def test_a_batch_influxdb_will_never_take_is_set_aside_and_the_rest_flows(
    influxd: Influxd, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards item 3: a 4xx that no retry cures (here a field-type conflict) blocked the outbox
    forever; now that batch is set aside with an error log and a counter, later ones flow."""
    cfg = config.InfluxConfig(host="127.0.0.1", port=influxd.port, database="teleinfo")
    sink = InfluxSink(cfg)
    end = int(time.time()) // 60 * 60 - 3600
    sink.write([{"measurement": "pvopt_grid", "time": end - 60, "fields": {"import_wh": "text"}}])
    store = MemoryStore()
    store.save({}, [], intervals=[{"end": end, "grid": {"import_wh": 1.0}, "loads": {}}])
    outbox = Outbox(cfg.outbox_max_days, {}, time.time)
    assert outbox.flush(store, sink, {}) == 0  # refused for good: set aside
    assert outbox.sent_until == end and outbox.status()["rejected"] == 1
    assert "set aside" in caplog.text and "field type conflict" in caplog.text
    later = [{"end": end + 60 * k, "grid": {"export_wh": 1.0}, "loads": {}} for k in (1, 2)]
    store.save({}, [], intervals=later)
    assert outbox.flush(store, sink, {}) == 2
    assert outbox.doc() == {"sent_until": end + 120, "dropped": 0, "rejected": 1}
    times = {p["time"] for p in query(influxd, 'SELECT * FROM "pvopt"."pvopt_grid"')}
    assert {end + 60, end + 120} <= times
