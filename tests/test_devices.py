"""Device presets speak each vendor's documented topics and payloads (docs/devices.md)."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pvopt import config
from pvopt.cli import main
from pvopt.config import ConfigError
from pvopt.devices import DevicePreset, UnknownPreset, json_path, presets, resolve
from pvopt.devices.link import DeviceLink
from pvopt.kinds import DeviceConfig

SHIPPED = ("esphome", "seed", "shelly-gen1", "shelly-gen2", "tasmota", "zigbee2mqtt")


def test_every_protocol_of_the_issue_is_shipped() -> None:
    assert presets().names() == SHIPPED


def test_seed_preset_speaks_todays_payloads_on_the_loads_own_topic() -> None:
    seed = resolve("seed", "scr/0/in")
    assert seed.level(37.25, 900.0) == ("scr/0/in", "37.2")  # one decimal, as the seed
    assert resolve("seed", "wifi_plug/1/in").switch(True) == ("wifi_plug/1/in", "1")
    assert resolve("seed", "wifi_plug/1/in").switch(False) == ("wifi_plug/1/in", "0")


def test_tasmota_relay_numbers_power_from_one_and_dimmer_takes_an_integer() -> None:
    t = resolve("tasmota", "sonoff-boiler", channel=1)
    assert t.switch(True) == ("cmnd/sonoff-boiler/POWER2", "ON")
    assert t.level(33.3, 0.0) == ("cmnd/sonoff-boiler/Dimmer", "33")
    assert t.availability_topic() == "tele/sonoff-boiler/LWT"
    assert t.read_online("Offline") is False and t.read_online("Online") is True
    sensor = '{"Time":"2024-01-01T12:00:00","ENERGY":{"Total":1.2,"Power":812,"Voltage":231}}'
    assert t.read_power(False, sensor) == 812.0
    assert t.read_on(True, '{"POWER":"ON","Dimmer":40}') is True


def test_shelly_gen1_relay_and_light() -> None:
    s = resolve("shelly-gen1", "shelly1pm-84CCA8A11A2B")
    assert s.switch(False) == ("shellies/shelly1pm-84CCA8A11A2B/relay/0/command", "off")
    assert s.state_topic(False) == "shellies/shelly1pm-84CCA8A11A2B/relay/0"
    assert s.read_on(False, "on") is True
    assert s.read_power(False, "1723.45") == 1723.45
    topic, payload = s.level(60.0, 0.0)
    assert topic == "shellies/shelly1pm-84CCA8A11A2B/light/0/set"
    assert json.loads(payload) == {"turn": "on", "brightness": 60}
    assert json.loads(s.level(0.0, 0.0)[1]) == {"turn": "off"}
    assert s.read_online("false") is False


def test_shelly_gen2_rpc_is_json_with_our_source_and_status_is_read_by_path() -> None:
    s = resolve("shelly-gen2", "shellyplus1pm-a8032ab12345", src="pvopt-home")
    topic, payload = s.switch(True)
    assert topic == "shellyplus1pm-a8032ab12345/rpc"
    rpc = json.loads(payload)
    assert rpc["src"] == "pvopt-home" and rpc["method"] == "Switch.Set"
    assert rpc["params"] == {"id": 0, "on": True}
    light = json.loads(s.level(42.0, 0.0)[1])
    assert light["method"] == "Light.Set" and light["params"]["brightness"] == 42
    status = '{"id":0,"source":"MQTT","output":true,"apower":1998.4,"aenergy":{"total":12.3}}'
    assert s.state_topic(False) == "shellyplus1pm-a8032ab12345/status/switch:0"
    assert s.read_on(False, status) is True
    assert s.read_power(False, status) == 1998.4
    assert s.read_online("true") is True


def test_esphome_brightness_is_0_to_255_and_status_is_the_nodes() -> None:
    e = resolve("esphome", "boiler-node/light/heater")
    topic, payload = e.level(100.0, 0.0)
    assert topic == "boiler-node/light/heater/command"
    assert json.loads(payload) == {"state": "ON", "brightness": 255}
    assert json.loads(e.level(0.0, 0.0)[1]) == {"state": "OFF"}
    assert e.availability_topic() == "boiler-node/status"
    assert e.read_on(True, '{"state":"OFF","brightness":0}') is False
    assert e.read_level('{"state":"ON","brightness":51}') == pytest.approx(20.0)


def test_zigbee2mqtt_brightness_is_0_to_254_and_both_availability_forms_read() -> None:
    z = resolve("zigbee2mqtt", "garage/plug")
    assert z.switch(True) == ("zigbee2mqtt/garage/plug/set", '{"state": "ON"}')
    assert json.loads(z.level(50.0, 0.0)[1])["brightness"] == 127
    assert z.read_power(False, '{"state":"ON","power":612,"linkquality":120}') == 612.0
    assert z.read_online('{"state":"offline"}') is False  # 2.0
    assert z.read_online("online") is True  # before 2.0
    assert z.read_online("rebooting") is None


def test_a_custom_device_is_a_few_lines_of_yaml() -> None:
    custom = DevicePreset.model_validate(
        yaml.safe_load(
            """
            name: custom
            title: my router
            relay:
              command:
                topic: "home/{topic}/set"
                payload_on: '{"on": {on}}'
                payload_off: '{"on": {on}}'

              power: {topic: "home/{topic}", path: load.watts}
            """
        )
    )
    d = resolve(custom, "boiler")
    assert d.switch(True) == ("home/boiler/set", '{"on": true}')
    assert d.read_power(False, '{"load": {"watts": "15.5"}}') == 15.5
    assert d.read_power(False, '{"load": {}}') is None


def test_a_preset_that_cannot_drive_a_kind_says_so() -> None:
    custom = DevicePreset(name="custom", title="plug only")
    with pytest.raises(ValueError, match="cannot drive a dimmer"):
        resolve(custom, "x").level(10.0, 0.0)


def test_json_path_reads_nested_values_and_refuses_objects() -> None:
    assert json_path('{"a": {"b": false}}', "a.b") == "false"
    assert json_path('{"a": {"b": 1}}', "a") is None
    assert json_path("  ON \n", None) == "ON"


def test_unknown_preset_names_the_closest() -> None:
    with pytest.raises(UnknownPreset, match="did you mean 'shelly-gen2'"):
        resolve("shelly-gen3", "x")


def test_devices_command_lists_presets_and_shows_one() -> None:
    runner = CliRunner()
    listing = runner.invoke(main, ["devices"])
    assert listing.exit_code == 0
    for name in (*SHIPPED, "custom"):
        assert name in listing.output
    one = runner.invoke(main, ["devices", "tasmota", "--topic", "boiler"], terminal_width=200)
    assert one.exit_code == 0 and "cmnd/boiler/POWER1" in one.output
    bad = runner.invoke(main, ["devices", "shely"])
    assert bad.exit_code == 1 and "did you mean" in bad.output


HOUSE = """
mqtt: {client_id: pvopt-home}
equipment:
  - name: boiler
    type: VariablePowerEquipment
    max_power: 2400
    device: {preset: shelly-gen2, topic: shellyplus1pm-a8032ab12345}
  - name: pump
    type: ConstantPowerEquipment
    nominal_power: 800
    device: {preset: tasmota, topic: sonoff-pump, channel: 1}
  - name: rail
    type: VariablePowerEquipment
    max_power: 1000
"""


def test_a_load_speaks_its_devices_preset_and_the_seed_stays_the_default() -> None:
    boiler, pump, rail = config.parse(HOUSE, "house.yml", environ={}).wiring()
    assert boiler.command_topic == "shellyplus1pm-a8032ab12345/rpc"
    rpc = json.loads(boiler.payload(1200.0))
    assert rpc["method"] == "Light.Set" and rpc["src"] == "pvopt-home"  # replies come to us
    assert rpc["params"] == {"id": 0, "on": True, "brightness": 50}  # phase angle: 1/2 P at 50 %
    assert boiler.power_of(boiler.payload(1200.0)) == pytest.approx(1200.0)
    assert boiler.topics.reports == (
        "shellyplus1pm-a8032ab12345/status/light:0",
        "shellyplus1pm-a8032ab12345/online",
    )
    assert (pump.command_topic, pump.payload(800), pump.payload(0)) == (
        "cmnd/sonoff-pump/POWER2",
        "ON",
        "OFF",
    )
    assert pump.power_of("ON") == 800 and pump.power_of("OFF") == 0
    assert (rail.command_topic, rail.payload(500.0)) == ("scr/2/in", "50.0")  # the seed's
    assert rail.topics.reports == ()


def test_reports_are_read_for_the_load_they_belong_to() -> None:
    boiler, pump, _ = config.parse(HOUSE, "house.yml", environ={}).wiring()
    status = '{"id": 0, "source": "mqtt", "output": true, "brightness": 50, "apower": 1187.5}'
    got = boiler.read("shellyplus1pm-a8032ab12345/status/light:0", status)
    assert (got.on, got.level_percent, got.power_w) == (True, 50.0, 1187.5)
    assert boiler.read("shellyplus1pm-a8032ab12345/online", "false").online is False
    sensor = '{"ENERGY": {"Power": -3}}'  # a negative reading is no measurement
    assert pump.read("tele/sonoff-pump/SENSOR", sensor).power_w is None
    assert pump.read("stat/sonoff-pump/POWER2", "ON").on is True


def test_every_preset_reads_back_what_it_writes() -> None:
    for name in presets().names():
        for dimmer, power in ((True, 700.0), (True, 0.0), (False, 1000.0), (False, 0.0)):
            link = DeviceConfig(preset=name, topic="dev/x").link("scr/0/in", dimmer, "linear", "p")
            assert link.decode(link.encode(power, 1000.0), 1000.0) == pytest.approx(
                power, abs=5.0
            ), (name, dimmer, power)


@pytest.mark.parametrize(
    ("device", "says"),
    [
        ("{preset: shely-gen2, topic: a}", "did you mean 'shelly-gen2'"),
        ("{preset: tasmota}", "preset tasmota needs topic"),
        ("{preset: custom, topic: a}", "needs a relay: or a dimmer: section"),
        (
            "{preset: tasmota, topic: a, relay: {command: {topic: x, payload_on: 1, "
            "payload_off: 0}}}",
            "only for preset: custom",
        ),
    ],
)
def test_a_wrong_device_says_which_load_and_what(device: str, says: str) -> None:
    text = (
        "equipment:\n  - name: pump\n    type: ConstantPowerEquipment\n"
        f"    nominal_power: 800\n    device: {device}\n"
    )
    with pytest.raises(ConfigError) as exc:
        config.parse(text, "house.yml", environ={})
    message = str(exc.value)
    assert says in message and "house.yml" in message and "equipment[0].device" in message


def test_command_topic_belongs_to_the_seed_preset() -> None:
    text = HOUSE.replace("channel: 1}", "channel: 1}\n    command_topic: my/plug")
    with pytest.raises(ConfigError, match="command_topic is for the seed"):
        config.parse(text, "house.yml", environ={})


def test_config_check_shows_each_loads_resolved_topics_and_payloads(tmp_path) -> None:
    path = tmp_path / "house.yml"
    path.write_text(HOUSE)
    out = CliRunner().invoke(main, ["config", "check", str(path)])
    assert out.exit_code == 0, out.output
    shown = yaml.safe_load(
        out.output.split("# what pvopt publishes")[1].split("\n", 1)[1].rsplit("ok", 1)[0]
    )
    pump = next(e for e in shown if e["load"] == "pump")
    assert pump == {
        "load": "pump",
        "preset": "tasmota",
        "command": "cmnd/sonoff-pump/POWER2",
        "full": "ON",
        "off": "OFF",
        "reads": ["stat/sonoff-pump/POWER2", "tele/sonoff-pump/SENSOR", "tele/sonoff-pump/LWT"],
    }


def test_a_custom_device_without_the_loads_verb_is_refused() -> None:
    text = HOUSE.replace(
        "{preset: tasmota, topic: sonoff-pump, channel: 1}",
        "{preset: custom, topic: x, dimmer: {command: {topic: 'x/set', payload: '{percent}'}}}",
    )
    with pytest.raises(
        ConfigError, match=r"equipment\[1\]\.device\.preset: preset custom has no relay"
    ):
        config.parse(text, "house.yml", environ={})


# the custom example of docs/devices.md
DOCS_CUSTOM = DevicePreset.model_validate(
    yaml.safe_load(
        """
name: custom
title: my router
relay:
  command: {topic: "home/{topic}/set", payload_on: '{"on": {on}}', payload_off: '{"on": {on}}'}
  state: {topic: "home/{topic}", path: "on", payload_on: "true", payload_off: "false"}
  power: {topic: "home/{topic}", path: load.watts}
availability: {topic: "home/{topic}/lwt", payload_available: up, payload_not_available: down}
"""
    )
)


def test_the_device_end_merges_the_reports_of_one_topic_into_one_message() -> None:
    gen2 = resolve("shelly-gen2", "shellyplus1pm-a8032ab12345")
    [(topic, payload)] = gen2.device_state(False, True, 100.0, 1234.5)
    assert topic == "shellyplus1pm-a8032ab12345/status/switch:0"
    assert json.loads(payload) == {"output": True, "apower": 1234.5}
    z2m = resolve("zigbee2mqtt", "garage/plug")
    assert z2m.device_state(False, True, 100.0, 1234.0) == [
        ("zigbee2mqtt/garage/plug", '{"state":"ON","power":1234}')
    ]
    assert z2m.device_availability(False) == (
        "zigbee2mqtt/garage/plug/availability",
        '{"state":"offline"}',
    )
    tasmota = resolve("tasmota", "sonoff-pump")
    assert tasmota.device_state(False, False, 0.0, 0.0) == [
        ("stat/sonoff-pump/POWER1", "OFF"),
        ("tele/sonoff-pump/SENSOR", '{"ENERGY":{"Power":0}}'),
    ]
    # a power refresh: only the power report's topic, with what the device sends beside it
    assert tasmota.device_state(False, True, 100.0, 801.0, kinds=("power",)) == [
        ("tele/sonoff-pump/SENSOR", '{"ENERGY":{"Power":801}}')
    ]
    gen1 = resolve("shelly-gen1", "shellydimmer2-1")
    assert gen1.device_state(True, False, 0.0, 0.0) == [
        ("shellies/shellydimmer2-1/light/0/status", '{"ison":false,"brightness":0}'),
        ("shellies/shellydimmer2-1/light/0/power", "0"),
    ]
    assert resolve("shelly-gen1", "shelly1pm-1").device_state(False, False, 0.0, 0.0)[0] == (
        "shellies/shelly1pm-1/relay/0",
        "off",
    )
    assert resolve("seed", "scr/0/in").device_state(True, True, 50.0, 500.0) == []
    assert resolve("seed", "scr/0/in").device_availability(True) is None


def _reads(link, messages) -> dict[str, object]:
    got: dict[str, object] = {}
    for topic, payload in messages:
        assert topic in link.report_topics(), topic
        report = link.read(topic, payload)
        for key in ("online", "on", "level_percent", "power_w"):
            if getattr(report, key) is not None:
                got[key] = getattr(report, key)
    return got


ROUND_TRIP = [
    (name, dimmer)
    for name in (*SHIPPED, "custom")
    for dimmer in (False, True)
    if getattr(
        DOCS_CUSTOM if name == "custom" else presets().get(name), "dimmer" if dimmer else "relay"
    )
]


@pytest.mark.parametrize(("name", "dimmer"), ROUND_TRIP)
@settings(max_examples=60, deadline=None)
@given(
    on=st.booleans(),
    percent=st.floats(0.0, 100.0),
    power=st.floats(0.0, 99_999.0),
    online=st.booleans(),
)
def test_what_the_device_end_publishes_reads_back(
    name: str, dimmer: bool, on: bool, percent: float, power: float, online: bool
) -> None:
    preset = DOCS_CUSTOM if name == "custom" else presets().get(name)
    wiring = resolve(preset, "dev/x", channel=1, src="pvopt-test")
    link = DeviceLink(wiring, dimmer)
    verbs = preset.dimmer if dimmer else preset.relay
    got = _reads(link, link.device_state(on, percent, power))
    if verbs.state is not None:
        assert got.pop("on") is on
        if dimmer and verbs.state.level_path is not None:
            step = 100.0 / verbs.command.scale
            assert got.pop("level_percent") == pytest.approx(percent, abs=step / 2 + 1e-9)
    if verbs.power is not None:
        assert got.pop("power_w") == pytest.approx(power, abs=0.051)  # one decimal
    assert got == {}, "nothing read that was not published"
    message = link.device_availability(online)
    if preset.availability is None:
        assert message is None
    else:
        assert _reads(link, [message]) == {"online": online}
