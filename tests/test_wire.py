"""The wire contract: command payloads, manual commands, grid-meter payloads, the status shape."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machines.commands import (
    Action,
    Command,
    apply,
    parse_control_json,
    parse_duration,
    parse_seed_control,
)
from machines.controller import Controller, UnknownLoad
from machines.loads import CommandError
from machines.meter import MeterValueError, parse_grid_payload
from machines.model import MeterSnapshot, Mode
from machines.policy import PolicyParams
from machines.status import build_status
from pvopt import config
from pvopt.kinds import dimmer_percent, dimmer_power
from tests.conftest import PARIS, T0


@pytest.mark.parametrize(
    ("power", "percent"), [(0, 0.0), (600, 100 / 3), (1200, 50.0), (2400, 100.0), (3000, 100.0)]
)
def test_phase_angle_percent_is_the_forks_formula(power: float, percent: float) -> None:
    assert dimmer_percent(power, 2400, "phase_angle") == pytest.approx(percent)
    assert dimmer_percent(power, 2400, "linear") == pytest.approx(min(power / 24, 100))


@given(st.floats(0, 2400), st.sampled_from(["phase_angle", "linear"]))
def test_dimmer_percent_round_trips(power: float, lin: str) -> None:
    assert dimmer_power(dimmer_percent(power, 2400, lin), 2400, lin) == pytest.approx(
        power, abs=1e-6
    )


def test_seed_topics_and_payloads(seed_house: config.Config, house: config.Config) -> None:
    heater, rail = seed_house.wiring()
    assert (heater.command_topic, heater.temperature_topic) == ("scr/0/in", "scr/0/temperature")
    assert (rail.command_topic, rail.temperature_topic) == ("scr/1/in", None)
    assert heater.payload(1200) == "50.0" and heater.payload(0) == "0.0"
    relays = [w for w in house.wiring() if w.spec.kind.value == "relay"]
    assert relays and all(w.command_topic.startswith("wifi_plug/") for w in relays)
    assert [w.payload(p) for w in relays[:1] for p in (0, 1000)] == ["0", "1"]
    assert not any(w.retain for w in relays)  # a rebooted plug must not find a stale `1`


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"ON", Command("force", 0)),
        (b" off\n", Command("off", 0)),
        (b"AUTO", Command("auto", 0)),
        (b"MIN;44", Command("set", 0, thresholds={"temp_min": 44.0})),
        (b"ECO;51.5", Command("set", 0, thresholds={"temp_eco": 51.5})),
        (b"MAX;62", Command("set", 0, thresholds={"temp_max": 62.0})),
    ],
)
def test_seed_control_words(payload: bytes, expected: Command) -> None:
    assert parse_seed_control(0, payload) == expected


@pytest.mark.parametrize("payload", [b"", b"BOOST", b"MIN", b"MIN;", b"MIN;nan", b"ON;1"])
def test_bad_seed_control_words(payload: bytes) -> None:
    with pytest.raises(CommandError):
        parse_seed_control(0, payload)


def test_control_json_round_trips_and_refuses_nonsense() -> None:
    cmd = Command("force", "water_heater", power_w=1000.0, duration_s=900.0)
    assert parse_control_json(cmd.to_json().encode()) == cmd
    assert parse_control_json(b'{"command": "unforce", "name": 1}') == Command("auto", 1)
    assert (
        Command("auto", 1).action is Action.AUTO
        and '"command": "auto"' in Command("auto", 1).to_json()
    )
    with pytest.raises(CommandError):
        Command("reboot", 1)
    for bad in (
        b'{"command": "force"}',
        b'{"command": "force", "name": true}',
        b'{"command": "force", "name": "x", "duration": -5}',
        b'{"command": "force", "name": "x", "power": "lots"}',
        b'{"command": "set", "name": "x"}',
        b'{"command": "set", "name": "x", "temp_min": 40, "colour": 1}',
    ):
        with pytest.raises(CommandError):
            parse_control_json(bad)


def test_apply_changes_the_machine_or_nothing(seed_house: config.Config) -> None:
    ctl = Controller(seed_house.specs(), PARIS, PolicyParams(), T0)
    apply(ctl, Command("force", "0", duration_s=3600), T0, meter_stale=False)
    heater = ctl.machines["water_heater"]
    assert (heater.state.value, heater.mode.value, heater.forced_until) == (
        "boost",
        "manual",
        T0 + 3600,
    )
    before = ctl.dump()
    with pytest.raises(UnknownLoad):
        apply(ctl, Command("off", "nope"), T0, meter_stale=False)
    with pytest.raises(CommandError):  # temp_min above temp_eco: refused as a whole
        apply(
            ctl,
            Command("set", 0, thresholds={"temp_min": 52, "temp_max": 70}),
            T0,
            meter_stale=False,
        )
    assert ctl.dump() == before
    apply(
        ctl, Command("set", 0, thresholds={"temp_eco": 52, "temp_min": 48}), T0, meter_stale=False
    )
    assert (heater.thresholds.temp_min, heater.thresholds.temp_eco) == (48, 52)
    apply(ctl, Command("auto", "water_heater"), T0, meter_stale=False)
    assert heater.mode is Mode.AUTO and heater.forced_until is None
    assert heater.state.value == "solar"  # AUTO ends the boost at once


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "1d", "0s", "-5m", "31" + "0" * 6 + "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(CommandError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("payload", "key", "invert", "watts"),
    [
        (b"-412.5", None, False, -412.5),
        (b"412", None, True, -412.0),
        (b'{"ENERGY": {"Power": 230}}', "ENERGY.Power", False, 230.0),
        (b'{"power": -80.5, "voltage": 231}', "power", False, -80.5),
    ],
)
def test_grid_payloads(payload: bytes, key: str | None, invert: bool, watts: float) -> None:
    assert parse_grid_payload(payload, key, invert) == watts


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (b"nan", None),
        (b"2e5", None),
        (b'{"ENERGY": {}}', "ENERGY.Power"),
        (b'{"power": true}', "power"),
        (b'{"power": [1]}', "power"),
        (b"{oops", "power"),
    ],
)
def test_bad_grid_payloads(payload: bytes, key: str | None) -> None:
    with pytest.raises(MeterValueError):
        parse_grid_payload(payload, key, False)


def test_status_keeps_the_seeds_keys(seed_house: config.Config) -> None:
    ctl = Controller(seed_house.specs(), PARIS, PolicyParams(), T0)
    ctl.tick(T0, MeterSnapshot(-412.0, T0))
    doc = json.loads(
        json.dumps(
            build_status(
                ctl, MeterSnapshot(-412.0, T0), 1.2, T0 + 5, policy="default", dry_run=False
            )
        )
    )
    assert doc["time"] == "2026-06-15T10:00:05+02:00" and doc["date_str"] == "2026-06-15 10:00:05"
    assert (doc["grid_w"], doc["power_available"], doc["power_consumed"]) == (-412.0, 412, 0)
    assert doc["meter"] == {"age_s": 1.2, "stale": False}
    heater = doc["loads"][0]
    assert set(heater) >= {
        "name",
        "id",
        "state",
        "mode",
        "reason",
        "power_w",
        "energy_today_wh",
        "forced_until",
        "temperature_c",
        "temp_min",
        "temp_eco",
        "temp_sol_min",
        "temp_max",
    }
    assert heater["power_w"] > 0 and heater["reason"] == "surplus"
    assert doc["equipments"][0] == {
        "name": "water_heater",
        "current_power": heater["power_w"],
        "energy": 0.0,
        "forced": False,
    }
    assert not math.isnan(doc["date"])
