"""The `battery:` block (issue 26): its config errors, its presets, and its readings in the
meter's snapshot, vendor sign normalised (+ charging)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from jobs.meter_cache import MeterCache
from machines.model import BatteryMode
from pvopt import config
from pvopt.kinds import HouseReading, meter_source
from pvopt.service import Service
from pvsim.servers.mosquitto import Mosquitto
from pvsim.traces import Trace, window
from pvsim.virtual_house import VirtualHouse
from tests.conftest import EXAMPLES
from tests.mqtt_probe import Probe

T0 = 1_700_000_000.0
LOAD = """equipment:
  - type: VariablePowerEquipment
    name: rail
    max_power: 500
"""


def parse(battery: str) -> config.Config:
    return config.parse(f"battery: {battery}\n" + LOAD, "house.yml", environ={})


def problems(battery: str) -> list[config.Problem]:
    with pytest.raises(config.ConfigError) as info:
        parse(battery)
    return info.value.problems


def test_no_battery_block_is_none_and_reads_as_before() -> None:
    cfg = config.parse(LOAD, "house.yml", environ={})
    assert cfg.battery is None
    src = meter_source(cfg.meter, cfg.battery)
    assert src.battery is None and src.topics == meter_source(cfg.meter).topics


def test_defaults_and_the_plan_a_policy_reads() -> None:
    b = parse("{power_topic: bat/power, soc_topic: bat/soc}").battery
    assert b is not None
    assert (b.mode, b.soc_target, b.reserve_soc, b.soc_by_time) == (
        BatteryMode.BATTERY_FIRST,
        90.0,
        20.0,
        "15:00",
    )
    assert (b.response_s, b.tolerance_w, b.forced_from_battery) == (10.0, 50.0, False)
    assert (b.sim.capacity_wh, b.sim.efficiency, b.sim.period_s, b.sim.lag_s) == (5000, 0.9, 2, 2)
    plan = parse("{power_topic: p, mode: soc_by, soc_by_time: '14:30'}").battery
    assert plan is not None and plan.plan().soc_by_s == 14 * 3600 + 30 * 60
    assert plan.plan().mode is BatteryMode.SOC_BY


@pytest.mark.parametrize(
    ("battery", "key", "words"),
    [
        ("{soc_topic: s}", "battery", "needs battery.power_topic"),
        ("{power_topic: p, soc_target: 101}", "battery.soc_target", "less than or equal to 100"),
        ("{power_topic: p, reserve_soc: -1}", "battery.reserve_soc", "greater than or equal"),
        ("{power_topic: p, reserve_soc: 90}", "battery.reserve_soc", "not below soc_target 90"),
        ("{power_topic: p, mode: battery_last}", "battery.mode", "battery_first"),
        ("{power_topic: p, soc_by_time: '3pm'}", "battery.soc_by_time", "not 'HH:MM'"),
        ("{power_topic: 'bat/#'}", "battery.power_topic", "wildcard"),
        ("{power_topic: p, stale_after_s: 0}", "battery.stale_after_s", "greater than 0"),
        ("{power_topic: p, preset: tesla}", "battery.preset", "'victron'"),
        ("{power_topic: p, soc_tpoic: s}", "battery.soc_tpoic", "unknown key"),
        ("{preset: victron, instance: 512}", "battery", "needs battery.portal_id"),
        ("{preset: victron, portal_id: c0619ab1}", "battery", "needs battery.instance"),
        (
            "{preset: victron, portal_id: x, instance: 1, power_topic: p}",
            "battery.power_topic",
            "only with preset generic",
        ),
        ("{preset: homeassistant}", "battery", "needs battery.power_entity"),
        (
            "{preset: homeassistant, power_entity: 'Battery Power'}",
            "battery.power_entity",
            "not an entity id",
        ),
        ("{power_topic: p, portal_id: x}", "battery.portal_id", "only with preset victron"),
        ("{power_topic: p, sim: {efficiency: 1.2}}", "battery.sim.efficiency", "less than"),
        ("{power_topic: p, sim: {min_soc: 50, max_soc: 40}}", "battery.sim.min_soc", "not below"),
        ("{power_topic: p, sim: {soc0: 5}}", "battery.sim.soc0", "outside min_soc-max_soc"),
        ("{power_topic: p, sim: {capacity_wh: 0}}", "battery.sim.capacity_wh", "greater than 0"),
        ("{power_topic: tic/SINSTS}", "battery.power_topic", "one topic, one role"),
    ],
)
def test_config_errors_name_file_line_and_key(battery: str, key: str, words: str) -> None:
    found = problems(battery)
    assert len(found) == 1, found
    assert (found[0].file, found[0].line, found[0].key) == ("house.yml", 1, key), found
    assert words in found[0].message, found[0].message


def test_an_error_deep_in_the_block_gives_its_own_line() -> None:
    text = "battery:\n  power_topic: p\n  sim:\n    max_charge_w: -5\n" + LOAD
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "house.yml", environ={})
    (p,) = info.value.problems
    assert (p.line, p.key) == (4, "battery.sim.max_charge_w")


# -- the readings --------------------------------------------------------------------------------


def cache(battery: str) -> MeterCache:
    cfg = parse(battery)
    return MeterCache(meter_source(cfg.meter, cfg.battery), started_at=T0)


def test_generic_json_paths_and_sign_normalised_to_charging_positive() -> None:
    c = cache(
        "{power_topic: bat/p, soc_topic: bat/s, power_json_key: dc.power, soc_json_key: soc,"
        " charge_positive: false}"
    )
    assert {"bat/p", "bat/s"} <= set(c.topics)
    assert not c.feed("bat/p", b'{"dc": {"power": 1200.5}}', T0)  # no tick of its own
    assert not c.feed("bat/s", b'{"soc": 64}', T0)
    snap = c.snapshot(T0 + 1)
    assert (snap.battery_w, snap.battery_soc) == (-1200.5, 64.0)  # + discharging: -1200.5 charge


def test_readings_go_stale_each_on_its_own() -> None:
    c = cache("{power_topic: bat/p, soc_topic: bat/s, stale_after_s: 60}")
    c.feed("bat/p", b"300", T0)
    c.feed("bat/s", b"50", T0 + 30)
    assert c.snapshot(T0 + 60).battery_w == 300.0
    snap = c.snapshot(T0 + 61)
    assert (snap.battery_w, snap.battery_soc) == (None, 50.0)
    assert c.snapshot(T0 + 91).battery_soc is None


BAD = [b"", b"abc", b"NaN", b"1e999", b"true", b"null", b"[1]", b'{"value": null}']


@pytest.mark.parametrize("payload", [*BAD, b"101", b"-3"])
def test_malformed_payloads_are_logged_and_keep_the_reading(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    c = cache("{power_topic: bat/p, soc_topic: bat/s}")
    c.feed("bat/p", b"-800", T0)
    c.feed("bat/s", b"40", T0)
    before = c.snapshot(T0)
    assert not c.feed("bat/s", payload, T0)
    assert not c.feed("bat/p", b"9e9", T0)  # beyond any house
    assert c.rejected == 2 and c.snapshot(T0) == before
    assert "ignored bat/s payload" in caplog.text


def test_victron_topics_payloads_and_keepalive() -> None:
    cfg = parse("{preset: victron, portal_id: c0619ab1b2c3, instance: 512}")
    src = meter_source(cfg.meter, cfg.battery)
    reader = src.battery
    assert reader is not None
    base = "N/c0619ab1b2c3/battery/512"
    assert reader.topics == {f"{base}/Dc/0/Power", f"{base}/Soc"}
    src.feed(f"{base}/Dc/0/Power", b'{"value": -1534.2}', T0)  # Venus: + charging
    src.feed(f"{base}/Soc", b'{"value": 81.5}', T0)
    snap = src.snapshot(T0)
    assert (snap.battery_w, snap.battery_soc) == (-1534.2, 81.5)
    ((topic, first),) = reader.keepalive(first=True)
    ((_, later),) = reader.keepalive(first=False)
    assert topic == "R/c0619ab1b2c3/keepalive" and first == ""
    assert json.loads(later) == {"keepalive-options": ["suppress-republish"]}


def test_homeassistant_statestream_topics_and_discharge_positive() -> None:
    cfg = parse(
        "{preset: homeassistant, power_entity: sensor.battery_power,"
        " soc_entity: sensor.battery_soc}"
    )
    src = meter_source(cfg.meter, cfg.battery)
    assert src.battery is not None and src.battery.keepalive(first=True) == []
    src.feed("homeassistant/sensor/battery_power/state", b"750", T0)  # 750 W discharging
    src.feed("homeassistant/sensor/battery_soc/state", b"33", T0)
    snap = src.snapshot(T0)
    assert (snap.battery_w, snap.battery_soc) == (-750.0, 33.0)


PRESETS = [
    "{power_topic: bat/p, soc_topic: bat/s}",
    "{power_topic: bat/p, soc_topic: bat/s, charge_positive: false, power_json_key: a.b}",
    "{preset: victron, portal_id: abc, instance: 0}",
    "{preset: homeassistant, power_entity: sensor.p, soc_entity: sensor.s}",
]


@pytest.mark.parametrize("battery", PRESETS)
@given(charge_w=st.floats(-10_000, 10_000), soc=st.floats(0, 100))
def test_what_the_virtual_battery_publishes_reads_back(
    battery: str, charge_w: float, soc: float
) -> None:
    cfg = parse(battery)
    src = meter_source(cfg.meter, cfg.battery)
    reading = HouseReading(0.0, 0.0, 0.0, 1.0, battery_w=charge_w, battery_soc=soc)
    for topic, payload in src.published(reading):
        src.feed(topic, payload.encode(), T0)
    snap = src.snapshot(T0)
    assert snap.battery_w == pytest.approx(charge_w, abs=0.051)
    assert snap.battery_soc == pytest.approx(soc, abs=0.051)


# -- through a real broker -----------------------------------------------------------------------


def test_victron_readings_reach_the_snapshot_through_a_real_broker(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """The service wakes Venus OS with R/<portal>/keepalive (a full republish first), reads
    N/<portal>/battery/<instance>/Dc/0/Power and Soc, and its snapshot carries them."""
    text = (
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: pvopt-{time.time_ns()}}}\n"
        "state: {path: pvopt.db}\n"
        "battery: {preset: victron, portal_id: c0619ab1b2c3, instance: 512, keepalive_s: 1}\n"
        + LOAD
    )
    path = tmp_path / "pvopt.yml"
    path.write_text(text, encoding="utf-8")
    svc = Service(config.load(path, environ={}))
    probe = Probe(broker.port)
    svc.start()
    try:
        keepalive = "R/c0619ab1b2c3/keepalive"
        assert probe.wait(lambda: probe.last(keepalive) is not None, 10), "no keep-alive"
        assert probe.last(keepalive) == b""  # the first asks for every value
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        base = "N/c0619ab1b2c3/battery/512"
        probe.publish(f"{base}/Dc/0/Power", '{"value": 1820.4}')
        probe.publish(f"{base}/Soc", '{"value": 57.5}')
        probe.publish(f"{base}/Soc", "garbage")  # logged and ignored

        def read() -> tuple[float | None, float | None]:
            snap = svc.meter.snapshot(time.time())
            return snap.battery_w, snap.battery_soc

        assert probe.wait(lambda: read() == (1820.4, 57.5) and svc.meter.rejected == 1, 10)
        # the status shows them as pvopt reads them, with the mode, from the next tick
        shown = {"power_w": 1820, "soc": 57.5, "mode": "battery_first", "sign": None}
        assert probe.wait(lambda: svc.status(time.time()).get("battery") == shown, 15)
        # the next ones only keep it awake, every keepalive_s
        since = time.time()
        assert probe.wait(lambda: probe.last(keepalive, since) is not None, 5)
        later = probe.last(keepalive, since)
        assert later is not None and json.loads(later)["keepalive-options"] == [
            "suppress-republish"
        ]
    finally:
        probe.close()
        svc.stop()


def test_the_virtual_house_speaks_victron_only_while_the_service_keeps_it_awake(
    broker: Mosquitto, tmp_path: Path, broken_clouds: Trace
) -> None:
    data = yaml.safe_load((EXAMPLES / "battery.yml").read_text(encoding="utf-8"))
    data["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "client_id": f"t{time.time_ns()}"}
    data["state"] = {"path": "pvopt.db"}
    data["battery"] = {
        "preset": "victron",
        "portal_id": "c0619ab1b2c3",
        "instance": 512,
        "sim": data["battery"]["sim"],
    }
    path = tmp_path / "pvopt.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = config.load(path, environ={})
    house = VirtualHouse(cfg, window(broken_clouds, 11 * 3600, 120))
    probe = Probe(broker.port, ("N/#",))
    runner = threading.Thread(target=house.run, daemon=True)
    runner.start()
    svc = Service(cfg)
    try:
        assert probe.wait(house.bus.connected.is_set, 10)
        time.sleep(3)  # a few meter samples: the battery stays silent while nobody asks
        assert not [t for _, t, _ in probe.messages if t.startswith("N/")]
        svc.start()

        def soc() -> float | None:
            return svc.meter.snapshot(time.time()).battery_soc

        assert probe.wait(lambda: soc() is not None, 15)
        assert soc() == pytest.approx(30.0, abs=1.0)  # battery.yml's soc0
        assert svc.meter.snapshot(time.time()).battery_w is not None
    finally:
        house.stopping.set()
        runner.join(10)
        probe.close()
        svc.stop()


def test_the_mode_chosen_at_run_time_survives_a_restart_until_the_file_changes_it(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """`{"command": "battery_mode", ...}` on regulation/control (Home Assistant's select)
    changes who fills first at once, the real state file keeps it across a restart, and an
    edit of `battery.mode` in the file wins over it; a bad mode is refused and changes nothing."""
    path = tmp_path / "pvopt.yml"

    def start(mode: str) -> Service:
        path.write_text(
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: pvopt-{time.time_ns()}}}\n"
            "state: {path: pvopt.db}\n"
            f"battery: {{power_topic: home/battery/power, soc_topic: home/battery/soc, "
            f"mode: {mode}}}\n" + LOAD,
            encoding="utf-8",
        )
        svc = Service(config.load(path, environ={}))
        svc.start()
        return svc

    def mode(svc: Service) -> str:
        return str(svc.status(time.time())["battery"]["mode"])

    probe = Probe(broker.port)
    svc = start("battery_first")
    try:
        assert probe.wait(svc.bus.subscribed.is_set, 10)
        assert mode(svc) == "battery_first"
        probe.publish("regulation/control", '{"command": "battery_mode", "mode": "drain_it"}')
        probe.publish("regulation/control", '{"command": "battery_mode", "mode": "loads_first"}')
        assert probe.wait(lambda: mode(svc) == "loads_first", 10)
    finally:
        svc.stop()
    svc = start("battery_first")  # the same file: the choice is kept
    try:
        assert mode(svc) == "loads_first"
    finally:
        svc.stop()
    svc = start("soc_by")  # the file says otherwise now: its word is the newer
    try:
        assert mode(svc) == "soc_by"
    finally:
        probe.close()
        svc.stop()
