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
