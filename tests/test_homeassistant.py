"""Home Assistant discovery contract, without Home Assistant: every payload well formed and
unique, every template renders to what pvopt publishes or accepts, the link republishes and
clears; the lifetime totals never decrease and survive a restart."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from machines.commands import THRESHOLD_KEYS, BatteryCommand, parse_control_json
from machines.model import BatteryMode, State
from machines.totals import DurableTotals, Peak, Totals, annotate
from machines.wiring import CONTROL_TOPIC, ONLINE_TOPIC, STATUS_TOPIC
from pvopt import config
from pvopt.adapters.homeassistant import (
    DEVICE_BOUND,
    MODE_COMMANDS,
    STATE_OPTIONS,
    DiscoveryLink,
    discovery,
    site_identifier,
)
from pvopt.config.tariff import TariffConfig
from pvopt.kinds.battery import BatteryConfig
from pvopt.service import Service
from pvsim.servers.mosquitto import Mosquitto
from tests.conftest import EXAMPLES
from tests.mqtt_probe import Probe

ENV = jinja2.Environment()


# the example house's loads on three kinds of device: the seed's (reports nothing), a Tasmota
# plug (availability, state, power) and an ESPHome light (availability and state, no power)
DEVICES = {
    "pool_pump": {"preset": "tasmota", "topic": "sonoff-pump"},
    "towel_rail": {"preset": "esphome", "topic": "bath-node/light/rail"},
}


def site(**ha: Any) -> config.Config:
    """The example house with an InfluxDB and discovery on (TIC entities too), its pump and
    towel rail on devices that report."""
    data = yaml.safe_load((EXAMPLES / "house.yml").read_text(encoding="utf-8"))
    for eq in data["equipment"]:
        if eq["name"] in DEVICES:
            eq["device"] = DEVICES[eq["name"]]
    text = yaml.safe_dump(data)
    cfg = config.parse(text, str(EXAMPLES / "house.yml"), environ={}, base_dir=EXAMPLES)
    section = config.HomeAssistantConfig(**{"discovery": True, "tic": config.TicEntities(), **ha})
    return cfg.model_copy(update={"homeassistant": section, "influxdb": config.InfluxConfig()})


def render(template: str, value: Any = None, value_json: Any = None, **states: str) -> str:
    """A Home Assistant template as HA renders it: `value`, `value_json`, `states()`."""
    return (
        ENV.from_string(template)
        .render(value=value, value_json=value_json, states=lambda e: states.get(e, "unknown"))
        .strip()
    )


def status_doc(**load: Any) -> dict[str, Any]:
    base = {
        "name": "water_heater",
        "id": 0,
        "state": "solar",
        "mode": "auto",
        "reason": "surplus",
        "power_w": 1850.0,
        "energy_today_wh": 5230.5,
        "energy_total_wh": 90000.0,
        "temperature_c": 52.4,
        "temp_min": 45,
        "temp_eco": 50,
        "temp_sol_min": 55,
        "temp_max": 60,
        "enabled": True,
        "measured_w": 1830.5,
        "online": True,
        "energy_from": "measured",
    }
    return {
        "date": 1781516405.0,
        "grid_w": -412.0,
        "meter": {"stale": False, "rejected": 0},
        "loads": [{**base, **load}],
        "influxdb": {"sent_until": 1781516340},
        "surplus_w": 412.0,
        "diverted_w": 1850.0,
        "energy_total": {"import_wh": 1.0, "export_wh": 2.0, "diverted_wh": 3.0},
    }


def test_every_payload_has_a_unique_id_a_device_and_availability() -> None:
    cfg = site()
    messages = discovery(cfg)
    ids = Counter(p["unique_id"] for _, p in messages)
    assert [i for i, n in ids.items() if n > 1] == []
    assert len({t for t, _ in messages}) == len(messages)
    site_id = site_identifier(cfg.homeassistant)
    for topic, p in messages:
        component = topic.split("/")[1]
        assert topic == f"homeassistant/{component}/pvopt/{topic.split('/')[3]}/config"
        assert p["device"]["identifiers"], topic
        assert p["availability"][0] == {
            "topic": ONLINE_TOPIC,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
        if len(p["availability"]) > 1:  # and its device's, when it reports availability
            assert p["availability_mode"] == "all", topic
            assert [a["topic"] for a in p["availability"]] == [ONLINE_TOPIC, STATUS_TOPIC]
        assert p["name"] and not p["name"].lower().startswith(p["device"]["name"].lower()), topic
        if p["device"]["identifiers"] != [site_id]:
            assert p["device"]["via_device"] == site_id
        if p.get("state_class") == "total_increasing":
            assert p["device_class"] == "energy" and p["unit_of_measurement"] == "Wh"


def test_every_listed_entity_is_there() -> None:
    keys = {t.split("/")[3]: t.split("/")[1] for t, _ in discovery(site())}
    site_keys = {
        "grid_power": "sensor",
        "surplus_power": "sensor",
        "diverted_power": "sensor",
        "import_energy": "sensor",
        "export_energy": "sensor",
        "diverted_energy": "sensor",
        "meter_stale": "binary_sensor",
        "influxdb_backlog": "sensor",
        "meter_rejected": "sensor",
        **{f"tic_{k}": "sensor" for k in ("east", "eait", "sinsts", "sinsti", "ltarf")},
        "tic_tempo_today": "sensor",
        "tic_tempo_tomorrow": "sensor",
    }
    per_load = {
        "state": "sensor",
        "reason": "sensor",
        "power": "sensor",
        "energy": "sensor",
        "mode": "select",
        "boost_duration": "number",
        "boost": "button",
        "enabled": "binary_sensor",
    }
    probe = {"temperature": "sensor", **dict.fromkeys(THRESHOLD_KEYS, "number")}
    expected = dict(site_keys)
    for lid in (0, 1, 2):
        expected |= {f"load{lid}_{k}": c for k, c in per_load.items()}
    expected |= {f"load0_{k}": c for k, c in probe.items()}  # only the water heater has a probe
    # devices that report: the Tasmota pump its power and availability, the ESPHome rail its
    # availability only; the seed's heater nothing
    expected |= {"load1_measured_power": "sensor", "load1_device_online": "binary_sensor"}
    expected |= {"load2_device_online": "binary_sensor"}
    assert keys == expected


def payload(key: str) -> dict[str, Any]:
    return next(p for t, p in discovery(site()) if t.split("/")[3] == key)


def available(p: dict[str, Any], retained: dict[str, Any]) -> bool:
    """Home Assistant's MQTT availability (mqtt/mixins.py) on the last message of each topic:
    each entry's payload, through its `value_template`, compared with `payload_available`;
    `all` needs every entry available, a topic never heard counts as not available."""
    verdicts = []
    for a in p["availability"]:
        message = retained.get(a["topic"])
        if message is None:
            verdicts.append(False)
            continue
        if "value_template" in a:
            said = render(a["value_template"], value=json.dumps(message), value_json=message)
        else:
            said = message
        verdicts.append(said == a["payload_available"])
    return all(verdicts) if p.get("availability_mode") == "all" else verdicts[-1]


def test_a_loads_entities_go_unavailable_while_its_device_says_it_is_offline() -> None:
    messages = discovery(site())
    pump = {t.split("/")[3][len("load1_") :]: p for t, p in messages if "/load1_" in t}
    heater = {t.split("/")[3][len("load0_") :]: p for t, p in messages if "/load0_" in t}
    assert {k for k, p in pump.items() if len(p["availability"]) == 2} == set(DEVICE_BOUND)
    assert all(len(p["availability"]) == 1 for p in heater.values())  # its device cannot tell

    def shown(p: dict[str, Any], online: bool | None, pvopt: str = "online") -> bool:
        status = status_doc(id=1, name="pool_pump", online=online)
        return available(p, {ONLINE_TOPIC: pvopt, STATUS_TOPIC: status})

    for sub in DEVICE_BOUND:
        p = pump[sub]
        assert shown(p, True) and shown(p, None), sub  # null: it never said, not unavailable
        assert not shown(p, False), sub
        assert not shown(p, True, pvopt="offline"), sub  # pvopt's Last Will still counts
    # what explains the unavailability stays: the device's connectivity and the reason
    for sub in ("device_online", "reason", "enabled", "boost_duration"):
        assert shown(pump[sub], False) and not shown(pump[sub], True, pvopt="offline"), sub


def test_device_online_is_connectivity_and_unknown_until_the_device_says() -> None:
    p = payload("load1_device_online")
    assert (p["device_class"], p["entity_category"]) == ("connectivity", "diagnostic")
    said = {
        online: render(p["value_template"], value_json=status_doc(id=1, online=online))
        for online in (True, False, None)
    }
    assert said == {True: "ON", False: "OFF", None: "None"}  # None: Home Assistant's unknown


def test_measured_power_is_the_devices_fresh_reading_or_unknown() -> None:
    p = payload("load1_measured_power")
    assert (p["unit_of_measurement"], p["device_class"], p["state_class"]) == (
        "W",
        "power",
        "measurement",
    )
    assert render(p["value_template"], value_json=status_doc(id=1)) == "1830.5"
    stale = status_doc(id=1, measured_w=None)
    assert render(p["value_template"], value_json=stale) == "None"  # never a false 0 W
    # the commanded power stays its own sensor, beside it
    assert render(payload("load1_power")["value_template"], value_json=stale) == "1850.0"


def test_the_reason_sensor_is_free_text_so_device_reasons_show_as_they_are() -> None:
    p = payload("load1_reason")
    assert "options" not in p and p.get("device_class") is None
    for reason in ("device_offline", "device_not_following", "thermostat_cut"):
        assert render(p["value_template"], value_json=status_doc(id=1, reason=reason)) == reason


def test_without_tic_or_influxdb_their_entities_are_absent() -> None:
    cfg = site(tic=None).model_copy(update={"influxdb": None})
    keys = {t.split("/")[3] for t, _ in discovery(cfg)}
    assert not {k for k in keys if k.startswith("tic_") or k.startswith("influxdb")}


def test_two_sites_on_one_broker_never_collide() -> None:
    a, b = discovery(site(node_id="house")), discovery(site(node_id="barn"))
    assert not {t for t, _ in a} & {t for t, _ in b}
    assert not {p["unique_id"] for _, p in a} & {p["unique_id"] for _, p in b}
    assert not {p.get("object_id") for _, p in a} & {p.get("object_id") for _, p in b}


def test_select_options_are_the_commands_pvopt_accepts_and_the_states_it_publishes() -> None:
    selects = [p for t, p in discovery(site()) if t.split("/")[1] == "select"]
    assert len(selects) == 3
    for p in selects:
        assert p["options"] == list(MODE_COMMANDS)
        assert p["command_topic"] == CONTROL_TOPIC
        lid = int(p["unique_id"].split("_load")[1].split("_")[0])
        boost = f"number.pvopt_load{lid}_boost_duration"
        for option in p["options"]:
            cmd = parse_control_json(
                render(p["command_template"], option, **{boost: "30"}).encode()
            )
            assert (cmd.action, cmd.load) == (MODE_COMMANDS[option], lid)
            if option == "boost":
                assert cmd.duration_s == 1800
        # every (mode, state) pvopt can publish shows as one of the options
        for mode in ("auto", "manual"):
            for state in State:
                doc = status_doc(id=lid, mode=mode, state=state.value)
                assert render(p["value_template"], value_json=doc) in p["options"]
        shown = render(
            p["value_template"], value_json=status_doc(id=lid, mode="manual", state="off")
        )
        assert shown == "off"


def test_state_options_are_exactly_the_machine_states() -> None:
    states = [p for t, p in discovery(site()) if t.endswith("_state/config")]
    assert states and all(p["options"] == STATE_OPTIONS for p in states)
    assert [s.value for s in State] == STATE_OPTIONS
    assert render(states[0]["value_template"], value_json=status_doc(state="eco")) == "eco"


def test_thresholds_follow_the_config_rules_and_send_set_commands() -> None:
    numbers = {
        t.split("/")[3]: p for t, p in discovery(site()) if t.split("/")[3][6:] in THRESHOLD_KEYS
    }
    assert set(numbers) == {f"load0_{k}" for k in THRESHOLD_KEYS}
    for key, p in numbers.items():
        th = key[6:]
        assert (p["min"], p["max"], p["entity_category"]) == (-20.0, 110.0, "config")
        assert p["state_topic"] == STATUS_TOPIC
        assert (
            float(render(p["value_template"], value_json=status_doc()))
            == status_doc()["loads"][0][th]
        )
        cmd = parse_control_json(render(p["command_template"], 47.5).encode())
        assert (cmd.action, cmd.load, cmd.thresholds) == ("set", 0, {th: 47.5})


def test_boost_button_uses_the_duration_number_or_an_hour() -> None:
    button = next(p for t, p in discovery(site()) if t.endswith("load0_boost/config"))
    cmd = parse_control_json(render(button["command_template"]).encode())
    assert (cmd.action, cmd.duration_s) == ("force", 3600)
    number = next(p for t, p in discovery(site()) if t.endswith("load0_boost_duration/config"))
    assert number["command_topic"] == number["state_topic"] and number["retain"] is True
    assert number["object_id"] == "pvopt_load0_boost_duration"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("grid_power", "-412.0"),
        ("import_energy", "1.0"),
        ("meter_stale", "OFF"),
        ("influxdb_backlog", "65.0"),
        ("load0_energy", "90000.0"),
        ("load0_enabled", "ON"),
        ("load0_temperature", "52.4"),
    ],
)
def test_status_templates_read_the_status(key: str, expected: str) -> None:
    p = next(p for t, p in discovery(site()) if t.split("/")[3] == key)
    assert render(p["value_template"], value_json=status_doc()) == expected


def test_unknown_totals_render_as_none_never_zero() -> None:
    p = next(p for t, p in discovery(site()) if t.split("/")[3] == "import_energy")
    doc = status_doc()
    doc["energy_total"]["import_wh"] = None
    assert render(p["value_template"], value_json=doc) == "None"  # HA: unknown


def test_tempo_colours_map_to_the_enum() -> None:
    p = next(p for t, p in discovery(site()) if t.split("/")[3] == "tic_tempo_tomorrow")
    assert p["options"] == ["blue", "white", "red"]
    pairs = [("BLEU", "blue"), ("BLANC", "white"), ("ROUGE", "red"), ("----", "None")]
    pairs += [("blue", "blue"), ("white", "white"), ("red", "red")]  # as `pvopt tic` says
    for raw, shown in pairs:
        assert render(p["value_template"], value_json={"tempo_tomorrow": raw}) == shown


def test_link_republishes_on_home_assistant_online_and_clears_removed_loads() -> None:
    sent: list[tuple[str, str]] = []
    link = DiscoveryLink(site(), lambda t, p: sent.append((t, p)))
    assert link.subscriptions() == ["homeassistant/status", "homeassistant/+/pvopt/+/config"]
    assert link.on_message("homeassistant/status", b"online")
    assert len(sent) == len(link.messages) and all(json.loads(p) for _, p in sent)
    sent.clear()
    assert link.on_message("homeassistant/status", b"offline") and sent == []
    kept = link.messages[0][0]
    assert link.on_message(kept, b"{}") and sent == []  # our own config, echoed back
    gone = "homeassistant/sensor/pvopt/load7_power/config"
    assert link.on_message(gone, b'{"name": "Power"}')
    assert sent == [(gone, "")]
    assert link.on_message(gone, b"")  # the clearing itself: nothing more
    assert sent == [(gone, "")]
    assert not link.on_message("homeassistant/sensor/barn/load7_power/config", b"{}")
    assert not link.on_message("tic/SINSTS", b"12")


def test_discovery_off_subscribes_and_publishes_nothing() -> None:
    link = DiscoveryLink(site(discovery=False), lambda t, p: pytest.fail("published"))
    assert link.subscriptions() == [] and link.messages == []
    assert not link.on_message("homeassistant/status", b"online")
    dry = DiscoveryLink(site(), lambda t, p: pytest.fail("published"), dry_run=True)
    assert dry.subscriptions() == []


def test_config_section_defaults_and_checks(tmp_path: Path) -> None:
    ha = config.HomeAssistantConfig()
    assert (ha.discovery, ha.prefix, ha.node_id, ha.tic) == (False, "homeassistant", "pvopt", None)
    path = tmp_path / "pvopt.yml"
    path.write_text(
        "homeassistant: {discovery: true, node_id: 'my house'}\n"
        "equipment: [{type: VariablePowerEquipment, name: a, max_power: 100}]\n",
        encoding="utf-8",
    )
    with pytest.raises(config.ConfigError, match=r"homeassistant\.node_id"):
        config.load(path, environ={})


# -- lifetime totals ------------------------------------------------------------------------
def interval(end: int, import_wh: float, heater_wh: float, meter_s: float = 60.0) -> dict:
    grid = {"import_wh": import_wh, "export_wh": 0.0, "diverted_wh": 1.0, "meter_s": meter_s}
    return {"end": end, "grid": grid, "loads": {"heater": {"energy_wh": heater_wh}}}


def test_totals_count_each_interval_once_even_written_twice() -> None:
    t = Totals().add([interval(60, 1.0, 10.0), interval(120, 2.0, 20.0)])
    assert t.figures()["import_wh"] == 3.0
    # shutdown at 150: the open interval (end 180) is written early...
    t = t.add([interval(180, 0.5, 5.0)])
    assert t.figures()["load/heater"] == 35.0
    t = Totals.restore(json.loads(json.dumps(t.dump())))  # restart
    # ...and again, complete, after the restart: replaced, not added
    t = t.add([interval(180, 1.5, 15.0), interval(120, 99.0, 99.0), interval(240, 1.0, 0.0)])
    assert t.figures() == {
        "import_wh": 5.5,
        "export_wh": 0.0,
        "diverted_wh": 4.0,
        "meter_s": 240.0,
        "load/heater": 45.0,
    }


def test_peak_never_lets_a_figure_go_down() -> None:
    peak = Peak()
    assert peak.update({"a": 1.0}) == {"a": 1.0}
    assert peak.update({"a": 0.9999999, "b": 2.0}) == {"a": 1.0, "b": 2.0}


def test_annotate_adds_totals_and_instant_powers() -> None:
    doc: dict[str, Any] = {
        "grid_w": 100.0,
        "meter": {"stale": False},
        "loads": [{"name": "heater", "power_w": 300.0}, {"name": "pump", "power_w": 0.0}],
    }
    annotate(doc, {"import_wh": 5.04, "meter_s": 60.0, "load/heater": 7.0})
    assert doc["energy_total"] == {"import_wh": 5.0, "export_wh": 0.0, "diverted_wh": 0.0}
    assert [x["energy_total_wh"] for x in doc["loads"]] == [7.0, 0.0]
    assert (doc["surplus_w"], doc["diverted_w"]) == (-100.0, 200.0)
    annotate(doc, {"load/heater": 7.0})  # the meter never counted: unknown, not 0
    assert doc["energy_total"] == dict.fromkeys(("import_wh", "export_wh", "diverted_wh"))
    doc["meter"]["stale"] = True
    annotate(doc, {})
    assert doc["diverted_w"] is None


# -- the link in a real service, on a real broker ---------------------------------------------
def test_a_removed_load_loses_its_entities_at_the_next_start(
    broker: Mosquitto, tmp_path: Path
) -> None:
    heater = {
        "type": "TempDrivenVariablePowerEquipment",
        "name": "water_heater",
        "max_power": 2400,
        **{"temp_min": 45, "temp_eco": 50, "temp_sol_min": 55, "temp_max": 60},
    }
    rail = {"type": "VariablePowerEquipment", "name": "towel_rail", "max_power": 500}

    def service(equipment: list[dict[str, Any]]) -> Service:
        data = {
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "client_id": f"pvopt-{time.time_ns()}",
            },
            "state": {"path": str(tmp_path / "pvopt.db")},
            "homeassistant": {"discovery": True},
            "equipment": equipment,
        }
        path = tmp_path / "pvopt.yml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return Service(config.load(path, environ={}))

    def retained(prefix: str) -> dict[str, bytes]:
        """What a newcomer (Home Assistant starting) finds retained under `prefix`."""
        probe = Probe(broker.port, (f"{prefix}/#",))  # syncs: the retained ones are in
        probe.close()
        return {t: p for _, t, p in probe.messages if t.startswith(prefix) and p}

    power = "homeassistant/sensor/pvopt/load1_power/config"
    probe = Probe(broker.port, ("homeassistant/#",))
    svc = service([heater, rail])
    svc.start()
    try:
        n = len(svc.ha.messages)
        assert probe.wait(lambda: len(retained("homeassistant")) == n, 10)
        assert any("/load1_" in t for t in retained("homeassistant"))
        probe.publish("homeassistant/status", "online")  # Home Assistant restarted: all again
        assert probe.wait(lambda: sum(1 for _, t, _p in probe.messages if t == power) >= 2, 10)
        svc.stop()
        svc = service([heater])
        svc.start()
        assert probe.wait(lambda: probe.last(power) == b"", 10)  # cleared, not just forgotten
        # the other clears may still be on their way: wait for them, not just for the first
        assert probe.wait(lambda: len(retained("homeassistant")) == len(svc.ha.messages), 30)
        assert not any("/load1_" in t for t in retained("homeassistant"))
    finally:
        svc.stop()
        probe.close()


def test_shown_totals_are_what_a_crash_restores() -> None:
    """The status shows the store's totals, so a kill -9 never takes a figure back."""
    shown = DurableTotals({}, [])
    committed = shown.totals.add([interval(60, 1.0, 10.0)])
    open_at_checkpoint = [interval(120, 0.4, 4.0)]  # the ledger document of that checkpoint
    shown.commit(committed, open_at_checkpoint)
    assert shown.shown["import_wh"] == pytest.approx(1.4)
    shown.commit(committed.add([]), None)  # a transition's write: the open part stays
    assert shown.shown["import_wh"] == pytest.approx(1.4)
    # kill -9 now: the restart reads the same documents
    restarted = DurableTotals(json.loads(json.dumps(committed.dump())), open_at_checkpoint)
    assert restarted.shown == shown.shown


def test_the_heating_plan_shows_its_goal_and_reason_with_a_forecast() -> None:
    assert not [t for t, _ in discovery(site()) if "plan_" in t]  # no forecast: no plan
    cfg = site()
    fc = config.ForecastConfig(source="file", file="fc.csv")
    payloads = {t.split("/")[3]: p for t, p in discovery(cfg.model_copy(update={"forecast": fc}))}
    goal, reason = payloads["load0_plan_goal"], payloads["load0_plan_reason"]
    plan = {"goal_c": 53.4, "reason": "5.1 kWh of sun expected: heat to 53.4 °C"}
    assert render(goal["value_template"], value_json=status_doc(plan=plan)) == "53.4"
    assert render(reason["value_template"], value_json=status_doc(plan=plan)) == plan["reason"]
    today = {"goal_c": None, "reason": "no fresh forecast or no draws learnt: today's rule"}
    assert render(goal["value_template"], value_json=status_doc(plan=today)) == "None"
    assert "load1_plan_goal" not in payloads  # the pool pump has no tank


def test_with_a_tariff_todays_cost_and_savings_are_monetary_and_reset_at_midnight() -> None:
    assert not [t for t, _ in discovery(site()) if "_today/" in t and "tic_" not in t]  # no money
    tariff = TariffConfig(kind="base", prices={"base": 0.25}, export=0.04)
    payloads = {
        t.split("/")[3]: p for t, p in discovery(site().model_copy(update={"tariff": tariff}))
    }
    doc = status_doc()
    doc["money"] = {"since": "2026-06-15T00:00:00+02:00", "cost_eur": -0.412, "saved_eur": 1.87}
    for key, expected in (("cost_today", "-0.412"), ("solar_savings_today", "1.87")):
        p = payloads[key]
        assert (p["device_class"], p["unit_of_measurement"], p["state_class"]) == (
            "monetary",
            "EUR",
            "total",
        )
        assert render(p["value_template"], value_json=doc) == expected
        assert render(p["last_reset_value_template"], value_json=doc) == doc["money"]["since"]


def test_with_a_battery_its_power_soc_and_a_mode_select_that_sends_pvopts_command() -> None:
    assert not [t for t, _ in discovery(site()) if "battery" in t]  # no battery: none
    battery = BatteryConfig(power_topic="home/battery/power", soc_topic="home/battery/soc")
    payloads = {
        t.split("/")[3]: p for t, p in discovery(site().model_copy(update={"battery": battery}))
    }
    doc = status_doc()
    doc["battery"] = {"power_w": -850, "soc": 63.5, "mode": "loads_first"}
    assert render(payloads["battery_power"]["value_template"], value_json=doc) == "-850"
    soc = payloads["battery_soc"]
    assert (soc["device_class"], soc["unit_of_measurement"]) == ("battery", "%")
    assert render(soc["value_template"], value_json=doc) == "63.5"
    select = payloads["battery_mode"]
    assert select["options"] == ["battery_first", "loads_first", "soc_by"]
    assert render(select["value_template"], value_json=doc) == "loads_first"
    assert select["command_topic"] == CONTROL_TOPIC
    for option in select["options"]:
        cmd = parse_control_json(render(select["command_template"], value=option).encode())
        assert cmd == BatteryCommand(BatteryMode(option))
