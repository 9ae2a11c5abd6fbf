"""Against a real Home Assistant Core (one start, one restart): `pvopt run` on the virtual house
with discovery on; every entity appears with its state, unit, class and availability; commands
from Home Assistant reach pvopt's machines through `regulation/control`, a refused one leaves
both sides on pvopt's value; killing pvopt makes the entities unavailable; Home Assistant's own
energy validation accepts the energy sensors; a restarted Home Assistant gets every entity back
by asking (`homeassistant/status` = `online`), even with no retained config on the broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pvopt import config
from pvopt.adapters.homeassistant import discovery
from pvopt.cli import main
from pvsim.live import site_config, spawn_service, stop_service
from pvsim.servers.browser import chromium, screenshot_home_assistant
from pvsim.servers.homeassistant import ROOT, HomeAssistant
from pvsim.servers.loopback import ServerMissing, free_port
from pvsim.servers.mosquitto import Mosquitto
from pvsim.traces import load_trace, offset_of, window
from pvsim.virtual_house import VirtualHouse
from tests.conftest import EXAMPLES, TRACES
from tests.mqtt_probe import Probe

pytestmark = pytest.mark.homeassistant

UNAVAILABLE = "unavailable"


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = check()
        except (AssertionError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out ({timeout_s:g} s) waiting for {what}: {last!r}")
        threading.Event().wait(every_s)  # a poll interval, not a fixed sleep


class House(threading.Thread):
    """The virtual house, played in real time until told to stop."""

    def __init__(self, cfg: config.Config):
        super().__init__(daemon=True)
        full = load_trace(TRACES / "broken_clouds.csv.gz")
        self.house = VirtualHouse(cfg, window(full, offset_of(full, "12:30", cfg.site.tz), 1800))

    def run(self) -> None:
        self.house.run()

    def stop(self) -> None:
        self.house.stopping.set()
        self.join(10)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    try:
        broker = Mosquitto().start()
    except ServerMissing as exc:
        pytest.fail(str(exc))
    cfg_path = site_config(
        EXAMPLES / "house.yml",
        tmp_path / "site",
        broker.port,
        regulation={"tick_s": 1},
        sections={
            "homeassistant": {"discovery": True, "node_id": "test_site", "tic": {}},
            "state": {"checkpoint_s": 5},
            # nobody listens there: the backlog entity has something to show
            "influxdb": {"host": "127.0.0.1", "port": free_port()},
            # a home battery beside the meter (the virtual house models it): its sensors and
            # the mode select
            "battery": {"power_topic": "home/battery/power", "soc_topic": "home/battery/soc"},
            # the money sensors: today's cost and savings, monetary in euros
            "tariff": {
                "kind": "hphc",
                "prices": {"hp": 0.2516, "hc": 0.1828},
                "export": 0.04,
                "offpeak": ["22:00-06:00"],
            },
        },
    )
    cfg = config.load(cfg_path, environ={})
    house = House(cfg)
    house.start()
    try:
        yield {"broker": broker, "cfg_path": cfg_path, "cfg": cfg}
    finally:
        house.stop()
        broker.close()


def pvopt_status(cfg_path: Path) -> dict[str, Any]:
    out = CliRunner().invoke(main, ["status", "--json", "--config", str(cfg_path)])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def load_of(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in doc["loads"] if x["name"] == name)


def entity_ids(cfg: config.Config) -> dict[str, dict[str, Any]]:
    """What Home Assistant names each discovered entity (the payloads set `object_id`)."""
    return {f"{t.split('/')[1]}.{p['object_id']}": p for t, p in discovery(cfg)}


def all_there(ha: HomeAssistant, expected: dict[str, dict[str, Any]]) -> dict[str, Any]:
    states = ha.states()
    missing = [e for e in expected if e not in states]
    assert not missing, f"missing {missing}"
    down = [e for e in expected if states[e]["state"] == UNAVAILABLE]
    assert not down, f"unavailable {down}"
    return states


def test_pvopt_in_a_real_home_assistant(site: dict[str, Any]) -> None:
    broker, cfg_path, cfg = site["broker"], site["cfg_path"], site["cfg"]
    expected = entity_ids(cfg)
    probe = Probe(broker.port, ("regulation/#", "homeassistant/#"))
    # what `pvopt tic` will publish (retained), before anyone listens
    for topic, value in (("tic/EAST", "12345678"), ("tic/EAIT", "2345678"), ("tic/LTARF", "HP")):
        probe.publish(topic, value, retain=True)
    probe.publish(
        "tic/STGE/decoded", json.dumps({"tempo_today": "blue", "tempo_tomorrow": "red"}), True
    )
    proc = spawn_service(cfg_path)
    ha = HomeAssistant(broker.port, time_zone=cfg.site.timezone)
    try:
        assert probe.wait(lambda: probe.last("regulation/online") == b"online", 30)
        started = time.monotonic()
        ha.start(timeout_s=180)
        print(f"Home Assistant up in {time.monotonic() - started:.1f} s")

        # -- every entity, with its state, unit, class and availability ----------------------
        states = wait_for("every entity available", lambda: all_there(ha, expected), 90)
        for entity_id, payload in expected.items():
            attrs = states[entity_id]["attributes"]
            if entity_id.startswith("sensor.") and "options" in payload:
                # MQTT sensors honour `options` from Home Assistant 2024.4 on; 2024.3 ignores it
                assert states[entity_id]["state"] in [*payload["options"], "unknown"], entity_id
                payload = {k: v for k, v in payload.items() if k != "options"}
            for key in ("unit_of_measurement", "device_class", "state_class", "options"):
                if key in payload:
                    assert attrs[key] == payload[key], (entity_id, key)
            assert attrs.get("entity_category") is None or attrs["entity_category"] == payload.get(
                "entity_category"
            )
        device = {"water_heater": "load0", "pool_pump": "load1", "towel_rail": "load2"}

        def state(key: str, states: dict[str, Any] = states) -> str:
            return str(states[f"{key.split('.')[0]}.test_site_{key.split('.')[1]}"]["state"])

        def settled(_: Any = None) -> dict[str, Any]:
            """States once a status with a meter value and a temperature has arrived."""
            now = ha.states()
            assert now["sensor.test_site_grid_power"]["state"] not in ("unknown", UNAVAILABLE)
            assert now["sensor.test_site_load0_temperature"]["state"] not in ("unknown",)
            assert now["sensor.test_site_import_energy"]["state"] not in ("unknown",)
            return now

        states = wait_for("a meter value and a temperature", settled, 60)
        assert float(state("sensor.grid_power", states)) == pytest.approx(
            -float(state("sensor.surplus_power", states)), abs=0.11
        )
        for key in ("import_energy", "export_energy", "diverted_energy", "diverted_power"):
            assert float(state(f"sensor.{key}", states)) >= 0, key
        assert state("binary_sensor.meter_stale", states) == "off"
        # today's money: a number from the first status on (0 before an interval is committed)
        assert float(state("sensor.solar_savings_today", states)) >= 0
        assert abs(float(state("sensor.cost_today", states))) < 100
        assert state("sensor.meter_rejected", states) == "0"
        for load in device.values():
            assert state(f"sensor.{load}_state", states) in ("off", "eco", "solar", "boost")
            assert state(f"select.{load}_mode", states) == "auto"
            assert state(f"binary_sensor.{load}_enabled", states) == "on"
            assert float(state(f"sensor.{load}_power", states)) >= 0
            assert float(state(f"sensor.{load}_energy", states)) >= 0
        assert 10 < float(state("sensor.load0_temperature", states)) < 90
        assert [float(state(f"number.load0_{t}", states)) for t in ("temp_min", "temp_max")] == [
            45.0,
            60.0,
        ]
        assert state("sensor.tic_east", states) == "12345678"
        assert state("sensor.tic_ltarf", states) == "HP"
        assert (
            state("sensor.tic_tempo_today", states),
            state("sensor.tic_tempo_tomorrow", states),
        ) == (
            "blue",
            "red",
        )
        names = {e: s["attributes"].get("friendly_name") for e, s in states.items()}
        assert names["select.test_site_load0_mode"] == "water_heater Mode"
        assert names["sensor.test_site_grid_power"] == "pvopt Grid power"
        devices = ha.ws({"type": "config/device_registry/list"})[0]
        ours = {d["name"]: d for d in devices if d["manufacturer"] == "pvopt"}
        assert set(ours) == {"pvopt", *device}
        assert {ours[n]["via_device_id"] for n in device} == {ours["pvopt"]["id"]}

        # -- the Energy dashboard: grid import/export and each load as a device ----------------
        ha.ws(
            {
                "type": "energy/save_prefs",
                "energy_sources": [
                    {
                        "type": "grid",
                        "flow_from": [
                            {
                                "stat_energy_from": "sensor.test_site_import_energy",
                                "stat_cost": None,
                                "entity_energy_price": None,
                                "number_energy_price": None,
                            }
                        ],
                        "flow_to": [
                            {
                                "stat_energy_to": "sensor.test_site_export_energy",
                                "stat_compensation": None,
                                "entity_energy_price": None,
                                "number_energy_price": None,
                            }
                        ],
                        "cost_adjustment_day": 0,
                    }
                ],
                "device_consumption": [
                    {"stat_consumption": f"sensor.test_site_{load}_energy"}
                    for load in device.values()
                ],
            }
        )

        # -- commands from Home Assistant go through pvopt's command path -----------------------
        ha.call("number", "set_value", entity_id="number.test_site_load0_boost_duration", value=30)
        wait_for(
            "the boost duration held",
            lambda: ha.states()["number.test_site_load0_boost_duration"]["state"] in ("30", "30.0"),
            15,
        )
        ha.call("select", "select_option", entity_id="select.test_site_load0_mode", option="boost")
        doc = wait_for(
            "water_heater boosted",
            lambda: (
                (d := pvopt_status(cfg_path))
                and load_of(d, "water_heater")["state"] == "boost"
                and d
            ),
            15,
        )
        heater = load_of(doc, "water_heater")
        assert heater["mode"] == "manual" and heater["forced_until"] is not None
        wait_for(
            "the select to show boost",
            lambda: ha.states()["select.test_site_load0_mode"]["state"] == "boost",
            15,
        )
        ha.call("button", "press", entity_id="button.test_site_load1_boost")
        wait_for(
            "pool_pump boosted",
            lambda: load_of(pvopt_status(cfg_path), "pool_pump")["state"] == "boost",
            15,
        )
        ha.call("select", "select_option", entity_id="select.test_site_load2_mode", option="off")
        wait_for(
            "towel_rail off",
            lambda: (
                (x := load_of(pvopt_status(cfg_path), "towel_rail"))["mode"] == "manual"
                and x["state"] == "off"
            ),
            15,
        )
        for load in ("load0", "load1", "load2"):
            ha.call(
                "select", "select_option", entity_id=f"select.test_site_{load}_mode", option="auto"
            )
        wait_for(
            "every load back to auto",
            lambda: {x["mode"] for x in pvopt_status(cfg_path)["loads"]} == {"auto"},
            15,
        )
        # -- who fills first beside the battery: Home Assistant's select, pvopt's command path --
        assert 0 <= float(state("sensor.battery_soc", ha.states())) <= 100
        assert state("select.battery_mode", ha.states()) == "battery_first"
        mode_select = "select.test_site_battery_mode"
        ha.call("select", "select_option", entity_id=mode_select, option="loads_first")
        wait_for(
            "the battery mode loads_first on both sides",
            lambda: (
                pvopt_status(cfg_path)["battery"]["mode"] == "loads_first"
                and ha.states()[mode_select]["state"] == "loads_first"
            ),
            15,
        )
        ha.call("number", "set_value", entity_id="number.test_site_load0_temp_max", value=62)
        wait_for(
            "temp_max 62 on both sides",
            lambda: (
                load_of(pvopt_status(cfg_path), "water_heater")["temp_max"] == 62
                and ha.states()["number.test_site_load0_temp_max"]["state"] in ("62", "62.0")
            ),
            15,
        )
        # refused: temp_min above temp_eco breaks the order pvopt enforces
        log_size = (cfg_path.parent / "run.log").stat().st_size
        ha.call("number", "set_value", entity_id="number.test_site_load0_temp_min", value=58)
        wait_for(
            "pvopt to refuse temp_min 58",
            lambda: (
                "refused command from regulation/control"
                in (cfg_path.parent / "run.log").read_text(encoding="utf-8")[log_size:]
            ),
            15,
        )
        asked = time.time()
        wait_for(
            "a status after the refusal",
            lambda: json.loads(probe.last("regulation/status") or b"{}").get("date", 0) > asked + 1,
            15,
        )
        assert load_of(pvopt_status(cfg_path), "water_heater")["temp_min"] == 45
        wait_for(
            "Home Assistant back on pvopt's temp_min",
            lambda: ha.states()["number.test_site_load0_temp_min"]["state"] in ("45", "45.0"),
            15,
        )

        # -- the device page's screenshot (docs/homeassistant.md), when a Chromium is installed
        if chromium() is not None:
            heater = next(d for d in devices if d["name"] == "water_heater")["id"]
            screenshot_home_assistant(
                ha.url,
                ha.token,
                f"/config/devices/device/{heater}",
                "Maximum temperature",
                ROOT / "out" / "homeassistant-device.png",
            )

        # -- kill pvopt: unavailable; restart: back, counters not decreasing --------------------
        totals = {
            k: float(state(k, ha.states())) for k in ("sensor.import_energy", "sensor.load0_energy")
        }
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for(
            "every entity unavailable",
            lambda: {ha.states()[e]["state"] for e in expected} == {UNAVAILABLE},
            30,
        )
        proc = spawn_service(cfg_path)
        states = wait_for("every entity back", lambda: all_there(ha, expected), 60)
        for key, before in totals.items():
            assert float(state(key, states)) >= before, key

        # -- restart Home Assistant with no retained config: it asks, pvopt answers -------------
        ha.stop()
        configs = [t for t, _ in discovery(cfg)]
        for topic in configs:
            probe.publish(topic, b"", retain=True)
        birth_seen = len([1 for _, t, p in probe.messages if t == "homeassistant/status"])
        started = time.monotonic()
        ha.start(timeout_s=180)
        print(f"Home Assistant restarted in {time.monotonic() - started:.1f} s")
        wait_for(
            "Home Assistant's birth message",
            lambda: (
                len([1 for _, t, p in probe.messages if t == "homeassistant/status"]) > birth_seen
            ),
            60,
        )
        wait_for("every entity rediscovered", lambda: all_there(ha, expected), 60)

        # -- Home Assistant's own energy validation (statistics exist after a 5-minute boundary)
        def validated() -> bool:
            result = ha.ws({"type": "energy/validate"})[0]
            # the preferences saved before the restart: one grid source, three devices
            assert (len(result["energy_sources"]), len(result["device_consumption"])) == (1, 3)
            problems = [i for group in result["energy_sources"] for i in group] + [
                i for group in result["device_consumption"] for i in group
            ]
            assert not problems, problems
            return True

        started = time.monotonic()
        wait_for("energy validation without a problem", validated, 6 * 60, every_s=5)
        print(f"energy validation clean after {time.monotonic() - started:.0f} s")
    finally:
        stop_service(proc)
        ha.stop()
        shutil.copy(ha.dir / "homeassistant.log", cfg_path.parent)  # kept beside run.log
        ha.close()
        probe.close()
