"""Beside a home battery, who fills first (machines/battery.py, docs/battery.md): the grid each
mode regulates on, its reasons, and what the loads and the battery get in the simulator."""

from __future__ import annotations

import json
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from machines.battery import (
    BATTERY_FIRST,
    DISCHARGING,
    SignCheck,
    battery_view,
    check_sign,
    chosen_mode,
    resolved_grid,
)
from machines.commands import BatteryCommand, apply, parse_control_json
from machines.controller import Controller
from machines.loads import CommandError
from machines.model import BatteryMode, BatteryPlan, MeterSnapshot, State
from machines.policy import PolicyParams
from pvopt import config
from pvsim.simulator import simulate
from pvsim.traces import window
from tests.conftest import EXAMPLES

PARIS = ZoneInfo("Europe/Paris")
NOON = 1_718_445_600.0  # 2024-06-15 12:00 Paris
PLAN = BatteryPlan(BatteryMode.BATTERY_FIRST, 90.0, 20.0, 15 * 3600, 10.0, 50.0, False)


def snap(grid_w: float, battery_w: float | None, soc: float | None = 50.0) -> MeterSnapshot:
    return MeterSnapshot(grid_w, NOON, battery_w=battery_w, battery_soc=soc)


def test_battery_first_leaves_the_loads_only_what_the_battery_cannot_take() -> None:
    view = battery_view(snap(-10.0, 1500.0), PLAN, NOON, PARIS)
    assert (view.grid_w, view.why) == (-10.0, BATTERY_FIRST)
    full = battery_view(snap(-10.0, 1500.0, soc=92.0), PLAN, NOON, PARIS)  # past soc_target
    assert (full.grid_w, full.why) == (-1510.0, None)


def test_loads_first_counts_the_charge_as_surplus() -> None:
    plan = replace(PLAN, mode=BatteryMode.LOADS_FIRST)
    assert battery_view(snap(-10.0, 1500.0), plan, NOON, PARIS).grid_w == -1510.0


def test_the_residual_is_left_to_the_battery_until_it_is_full() -> None:
    """With its charge counting as surplus the loads aim `residual_w` short of it: a cloud
    first takes the battery's charge, not a discharge paid by the loads."""
    plan = replace(PLAN, mode=BatteryMode.LOADS_FIRST, residual_w=150.0)
    assert battery_view(snap(-10.0, 1500.0), plan, NOON, PARIS).grid_w == -1360.0
    assert battery_view(snap(-10.0, 0.0, soc=None), plan, NOON, PARIS).grid_w == 140.0
    full = battery_view(snap(-10.0, 0.0, soc=100.0), plan, NOON, PARIS)
    assert full.grid_w == -10.0  # a full battery takes nothing: the residual would be export
    assert (
        battery_view(
            snap(-10.0, 1500.0), replace(plan, mode=BatteryMode.BATTERY_FIRST), NOON, PARIS
        ).grid_w
        == -10.0
    )  # below soc_target: the meter's grid


def test_soc_by_hands_over_to_the_loads_at_its_deadline() -> None:
    plan = replace(PLAN, mode=BatteryMode.SOC_BY)
    assert battery_view(snap(0.0, 1500.0), plan, NOON, PARIS).grid_w == 0.0
    assert battery_view(snap(0.0, 1500.0), plan, NOON + 3 * 3600, PARIS).grid_w == -1500.0


@pytest.mark.parametrize("mode", list(BatteryMode))
def test_a_discharge_counts_as_import_in_every_mode(mode: BatteryMode) -> None:
    """The inverter covers the loads from the battery and the grid reads 0: the policy must
    see the discharge as import and shed it; within `tolerance_w`, it is not a discharge."""
    plan = replace(PLAN, mode=mode)
    view = battery_view(snap(5.0, -800.0), plan, NOON, PARIS)
    assert (view.grid_w, view.why) == (805.0, DISCHARGING)
    assert battery_view(snap(5.0, -30.0), plan, NOON, PARIS).why != DISCHARGING


def test_without_a_battery_reading_the_meter_is_as_it_reads() -> None:
    view = battery_view(snap(-300.0, None), PLAN, NOON, PARIS)
    assert (view.grid_w, view.why) == (-300.0, None)


def test_a_linky_s_moves_with_p_beside_the_battery() -> None:
    s = replace(snap(-10.0, 1500.0, soc=95.0), apparent_va=-50.0, reactive_var=40.0)
    seen = battery_view(s, PLAN, NOON, PARIS).applied(s)
    assert seen.grid_w == -1510.0
    assert seen.apparent_va == pytest.approx(-((1510.0**2 + 40.0**2) ** 0.5))


@pytest.fixture(scope="module")
def afternoon(broken_clouds):
    return window(broken_clouds, 11 * 3600, 2 * 3600)  # 13:00-15:00 Paris: a battery to fill


def _mode(cfg: config.Config, mode: BatteryMode) -> config.Config:
    assert cfg.battery is not None
    return cfg.model_copy(update={"battery": cfg.battery.model_copy(update={"mode": mode})})


def test_the_modes_share_the_surplus_as_they_say(afternoon) -> None:
    """On two hours of broken clouds beside the example's 5 kWh battery: loads first, the
    loads take within 3 points of the same house without a battery and the battery less; the
    battery first, it fills more and the loads less; in both the battery pays for at most 2 %
    of the loads' energy."""
    cfg = config.load(EXAMPLES / "battery.yml", environ={})
    plain = simulate(afternoon, cfg.model_copy(update={"battery": None})).kpis
    loads = simulate(afternoon, _mode(cfg, BatteryMode.LOADS_FIRST)).kpis
    battery = simulate(afternoon, _mode(cfg, BatteryMode.BATTERY_FIRST)).kpis
    assert loads["capture"] >= plain["capture"] - 0.03
    assert battery["battery_charge_wh"] > loads["battery_charge_wh"] + 500
    assert battery["diverted_wh"] < loads["diverted_wh"] - 500
    for k in (loads, battery):
        assert k["battery_to_loads_wh"] <= 0.02 * k["loads_wh"]


@pytest.mark.parametrize("mode", [m.value for m in BatteryMode])
def test_the_battery_mode_command_reads_back_and_applies(mode: str) -> None:
    cmd = parse_control_json(json.dumps({"command": "battery_mode", "mode": mode}).encode())
    assert cmd == BatteryCommand(BatteryMode(mode))
    assert parse_control_json(cmd.to_json().encode()) == cmd
    ctl = Controller([], PARIS, PolicyParams(), NOON, battery=PLAN)
    assert apply(ctl, cmd, NOON, meter_stale=False) == f"battery: {mode}"
    assert ctl.battery is not None and ctl.battery.mode is BatteryMode(mode)
    assert ctl.battery_doc() == {"mode": mode, "config_mode": "battery_first"}


@pytest.mark.parametrize(
    "body",
    [
        {"command": "battery_mode", "mode": "drain_it"},
        {"command": "battery_mode"},
        {"command": "battery_mode", "mode": "loads_first", "name": 0},
    ],
)
def test_a_bad_battery_mode_command_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(CommandError, match="battery_mode"):
        parse_control_json(json.dumps(body).encode())


def test_without_a_battery_the_command_is_refused_and_nothing_is_kept() -> None:
    ctl = Controller([], PARIS, PolicyParams(), NOON)
    with pytest.raises(CommandError, match="no battery"):
        apply(ctl, BatteryCommand(BatteryMode.LOADS_FIRST), NOON, meter_stale=False)
    assert ctl.battery is None and ctl.battery_doc() is None


def test_a_chosen_mode_holds_until_the_file_changes_the_configs() -> None:
    saved = {"mode": "loads_first", "config_mode": "battery_first"}
    assert chosen_mode(PLAN, saved).mode is BatteryMode.LOADS_FIRST
    edited = replace(PLAN, mode=BatteryMode.SOC_BY)  # the file says soc_by now
    assert chosen_mode(edited, saved) == edited
    assert chosen_mode(PLAN, {}) == PLAN  # nothing chosen yet
    assert chosen_mode(PLAN, {**saved, "mode": "drain_it"}) == PLAN  # a damaged document


@pytest.mark.parametrize(
    ("battery_w", "allowed", "temp_c", "heats"),
    [
        (-1500.0, False, 50.0, False),  # discharging: the boost waits, the battery is kept
        (-1500.0, True, 50.0, True),  # forced_from_battery: the user allows it
        (-1500.0, False, 40.0, False),  # below temp_min too: the grid's, not the battery's
        (-1500.0, "floor", 40.0, True),  # cold_tank_from_battery: below temp_min it heats ...
        (-1500.0, "floor", 50.0, False),  # ... above it, it waits
        (-30.0, False, 50.0, True),  # within tolerance_w: not discharging
        (800.0, False, 50.0, True),  # charging: the boost takes the grid (and the battery's sun)
    ],
)
def test_forced_heating_waits_while_the_battery_discharges(
    seed_house: config.Config, battery_w: float, allowed: bool | str, temp_c: float, heats: bool
) -> None:
    plan = replace(
        PLAN, forced_from_battery=allowed is True, cold_tank_from_battery=allowed == "floor"
    )
    ctl = Controller(seed_house.specs(), PARIS, PolicyParams(), NOON, battery=plan)
    heater = ctl.machines["water_heater"]
    heater.set_temperature(temp_c, NOON)
    heater.force(NOON, until=NOON + 3600, power_w=None)
    r = ctl.tick(NOON, snap(200.0, battery_w))
    assert heater.state is State.BOOST  # still forced: only its power waits
    assert r.power_w["water_heater"] == (heater.spec.max_w if heats else 0.0)
    assert (r.reasons["water_heater"] == DISCHARGING) is not heats
    if not heats:  # the battery stops (its floor): the boost runs from the grid at once
        r = ctl.tick(NOON + 2, snap(2400.0, 0.0))
        assert r.power_w["water_heater"] == heater.spec.max_w


def answers(sign: float, steps: int = 6, check: SignCheck | None = None) -> SignCheck:
    """`steps` load moves of 1 kW, each answered by the battery giving 1 kW more or less: the
    grid jumps by the step, then comes back as the inverter answers. The reading (+ charging)
    falls by the step, or rises for `sign` −1 (a reading of the other sign)."""
    check = check or SignCheck()
    battery, grid = 1500.0, 0.0
    t = NOON
    for k in range(steps):
        step = 1000.0 if k % 2 == 0 else -1000.0  # on, then off again
        check = check_sign(check, step, sign * battery, grid, t, 10.0)
        for s in range(2, 12, 2):  # the ticks while the inverter answers
            answered = s >= 6
            b = battery - step if answered else battery
            g = grid if answered else grid + step
            check = check_sign(check, 0.0, sign * b, g, t + s, 10.0)
        battery -= step
        t += 60
    return check


def test_the_sign_check_agrees_with_a_reading_of_the_configured_sign() -> None:
    assert answers(+1.0, steps=4).verdict is None  # four answers say nothing yet
    assert answers(+1.0).verdict == "ok"


def test_the_sign_check_says_inverted_when_the_reading_rises_as_loads_start() -> None:
    check = answers(-1.0)
    assert check.verdict == "inverted" and (check.agree, check.disagree) == (0, 5)


def test_small_steps_and_unanswered_steps_are_no_votes() -> None:
    check = SignCheck()
    for t in range(0, 600, 2):
        step = 100.0 if t % 20 == 0 else 0.0
        check = check_sign(check, step, 1500.0 - t, 0.0, NOON + t, 10.0)
    assert (check.agree, check.disagree) == (0, 0)  # 100 W steps: under SIGN_STEP_W
    check = check_sign(SignCheck(), 1000.0, 2500.0, -800.0, NOON, 10.0)  # at its charge limit
    check = check_sign(check, 0.0, 2500.0, 200.0, NOON + 12, 10.0)  # the grid took the step
    assert (check.agree, check.disagree, check.pending) == (0, 0, None)
    check = check_sign(SignCheck(), 1000.0, 1500.0, 0.0, NOON, 10.0)
    check = check_sign(check, 0.0, 500.0, None, NOON + 12, 10.0)  # a Linky hiding P
    assert (check.agree, check.disagree, check.pending) == (0, 0, None)


def test_a_linky_near_the_balance_hides_p_from_the_sign_check() -> None:
    near = MeterSnapshot(30.0, NOON, apparent_va=-350.0, reactive_var=340.0)
    assert resolved_grid(near) is None
    assert resolved_grid(MeterSnapshot(1200.0, NOON, apparent_va=1250.0, reactive_var=340.0))
    assert resolved_grid(MeterSnapshot(-20.0, NOON)) == -20.0  # a grid meter measures P
