"""The service against a real Mosquitto: regulation through the broker, bad payloads, stale
meter, broker restart, and kill -9 of a real `pvopt run` subprocess."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from jobs.regulator import Control, Temperature
from jobs.scheduling import REGULATOR_THREAD
from machines.commands import parse_control_json
from machines.wiring import DRY_RUN_STATUS_TOPIC, STATUS_TOPIC
from pvopt import config
from pvopt.service import Service
from pvsim.live import spawn_service
from pvsim.servers.mosquitto import Mosquitto
from state.store import SqliteStore
from tests.clock import FakeClock, wait_until
from tests.mqtt_probe import Probe

HOUSE: dict[str, Any] = {
    "site": {"timezone": "Europe/Paris"},
    "equipment": [
        {
            "type": "TempDrivenVariablePowerEquipment",
            "name": "water_heater",
            "max_power": 2400,
            "temp_min": 45,
            "temp_eco": 50,
            "temp_sol_min": 55,
            "temp_max": 60,
            "thermostat_probes_per_hour": 0,  # these tests' meter never answers a command
        },
        {
            "type": "VariablePowerEquipment",
            "name": "towel_rail",
            "max_power": 500,
            "thermostat_probes_per_hour": 0,
        },
    ],
}


def make_config(tmp_path: Path, port: int, **sections: dict[str, Any]) -> config.Config:
    data = json.loads(json.dumps(HOUSE))
    data["mqtt"] = {"host": "127.0.0.1", "port": port, "client_id": f"pvopt-{time.time_ns()}"}
    data["state"] = {"path": "pvopt.db"}
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    path = tmp_path / "pvopt.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config.load(path, environ={})


def publish_grid(probe: Probe, grid_w: float) -> None:
    """A Linky sample: drawn or injected apparent power (no ERQT: Q = 0, P = S)."""
    probe.publish("tic/SINSTS", str(round(max(grid_w, 0.0))))
    probe.publish("tic/SINSTI", str(round(max(-grid_w, 0.0))))


def commanded_w(probe: Probe, cfg: config.Config) -> dict[str, float]:
    """The power each load was last told to draw, as the actuator reads its payload."""
    out = {}
    for w in cfg.wiring():
        payload = probe.last(w.command_topic)
        out[w.spec.name] = 0.0 if payload is None else w.power_of(payload.decode())
    return out


def statuses(probe: Probe, since: float, topic: str = STATUS_TOPIC) -> list[dict[str, Any]]:
    with probe.cond:
        found = [json.loads(p) for at, t, p in probe.messages if t == topic and at >= since]
    return [doc for doc in found if doc["date"] >= since]


def test_pv_step_is_absorbed_within_three_ticks(broker: Mosquitto, tmp_path: Path) -> None:
    # Ticks come from fresh meter values only (the heartbeat is far away): the test is the house.
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60, "settle_s": 0})
    svc = Service(cfg)
    svc.start()
    probe = Probe(broker.port)
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        probe.publish("scr/0/temperature", "50")
        base, pv = 400.0, 300.0

        def one_tick(pv_w: float) -> float:
            grid = base + sum(commanded_w(probe, cfg).values()) - pv_w
            before, since = svc.ticks, time.time()
            publish_grid(probe, grid)
            assert probe.wait(lambda: svc.ticks > before and statuses(probe, since), 10)
            return base + sum(commanded_w(probe, cfg).values()) - pv_w

        one_tick(pv)
        pv = 3300.0  # the clouds part: 3 kW more PV
        # the margin adapts to the meter's noise, up to margin_w: a small export, no import
        aim = cfg.regulation.margin_w + cfg.regulation.balance_band_w
        grids = []
        for _ in range(3):
            grids.append(one_tick(pv))
            if 0 <= -grids[-1] <= aim:
                break
        assert 0 <= -grids[-1] <= aim, f"grid after each tick: {grids}"
        assert commanded_w(probe, cfg)["water_heater"] == pytest.approx(2400, abs=5)
    finally:
        probe.close()
        svc.stop()


def test_malformed_payloads_are_ignored_and_logged(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60})
    svc = Service(cfg)
    svc.start()
    probe = Probe(broker.port)
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        publish_grid(probe, -800)
        probe.publish("scr/0/temperature", "50.5")
        assert probe.wait(lambda: svc.meter.snapshot(time.time()).grid_w == -800, 5)
        assert probe.wait(lambda: svc.ctl.machines["water_heater"].temperature_c == 50.5, 5)
        assert probe.wait(lambda: svc.ctl.machines["water_heater"].setpoint_w > 0, 5)  # decided
        with svc.lock:
            before = svc.ctl.dump()
        caplog.set_level(logging.WARNING)
        bad = {
            "tic/SINSTS": [b"abc", b"nan", b"-5", b"1e9", b""],
            "tic/SINSTI": [b"inf", b"12,5", b"-1"],
            "tic/ERQT": [b"x", b"-3"],
            "tic/PTEC": [b"\x00\x01"],
            "scr/0/temperature": [b"85", b"-127", b"200", b"hot"],
            "scr/0/control": [b"BOOST", b"MIN;abc", b"MIN;70", b"MAX;200"],
            "scr/9/control": [b"ON"],
            "regulation/control": [
                b"{not json",
                b"[]",
                b'{"command": "force", "name": "nope"}',
                b'{"command": "force", "name": 42}',
                b'{"command": "force", "name": "water_heater", "power": 99999}',
                b'{"command": "dance", "name": "water_heater"}',
                b'{"command": "set", "name": "towel_rail", "temp_min": 40}',
            ],
        }
        assert set(svc.routes) <= set(bad), "every subscribed topic gets garbage"
        n_bad = sum(len(v) for v in bad.values())
        for topic, payloads in bad.items():
            for payload in payloads:
                probe.publish(topic, payload)

        def warned() -> int:
            return sum(1 for r in caplog.records if r.levelno == logging.WARNING)

        assert probe.wait(lambda: warned() >= n_bad, 10), caplog.text
        for topic in bad:
            assert topic in caplog.text
        assert svc.meter.snapshot(time.time()).grid_w == -800
        with svc.lock:
            after = svc.ctl.dump()
        assert after == before
    finally:
        probe.close()
        svc.stop()


def test_inputs_from_mqtt_reach_the_controller_and_the_store_on_the_regulators_worker(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No heartbeat within the test: the command's own `inputs` run applies and decides.
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60})
    svc = Service(cfg)
    threads: dict[str, list[str]] = {"controller": [], "store": []}

    def on_thread(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            threads[kind].append(threading.current_thread().name)
            return fn(*args, **kwargs)

        return recorded

    heater = svc.ctl.machines["water_heater"]
    monkeypatch.setattr(svc.ctl, "load", on_thread("controller", svc.ctl.load))  # commands
    monkeypatch.setattr(heater, "set_temperature", on_thread("controller", heater.set_temperature))
    monkeypatch.setattr(svc.store, "save", on_thread("store", svc.store.save))
    svc.start()
    probe = Probe(broker.port)
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        since = time.time()
        probe.publish("scr/0/temperature", "48.5")
        probe.publish("regulation/control", json.dumps({"command": "off", "name": "towel_rail"}))

        def applied() -> bool:
            docs = statuses(probe, since)
            if not docs:
                return False
            heater_doc, rail = docs[-1]["loads"]
            return rail["mode"] == "manual" and heater_doc["temperature_c"] == 48.5

        assert probe.wait(applied, 10)
        seen = {kind: list(names) for kind, names in threads.items()}
    finally:
        probe.close()
        svc.stop()
    assert seen["controller"] and seen["store"], seen  # the command was committed at once
    workers = {name.rpartition("_")[0] for names in seen.values() for name in names}
    assert workers == {REGULATOR_THREAD}, seen


def test_a_failing_job_is_counted_in_the_status_and_regulation_goes_on(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60, "settle_s": 0})
    svc = Service(cfg)
    real_tick = svc.ctl.tick
    calls: list[float] = []

    def first_tick_fails(now: float, snapshot: Any, *, offpeak: bool | None = None) -> Any:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("a bug in the first tick")
        return real_tick(now, snapshot, offpeak=offpeak)

    monkeypatch.setattr(svc.ctl, "tick", first_tick_fails)
    svc.start()
    probe = Probe(broker.port)
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        assert probe.wait(lambda: svc.errors.status()["errors"] == 1, 10)  # the connect kick
        since = time.time()
        publish_grid(probe, -2000)

        def regulating() -> bool:
            docs = statuses(probe, since)
            return bool(docs) and docs[-1]["loads"][0]["power_w"] > 1000

        assert probe.wait(regulating, 10)
        assert statuses(probe, since)[-1]["jobs"]["errors"] == 1
        assert probe.wait(lambda: not svc.errors.status()["failing"], 5)
    finally:
        probe.close()
        svc.stop()


def test_stale_meter_sheds_within_two_ticks_and_fresh_data_resumes(
    broker: Mosquitto, tmp_path: Path, clock: FakeClock
) -> None:
    # Shipped defaults (tick 5 s, stale after 30 s); the service's clock is the test's.
    cfg = make_config(tmp_path, broker.port)
    clock.set(time.time())
    svc = Service(cfg, clock=clock)
    svc.bus.start()  # no scheduler: the test calls tick() on the virtual clock
    probe = Probe(broker.port)
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        last_meter = clock()
        publish_grid(probe, -1500)
        assert probe.wait(lambda: svc.meter.snapshot(clock()).grid_w == -1500, 5)
        svc.tick()
        assert probe.wait(lambda: commanded_w(probe, cfg)["water_heater"] > 1000, 5)
        tick_s = cfg.regulation.tick_s
        # the heartbeat ticks every tick_s after the last meter message; 20 ticks are 100 s
        for _ in range(20):
            clock.advance(tick_s)
            svc.tick()
            if svc.ctl.reasons["water_heater"] == "meter_stale":
                break
        shed_at = clock()
        assert svc.ctl.reasons["water_heater"] == "meter_stale", "never shed"
        assert shed_at - last_meter <= 40, "shed within 40 s of the last meter message"
        assert shed_at - (last_meter + cfg.meter.stale_after_s) <= 2 * tick_s
        assert probe.wait(lambda: commanded_w(probe, cfg)["water_heater"] == 0, 5)
        assert svc.status(clock())["meter"]["stale"] is True
        clock.advance(cfg.regulation.settle_s)  # a decision waits for a sample taken after the shed
        publish_grid(probe, -1500)
        assert probe.wait(lambda: svc.meter.snapshot(clock()).sampled_at == clock(), 5)  # both
        svc.tick()
        assert probe.wait(lambda: commanded_w(probe, cfg)["water_heater"] > 1000, 5)
    finally:
        probe.close()
        svc.bus.stop()


def test_broker_restart_reconnects_and_regulates(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 1, "settle_s": 0})
    svc = Service(cfg)
    svc.start()
    try:
        probe = Probe(broker.port)
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        probe.close()
        broker.stop()
        assert not svc.bus.connected.is_set() or probe.wait(
            lambda: not svc.bus.connected.is_set(), 10
        )
        broker.start()
        probe = Probe(broker.port)
        assert probe.wait(lambda: svc.bus.connects >= 2, 40), "no reconnect"
        publish_grid(probe, -1000)
        assert probe.wait(lambda: commanded_w(probe, cfg)["water_heater"] > 500, 10)
        assert probe.last("regulation/online") == b"online"
        probe.close()
    finally:
        svc.stop()


def test_kill_9_and_restart_resume_every_machine(broker: Mosquitto, tmp_path: Path) -> None:
    """Guards item 1: after kill -9 every load's state and mode stay what they were until new
    evidence arrives. The heater was shed for a stale meter (off, `meter_stale`): it came
    back `solar` at the first tick after the restart, before any meter value."""
    cfg = make_config(
        tmp_path,
        broker.port,
        regulation={"tick_s": 0.5},
        state={"checkpoint_s": 1},
        meter={"stale_after_s": 3},
    )
    cfg_path = tmp_path / "pvopt.yml"
    probe = Probe(broker.port)
    proc = spawn_service(cfg_path)
    try:
        assert probe.wait(lambda: probe.last("regulation/online") == b"online", 20)
        probe.publish("scr/0/temperature", "50")
        probe.publish("scr/0/control", "MIN;44")
        probe.publish(
            "regulation/control",
            json.dumps({"command": "force", "name": "towel_rail", "duration": 7200}),
        )
        publish_grid(probe, -1200)  # the heater runs on surplus, the rail is boosted
        store = SqliteStore(str(tmp_path / "pvopt.db"))

        def checkpointed() -> bool:
            saved = store.load_machines()
            rail = saved.get("towel_rail", {})
            heater = saved.get("water_heater", {})
            shed = (heater.get("state"), heater.get("reason")) == ("off", "meter_stale")
            return shed and rail.get("state") == "boost" and rail.get("energy_today_wh", 0) > 0.2

        assert probe.wait(checkpointed, 20)
        live = statuses(probe, 0)[-1]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        saved = store.load_machines()
        store.close()
        for entry in live["loads"]:
            lost = entry["energy_today_wh"] - saved[entry["name"]]["energy_today_wh"]
            # at most one checkpoint interval (1 s) plus one tick (0.5 s) at this load's power,
            # either way: a checkpoint also counts the time since the last status
            assert abs(lost) <= entry["power_w"] * 1.5 / 3600 + 0.05

        restart = time.time()
        proc = spawn_service(cfg_path)
        assert probe.wait(lambda: bool(statuses(probe, restart)), 20)
        # every status of the start-up grace (no meter value yet): nothing moved by itself
        grace_end = statuses(probe, restart)[0]["date"] + 2.5
        assert probe.wait(lambda: statuses(probe, grace_end), 10)
        for doc in [d for d in statuses(probe, restart) if d["date"] < grace_end]:
            got = {e["name"]: (e["state"], e["mode"]) for e in doc["loads"]}
            assert got == {n: (d["state"], d["mode"]) for n, d in saved.items()}, doc["time"]
        first = {e["name"]: e for e in statuses(probe, restart)[0]["loads"]}
        tz = cfg.site.tz
        for name, dump in saved.items():
            e = first[name]
            assert (e["state"], e["mode"]) == (dump["state"], dump["mode"])
            assert e["energy_today_wh"] == round(dump["energy_today_wh"], 1)
            if dump["forced_until"] is not None:
                from machines.status import local_iso

                assert e["forced_until"] == local_iso(dump["forced_until"], tz)
            if dump["thresholds"] is not None:
                assert e["temp_min"] == dump["thresholds"]["temp_min"] == 44
        assert first["towel_rail"]["state"] == "boost"
        assert probe.wait(lambda: probe.last("scr/1/in", since=restart) == b"100.0", 10)
        assert probe.wait(lambda: probe.last("scr/0/in", since=restart) is not None, 10)
    finally:
        probe.close()
        proc.terminate()
        proc.wait(10)


def test_dry_run_decides_and_reports_but_commands_and_writes_nothing(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60, "settle_s": 0})
    svc = Service(cfg, dry_run=True)
    svc.start()
    probe = Probe(broker.port)
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        since = time.time()
        publish_grid(probe, -2000)

        def decided() -> bool:
            docs = statuses(probe, since, DRY_RUN_STATUS_TOPIC)
            return bool(docs) and docs[-1]["loads"][0]["power_w"] > 1000

        assert probe.wait(decided, 10)
        assert statuses(probe, since, DRY_RUN_STATUS_TOPIC)[-1]["dry_run"] is True
        assert probe.last("regulation/dry_run/online") == b"online"
        since = time.time()
        probe.publish("regulation/control", json.dumps({"command": "off", "name": "towel_rail"}))

        def rail_off() -> bool:
            docs = statuses(probe, since, DRY_RUN_STATUS_TOPIC)
            return bool(docs) and docs[-1]["loads"][1]["mode"] == "manual"

        assert probe.wait(rail_off, 30)  # 10 s was short with the whole suite on two cores
    finally:
        svc.stop()
        probe.wait(lambda: probe.last("regulation/dry_run/online") == b"offline", 5)
        probe.close()
    with probe.cond:
        topics = {t for _, t, _ in probe.messages}
    # the real service's topics stay untouched; the dry run says it stopped on its own
    assert not {"scr/0/in", "scr/1/in", "regulation/online", STATUS_TOPIC} & topics
    assert probe.last("regulation/dry_run/online") == b"offline"
    assert not (tmp_path / "pvopt.db").exists()


def test_a_window_opening_forces_the_load_and_a_restart_keeps_it(
    broker: Mosquitto, tmp_path: Path
) -> None:
    tz = ZoneInfo("Europe/Paris")
    opens = (datetime.now(tz) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=2)
    window = f"{opens:%H:%M}-{closes:%H:%M}"
    cfg = make_config(tmp_path, broker.port)
    data = yaml.safe_load((tmp_path / "pvopt.yml").read_text())
    data["schedules"] = [{"name": "hc", "load": "towel_rail", "window": window, "action": "boost"}]
    (tmp_path / "pvopt.yml").write_text(yaml.safe_dump(data))
    cfg = config.load(tmp_path / "pvopt.yml", environ={})
    probe = Probe(broker.port)
    svc = Service(cfg)
    svc.start()
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)

        def rail(since: float) -> dict[str, Any] | None:
            docs = statuses(probe, since)
            return docs[-1]["loads"][1] if docs else None

        start = time.time()
        assert rail(start) is None or rail(start)["state"] != "boost"
        # the boundary job wakes the regulator at the minute: no meter data needed
        assert probe.wait(lambda: (rail(start) or {}).get("state") == "boost", 75)
        assert time.time() >= opens.timestamp()
        assert probe.wait(lambda: probe.last("scr/1/in", since=opens.timestamp()) == b"100.0", 5)
        until = rail(start)["forced_until"]
        assert until == closes.isoformat()
    finally:
        svc.stop()
    restart = time.time()
    svc = Service(cfg)
    svc.start()
    try:
        assert probe.wait(lambda: rail(restart) is not None, 10)
        again = rail(restart)
        assert (again["state"], again["forced_until"]) == ("boost", until)
        assert probe.wait(lambda: probe.last("scr/1/in", since=restart) == b"100.0", 5)
        assert not [r for r in svc.store.transitions("towel_rail") if r.at >= restart]
    finally:
        probe.close()
        svc.stop()


def test_cli_commands_drive_a_running_service(broker: Mosquitto, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pvopt.cli import main

    cfg = make_config(tmp_path, broker.port)
    conf = str(tmp_path / "pvopt.yml")
    svc = Service(cfg)
    svc.start()
    runner = CliRunner()
    try:
        assert svc.bus.connected.wait(10)
        out = runner.invoke(main, ["force", "towel_rail", "--for", "1h", "--config", conf])
        assert out.exit_code == 0, out.output
        assert "towel_rail: boost, manual, 500 W until" in out.output
        out = runner.invoke(main, ["off", "0", "--config", conf])  # an id works too
        assert out.exit_code == 0 and "water_heater: off, manual" in out.output, out.output
        out = runner.invoke(main, ["auto", "towel_rail", "--config", conf])
        assert out.exit_code == 0 and "towel_rail: solar, auto" in out.output, out.output
        out = runner.invoke(main, ["status", "--json", "--config", conf])
        doc = json.loads(out.output)
        assert [e["mode"] for e in doc["loads"]] == ["manual", "auto"] and "equipments" in doc
        out = runner.invoke(main, ["status", "--config", conf])
        assert "live from 127.0.0.1" in out.output and "water_heater" in out.output
        out = runner.invoke(main, ["history", "towel_rail", "--config", conf])
        assert out.output.count("towel_rail") >= 2 and "forced" in out.output, out.output
        out = runner.invoke(main, ["force", "boiler", "--config", conf])
        assert out.exit_code == 1 and "unknown load 'boiler'" in out.output
        out = runner.invoke(main, ["force", "towel_rail", "--for", "2 days", "--config", conf])
        assert out.exit_code == 1 and "not a duration" in out.output
    finally:
        svc.stop()


def test_stop_with_the_broker_gone_saves_closes_and_says_so_once(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards item 2: stopping right after the broker died raised paho's `RuntimeError: Message
    publish failed` from the offline message and left the store unclosed; now every step is
    tried, the store is saved and closed, and one warning names what could not be done."""
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60})
    svc = Service(cfg)
    svc.start()
    assert svc.bus.connected.wait(10)
    svc.regulator.post(Temperature("water_heater", 47.5, time.time()))
    broker.stop()
    assert wait_until(lambda: not svc.bus.connected.is_set(), 10), "paho saw no disconnect"
    caplog.set_level(logging.INFO)
    caplog.clear()
    svc.stop()  # must not raise
    assert "Traceback" not in caplog.text and "RuntimeError" not in caplog.text
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "broker" in warnings[0].getMessage(), caplog.text
    assert all(r.exc_info is None for r in caplog.records)
    assert "pvopt stopped" in caplog.text
    store = SqliteStore(str(tmp_path / "pvopt.db"))
    try:
        assert store.load_machines()["water_heater"]["temperature_c"] == 47.5
    finally:
        store.close()


def test_an_error_inside_stop_still_saves_and_closes_the_store(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards item 2: any error inside `stop()` (here the InfluxDB-less bus refusing to stop)
    used to skip the store's close; now the remaining steps still run."""
    cfg = make_config(tmp_path, broker.port, regulation={"tick_s": 60})
    svc = Service(cfg)
    svc.start()
    assert svc.bus.connected.wait(10)

    def broken() -> None:
        raise OSError("socket already gone")

    monkeypatch.setattr(svc.bus, "stop", broken)
    closed: list[bool] = []
    real_close = svc.store.close
    monkeypatch.setattr(svc.store, "close", lambda: (closed.append(True), real_close()))
    svc.stop()
    assert closed == [True]


def test_sigterm_with_the_broker_gone_exits_0_with_one_clear_line(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Guards item 2 end to end: `pvopt run` stopped right after the broker died exits 0, no
    traceback in its log."""
    make_config(tmp_path, broker.port, regulation={"tick_s": 0.5})
    cfg_path = tmp_path / "pvopt.yml"
    probe = Probe(broker.port)
    proc = spawn_service(cfg_path)
    try:
        assert probe.wait(lambda: probe.last("regulation/online") == b"online", 20)
        probe.close()
        broker.stop()
        log_path = tmp_path / "run.log"
        assert wait_until(lambda: "connection lost" in log_path.read_text(), 10, poll_s=0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = (tmp_path / "run.log").read_text()
    assert "Traceback" not in text and "RuntimeError" not in text, text
    assert "pvopt stopped" in text


def test_a_locked_store_is_said_once_regulation_goes_on_and_writes_resume(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    """Guards item 7: a store another process holds locked (the same path as a full disk or a
    read-only file) logged a traceback at every write; now one line per episode, the status
    shows it, regulation goes on from memory and the writes resume when the lock goes."""
    import sqlite3

    cfg = make_config(tmp_path, 9, state={"path": str(tmp_path / "pvopt.db")})
    svc = Service(cfg, clock=clock)  # no broker: commands go nowhere, decisions count
    caplog.set_level(logging.INFO)
    holder = sqlite3.connect(tmp_path / "pvopt.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        off = parse_control_json(b'{"command": "off", "name": "towel_rail"}')
        svc.regulator.post(Control(off, "test"))  # a transition record to keep in memory
        for _ in range(3):
            clock.advance(5)
            svc.meter.feed("tic/SINSTS", b"0", clock())
            svc.meter.feed("tic/SINSTI", b"2000", clock())
            svc.tick()
            svc.regulator.checkpoint()
        failing = [r for r in caplog.records if "store" in r.getMessage()]
        assert len(failing) == 1 and failing[0].exc_info is None, caplog.text
        assert svc.ctl.machines["water_heater"].setpoint_w > 1000  # from memory
        store = svc.status(clock())["store"]
        assert store["error"] and "locked" in store["error"] and store["unsaved"] > 0
    finally:
        holder.rollback()
        holder.close()
    clock.advance(5)
    svc.regulator.checkpoint()
    assert "state store writable again" in caplog.text
    assert svc.status(clock())["store"]["error"] is None
    assert svc.store.transitions("towel_rail"), "the records kept in memory were written"
    svc.store.close()


def test_sigterm_sends_0_w_and_offline_and_kill_9_leaves_the_last_will(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Guards a gap of item 9: on SIGTERM the loads on surplus get 0 W, a forced one keeps its
    command, `regulation/online` says offline; after kill -9 the broker's Last Will says it."""
    make_config(tmp_path, broker.port, regulation={"tick_s": 0.5, "settle_s": 0})
    cfg_path = tmp_path / "pvopt.yml"
    probe = Probe(broker.port)
    proc = spawn_service(cfg_path)
    try:
        assert probe.wait(lambda: probe.last("regulation/online") == b"online", 20)
        probe.publish("scr/0/temperature", "50")
        probe.publish("regulation/control", json.dumps({"command": "force", "name": "towel_rail"}))
        publish_grid(probe, -1500)
        assert probe.wait(lambda: probe.last("scr/0/in") not in (None, b"0.0"), 10)
        assert probe.wait(lambda: probe.last("scr/1/in") == b"100.0", 10)
        stopped = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert probe.wait(lambda: probe.last("regulation/online", since=stopped) == b"offline", 5)
        assert probe.last("scr/0/in", since=stopped) == b"0.0"
        assert probe.last("scr/1/in") == b"100.0"  # forced: kept

        proc = spawn_service(cfg_path)
        restart = time.time()
        assert probe.wait(lambda: probe.last("regulation/online", since=restart) == b"online", 20)
        killed = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert probe.wait(lambda: probe.last("regulation/online", since=killed) == b"offline", 10)
    finally:
        probe.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
