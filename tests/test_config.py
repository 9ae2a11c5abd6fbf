"""Config loading: the seed's files, and a clear message (file, line, key) for every bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pvopt import config
from pvopt.cli import main
from tests.conftest import EXAMPLES, ROOT

SHARED = ROOT.parent / "shared" / "examples"
SEED_CONFIG = """---
# The seed's equipment_config.yml, as its users have it today: must load unchanged.
equipment:
  - type: TempDrivenVariablePowerEquipment
    id: 0
    name: "water_heater"
    max_power: 2400
    temp_min: 45
    temp_eco: 50
    temp_sol_min: 55
    temp_max: 60
"""
SEED_TEMPLATE = """---
equipment:
  - type: VariablePow
    name: "Water_Heater"
    max_power: 2000
    min_energy: 500
    period: 3600

  - type: TempDrivenVariablePowerEquipment
    name: "Heat_Pump"
    max_power: 3000
    temp_min: 19
    temp_eco: 20
    temp_sol_min: 21
    temp_max: 23
"""
GOOD = """equipment:
  - type: TempDrivenVariablePowerEquipment
    name: water_heater
    max_power: 2400
    temp_min: 45
    temp_eco: 50
    temp_sol_min: 55
    temp_max: 60
  - type: ConstantPowerEquipment
    name: pool_pump
    nominal_power: 1000
"""


def problems(text: str) -> list[config.Problem]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "house.yml", environ={})
    return info.value.problems


def test_seed_config_loads_unchanged() -> None:
    cfg = config.parse(SEED_CONFIG, "equipment_config.yml", environ={})
    (spec,) = cfg.specs()
    assert spec.name == "water_heater" and spec.id == 0 and spec.max_w == 2400
    assert spec.thresholds is not None and spec.thresholds.temp_sol_min == 55
    assert cfg.mqtt.host == "localhost" and cfg.regulation.policy == "default"


@pytest.mark.skipif(not SHARED.exists(), reason="developer checkout only")
def test_shared_seed_files() -> None:
    assert config.load(SHARED / "seed_equipment_config.yml", environ={}).equipment
    with pytest.raises(config.ConfigError) as info:
        config.load(SHARED / "seed_equipment_config_template.yml", environ={})
    assert "did you mean 'VariablePowerEquipment'" in str(info.value)


def test_misspelt_type_names_file_line_key_and_closest_type() -> None:
    (first, *_) = problems(SEED_TEMPLATE)
    assert (first.file, first.line, first.key) == ("house.yml", 3, "equipment[0].type")
    assert "'VariablePow'" in first.message
    assert "did you mean 'VariablePowerEquipment'" in first.message
    assert str(first).startswith("house.yml:3: equipment[0].type: unknown type")


@pytest.mark.parametrize(
    ("edit", "line", "key", "words"),
    [
        (("max_power: 2400", "max_power: -5"), 4, "equipment[0].max_power", "greater than 0"),
        (("max_power: 2400", "max_power: 200000"), 4, "equipment[0].max_power", "100000"),
        (("temp_eco: 50", "temp_eco: 40"), 6, "equipment[0].temp_eco", "above temp_min"),
        (("temp_max: 60", "temp_max: 52"), 8, "equipment[0].temp_max", "above temp_sol_min"),
        (("temp_sol_min: 55", "temp_sol_min: 48"), 7, "equipment[0].temp_sol_min", "temp_eco"),
        (
            ("temp_min: 45", "temp_min: 45\n    colour: red"),
            6,
            "equipment[0].colour",
            "unknown key",
        ),
        (("name: pool_pump", "name: water_heater"), 10, "equipment[1].name", "duplicate name"),
        (
            ("nominal_power: 1000", "nominal_power: 1000\n    id: 0"),
            12,
            "equipment[1].id",
            "duplicate id",
        ),
        (("nominal_power: 1000", "nominal_power: lots"), 11, "equipment[1].nominal_power", "lots"),
        (
            (
                "  - type: ConstantPowerEquipment\n",
                "  - type: ConstantPowerEquipment\n    min_on_s: -1\n",
            ),
            10,
            "equipment[1].min_on_s",
            "greater than or equal to 0",
        ),
    ],
)
def test_every_bad_field_is_located(edit: tuple[str, str], line: int, key: str, words: str) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    found = problems(text)
    assert any(p.line == line and p.key == key and words in p.message for p in found), found


def test_top_level_mistakes() -> None:
    assert "unknown key 'mqqt'" in str(problems(GOOD + "mqqt: {host: x}\n")[0])
    assert problems(GOOD + "mqtt: {port: 70000}\n")[0].key == "mqtt.port"
    assert problems("")[0].message.startswith("empty file")
    assert problems("equipment: []\n")[0].key == "equipment"
    bad_yaml = problems(GOOD + "  - {type: ConstantPowerEquipment, name: x\n")
    assert bad_yaml[0].line is not None and "not valid YAML" in bad_yaml[0].message
    assert "unknown time zone" in problems(GOOD + "site: {timezone: Mars/Base}\n")[0].message


def test_env_vars_override_the_file_and_are_named_in_errors() -> None:
    cfg = config.parse(
        GOOD + "mqtt: {host: fromfile}\n",
        environ={
            "MQTT_BROKER_HOST": "broker",
            "MQTT_BROKER_PORT": "1884",
            "INFLUXDB_HOST": "influx",
        },
    )
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("broker", 1884)
    assert cfg.influxdb is not None and cfg.influxdb.host == "influx"
    with pytest.raises(config.ConfigError, match="from env MQTT_BROKER_PORT"):
        config.parse(GOOD, environ={"MQTT_BROKER_PORT": "x"})


def test_priority_and_ids() -> None:
    text = GOOD.replace("nominal_power: 1000", "nominal_power: 1000\n    priority: -1")
    cfg = config.parse(text, environ={})
    assert [s.name for s in cfg.specs()] == ["pool_pump", "water_heater"]
    assert [s.id for s in cfg.specs()] == [1, 0]


def test_relative_state_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    f = tmp_path / "pvopt.yml"
    f.write_text(GOOD + "mqtt: {password: hunter2}\n")
    cfg = config.load(f, environ={})
    assert cfg.state.path == str(tmp_path / "pvopt.db")
    assert "hunter2" not in config.masked_dump(cfg)


def test_cli_config_check_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["config", "check", str(EXAMPLES / "house.yml")])
    assert ok.exit_code == 0, ok.output
    assert "water_heater" in ok.output and "pool_pump" in ok.output
    bad = tmp_path / "bad.yml"
    bad.write_text(SEED_TEMPLATE)
    out = runner.invoke(main, ["config", "check", str(bad)])
    assert out.exit_code == 1
    assert f"{bad}:3: equipment[0].type" in out.output
    assert "VariablePowerEquipment" in out.output
    missing = runner.invoke(main, ["config", "check", str(tmp_path / "nope.yml")])
    assert missing.exit_code == 1 and "cannot read" in missing.output


@pytest.mark.parametrize(
    ("schedule", "key", "words"),
    [
        (
            "{name: x, load: water_heater, window: '02:05-06:50', at: '16:00'}",
            "schedules[0]",
            "not both",
        ),
        (
            "{name: x, load: water_heater, window: '2:05-25:00'}",
            "schedules[0].window",
            "HH:MM-HH:MM",
        ),
        (
            "{name: x, load: water_heater, at: '16h00', action: boost-deficit}",
            "schedules[0].at",
            "HH:MM",
        ),
        (
            "{name: x, load: water_heater, window: '02:05-06:50', action: boost-deficit}",
            "schedules[0]",
            "goes with `at`",
        ),
        (
            "{name: x, load: water_heatr, window: '02:05-06:50'}",
            "schedules[0].load",
            "did you mean 'water_heater'",
        ),
        (
            "{name: x, load: water_heater, window: '02:05-06:50', days: [monday]}",
            "schedules[0].days[0]",
            "mon",
        ),
        ("{name: x, load: water_heater}", "schedules[0]", "needs `window`"),
    ],
)
def test_bad_schedules_are_located(schedule: str, key: str, words: str) -> None:
    found = problems(GOOD + f"schedules:\n  - {schedule}\n")
    assert len(found) == 1, found
    assert (found[0].line, found[0].key) == (13, key)
    assert words in found[0].message


# -- item 6: every broken config is refused with file, line, key and what is wrong --------------

BASE = """mqtt:
  host: broker.lan
  client_id: pvopt
meter:
  kind: linky
state:
  path: pvopt.db
equipment:
  - type: TempDrivenVariablePowerEquipment
    name: water_heater
    max_power: 2400
    temp_min: 45
    temp_eco: 50
    temp_sol_min: 55
    temp_max: 60
"""

# (what to replace in BASE or append, the dotted key, the line, words of the message)
BROKEN: list[tuple[tuple[str, str], str, int, str]] = [
    (("host: broker.lan", 'host: ""'), "mqtt.host", 2, "empty"),
    (("host: broker.lan", 'host: "  "'), "mqtt.host", 2, "empty"),
    (("host: broker.lan", "host: mqtt://broker.lan"), "mqtt.host", 2, "not a URL"),
    (("host: broker.lan", "host: broker.lan:1883"), "mqtt.host", 2, "`port`"),
    (("client_id: pvopt", 'client_id: ""'), "mqtt.client_id", 3, "empty"),
    (("path: pvopt.db", 'path: ""'), "state.path", 7, "empty"),
    (("kind: linky", "kind: linky\n  tariff_topic: ''"), "meter.tariff_topic", 6, "empty"),
    (
        ("kind: linky", "kind: linky\n  topics: {sinsts: 'tic/#'}"),
        "meter.topics.sinsts",
        6,
        "wildcard",
    ),
    (
        ("kind: linky", "kind: linky\n  topics: {sinsti: 'tic/+/SINSTI'}"),
        "meter.topics.sinsti",
        6,
        "wildcard",
    ),
    (
        ("kind: linky", "kind: linky\n  topics: {erqt: ' tic/ERQT'}"),
        "meter.topics.erqt",
        6,
        "spaces",
    ),
    (("kind: linky", "kind: linky\n  pv_topic: '$SYS/pv'"), "meter.pv_topic", 6, "$"),
    (
        ("kind: linky", "kind: linky\n  topics: {sinsti: tic/SINSTS}"),
        "meter.topics.sinsti",
        6,
        "also",
    ),
    (
        ("max_power: 2400", "max_power: 2400\n    command_topic: 'scr/#'"),
        "equipment[0].command_topic",
        12,
        "wildcard",
    ),
    (
        ("max_power: 2400", "max_power: 2400\n    temperature_topic: 'scr/+/temperature'"),
        "equipment[0].temperature_topic",
        12,
        "wildcard",
    ),
    (
        ("max_power: 2400", "max_power: 2400\n    command_topic: tic/SINSTS"),
        "equipment[0].command_topic",
        12,
        "also",
    ),
    (
        ("client_id: pvopt", "client_id: pvopt\n  tls: {ca_file: missing-ca.pem}"),
        "mqtt.tls.ca_file",
        4,
        "no such file",
    ),
    (
        ("client_id: pvopt", "client_id: pvopt\n  tls: {ca_file: not-a-cert.pem}"),
        "mqtt.tls.ca_file",
        4,
        "not a PEM certificate",
    ),
    (
        ("client_id: pvopt", "client_id: pvopt\n  tls: {key_file: key.pem}"),
        "mqtt.tls.key_file",
        4,
        "cert_file",
    ),
    (("client_id: pvopt", "client_id: pvopt\n  username: ''"), "mqtt.username", 4, "empty"),
    (("path: pvopt.db", "path: no/such/folder/pvopt.db"), "state.path", 7, "folder"),
    (("path: pvopt.db", "path: ."), "state.path", 7, "folder, not a file"),
    (("kind: linky", "kind: linky\n  stale_after_s: .nan"), "meter.stale_after_s", 6, "finite"),
    (
        ("path: pvopt.db", "path: pvopt.db\ninfluxdb: {database: ''}"),
        "influxdb.database",
        8,
        "empty",
    ),
    (("path: pvopt.db", "path: pvopt.db\ninfluxdb: {host: ''}"), "influxdb.host", 8, "empty"),
    (
        ("path: pvopt.db", "path: pvopt.db\ninfluxdb: {outbox_max_days: .inf}"),
        "influxdb.outbox_max_days",
        8,
        "finite",
    ),
    (
        ("path: pvopt.db", "path: pvopt.db\ninfluxdb: {retention_policy: ''}"),
        "influxdb.retention_policy",
        8,
        "empty",
    ),
    (
        ("", "schedules:\n  - {name: hc, load: water_heater, window: '10:00-10:00'}"),
        "schedules[0].window",
        17,
        "zero length",
    ),
    (
        ("", "schedules:\n  - {name: hc, load: water_heater, window: '22:00-06:00', days: []}"),
        "schedules[0].days",
        17,
        "never",
    ),
    (
        ("", "schedules:\n  - {name: ' ', load: water_heater, window: '22:00-06:00'}"),
        "schedules[0].name",
        17,
        "empty",
    ),
    (
        ("host: broker.lan\n  client_id: pvopt", "host: broker.lan\n  client_id: pvopt\n  host: b"),
        "mqtt.host",
        4,
        "duplicate key",
    ),
]


@pytest.mark.parametrize(("edit", "key", "line", "words"), BROKEN)
def test_every_class_of_broken_config_is_refused_the_same_by_check_and_run(
    tmp_path: Path, edit: tuple[str, str], key: str, line: int, words: str
) -> None:
    """Guards item 6: these passed or crashed with a traceback (empty values, wildcards in
    single-value or published topics, TLS files missing or unreadable, a zero-length window,
    a topic used twice, NaN/inf, duplicate YAML keys); `pvopt config check` and `pvopt run`
    now refuse each with the same line: file, line, key, what is wrong."""
    (tmp_path / "not-a-cert.pem").write_text("hello\n", encoding="utf-8")
    (tmp_path / "key.pem").write_text("hello\n", encoding="utf-8")
    old, new = edit
    text = BASE.replace(old, new, 1) if old else BASE + new + "\n"
    path = tmp_path / "pvopt.yml"
    path.write_text(text, encoding="utf-8")
    runner = CliRunner()
    outputs = []
    for args in (["config", "check", str(path)], ["run", "--config", str(path)]):
        out = runner.invoke(main, args)
        assert out.exit_code == 1, (args, out.output)
        assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
        outputs.append(out.output)
    assert outputs[0] == outputs[1]
    assert f"{path}:{line}: {key}: " in outputs[0], outputs[0]
    assert words in outputs[0], outputs[0]
    assert "Traceback" not in outputs[0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"equipment:\n  - name: caf\xe9\n", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        (b"equipment: []\x00\n", "not a text file"),
        (b"\xff\xfe" + "equipment: []".encode("utf-16-le"), "not UTF-8"),
    ],
)
def test_a_file_that_is_not_utf8_text_is_refused_with_its_line(
    tmp_path: Path, content: bytes, words: str
) -> None:
    """Guards item 6: a Latin-1 or binary file raised UnicodeDecodeError or a YAML reader
    error with a traceback; now one line says which file, where, and what to do."""
    path = tmp_path / "pvopt.yml"
    path.write_bytes(content)
    for args in (["config", "check", str(path)], ["run", "--config", str(path)]):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
        assert str(path) in out.output and words in out.output, out.output


# -- broken configs a new user tried (issue 22): refused with file, line and key ----------------

RAIL = "  - {type: VariablePowerEquipment, name: rail, max_power: 500}\n"


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("a: &a [*a]\nequipment:\n" + RAIL, 1, "a[0]"),
        ("equipment: &x [*x]\n", 1, "equipment[0]"),
        ("equipment:\n" + RAIL + "mqtt: &m {tls: *m}\n", 3, "mqtt.tls"),
    ],
)
def test_a_yaml_alias_that_contains_itself_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    """It ended in a RecursionError traceback."""
    path = tmp_path / "pvopt.yml"
    path.write_text(text, encoding="utf-8")
    out = CliRunner().invoke(main, ["config", "check", str(path)])
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert f"{path}:{line}: {key}: " in out.output and "loop" in out.output, out.output


def test_a_yaml_alias_that_does_not_contain_itself_still_works() -> None:
    text = "equipment:\n  - &rail {type: VariablePowerEquipment, name: rail, max_power: 500}\n"
    cfg = config.parse(text + "  - {<<: *rail, name: rail2}\n", environ={})
    assert [eq.name for eq in cfg.equipment] == ["rail", "rail2"]


def test_two_schedules_with_one_name_are_refused_naming_both() -> None:
    text = (
        "equipment:\n" + RAIL + "schedules:\n"
        "  - {name: night, load: rail, window: '22:00-06:00'}\n"
        "  - {name: night, load: rail, window: '12:00-13:00'}\n"
    )
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, source="pvopt.yml", environ={})
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (5, "schedules[1].name")
    assert "'night'" in problem.message and "schedules[0]" in problem.message


@pytest.mark.parametrize(
    ("edit", "line", "key"),
    [
        (("max_power: 2400", "max_power: true"), 4, "equipment[0].max_power"),
        (("temp_min: 45", "temp_min: yes"), 5, "equipment[0].temp_min"),
        (("nominal_power: 1000", "nominal_power: false"), 11, "equipment[1].nominal_power"),
        (("equipment:", "mqtt: {port: true}\nequipment:"), 1, "mqtt.port"),
        (("equipment:", "regulation: {margin_w: on}\nequipment:"), 1, "regulation.margin_w"),
    ],
)
def test_a_boolean_where_a_number_is_expected_is_refused(
    edit: tuple[str, str], line: int, key: str
) -> None:
    """YAML's true/yes/on is not 1 W (nor 1 °C, nor port 1): refused, with file, line and key."""
    (problem,) = problems(GOOD.replace(*edit))
    assert (problem.file, problem.line, problem.key) == ("house.yml", line, key)
    assert "a number" in problem.message and "true/false" in problem.message


def test_numbers_from_env_vars_still_arrive_as_text() -> None:
    cfg = config.parse(GOOD, "house.yml", environ={"MQTT_BROKER_PORT": "1884"})
    assert cfg.mqtt.port == 1884
