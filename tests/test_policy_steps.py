"""The default policy's named steps (docs/regulation.md), one rule per test, in the order
`_spread_default` runs them."""

from __future__ import annotations

import dataclasses
import math

import pytest

from machines.model import LoadView, MeterSnapshot, PolicyMemo, RelayTimer
from machines.policy import (
    Aim,
    DampingParams,
    Imbalance,
    LinkyParams,
    Margin,
    MarginParams,
    PolicyParams,
    RelayParams,
    RelayPlan,
    aim_below_balance,
    choose_margin,
    damp_rise,
    decide_relays,
    explain_relay,
    measure_imbalance,
    remember,
    settled,
    spread_over_dimmer,
)
from tests.test_policy import NOW, dimmer, relay, snap

DEFAULT = PolicyParams()


def imbalance(grid_w: float, near: bool = False) -> Imbalance:
    return Imbalance(grid_w, None, None, near)


def test_settled_waits_settle_s_after_the_last_command() -> None:
    memo = PolicyMemo(last_command_at=NOW)
    p = DampingParams(settle_s=1.5)
    assert not settled(snap(0.0, at=NOW + 1.0), memo, p)
    assert settled(snap(0.0, at=NOW + 1.5), memo, p)
    assert settled(snap(0.0), PolicyMemo(), p)  # no command yet: nothing to wait for


def test_measure_imbalance_bounds_a_linky_import_hidden_under_q() -> None:
    """S below a trusted Q: P can be at most √(2·S·tol), not the seed's P = S."""
    s = MeterSnapshot(None, NOW, apparent_va=50.0, reactive_var=400.0, reactive_timed_var=400.0)
    out = measure_imbalance(s, PolicyMemo(), LinkyParams(q_timed_import_tol_var=6.0), NOW)
    assert out.grid_w == pytest.approx(math.sqrt(2 * 50.0 * 6.0))
    assert out.q_var == 400.0 and out.q_tol_var == 6.0


def test_measure_imbalance_takes_a_plain_meter_as_it_is() -> None:
    out = measure_imbalance(snap(-700.0), PolicyMemo(), LinkyParams(), NOW)
    assert out == Imbalance(-700.0, None, None, False)


def test_choose_margin_is_fixed_until_noise_is_observed() -> None:
    p = MarginParams()
    out = choose_margin(imbalance(-500.0), [dimmer("h", 2000)], PolicyMemo(), p)
    assert out == Margin(p.margin_start_w, p.balance_band_w, p.noise_start_w)


def test_choose_margin_follows_the_noise_within_its_floor_and_ceiling() -> None:
    p = MarginParams()
    quiet = choose_margin(imbalance(0.0), [], PolicyMemo(noise_w=1.0, expected_grid_w=0.0), p)
    noisy = choose_margin(imbalance(0.0), [], PolicyMemo(noise_w=900.0, expected_grid_w=0.0), p)
    assert quiet.margin_w == p.margin_min_w and quiet.band_w == p.band_min_w
    assert noisy.margin_w == p.margin_w and noisy.band_w == p.balance_band_w


def test_aim_below_balance_aims_the_margin_below_an_export() -> None:
    aim = aim_below_balance(snap(-500.0), imbalance(-500.0), Margin(20, 50, 40), PolicyMemo(),
                            DEFAULT, NOW)  # fmt: skip
    assert aim == Aim(480.0, False, None)


def test_aim_below_balance_creeps_when_q_hides_the_size_of_an_export() -> None:
    """The sign says export (S < 0) but P ≈ 0 within the margin: rise by creep_w anyway."""
    s = MeterSnapshot(0.0, NOW, apparent_va=-10.0, reactive_var=300.0)
    aim = aim_below_balance(s, imbalance(0.0), Margin(20, 50, 40), PolicyMemo(), DEFAULT, NOW)
    assert aim == Aim(DEFAULT.damping.creep_w, True, None)


def test_damp_rise_halves_the_gain_after_a_rise_overshot_into_import() -> None:
    memo = PolicyMemo(rise_gain=1.0, last_move=1.0)
    share, gain = damp_rise(Aim(-150.0, False, None), 50.0, memo, DampingParams())
    assert (share, gain) == (1.0, 0.5)


def test_damp_rise_takes_the_share_in_force_and_doubles_it_for_the_next_rise() -> None:
    memo = PolicyMemo(rise_gain=0.25)
    assert damp_rise(Aim(300.0, False, None), -400.0, memo, DampingParams()) == (0.25, 0.5)
    assert damp_rise(Aim(3.0, True, 3.0), -400.0, memo, DampingParams()) == (1.0, 0.25)


def test_decide_relays_starts_a_relay_only_after_the_on_delay_with_headroom() -> None:
    p = RelayParams(relay_on_delay_s=60.0, relay_start_headroom_w=300.0)
    r = [relay("pump", 1000.0)]
    first = decide_relays(r, 1400.0, p, NOW, PolicyMemo())
    assert first.on == set() and first.timers["pump"].want_on_since == NOW
    later = decide_relays(r, 1400.0, p, NOW + 60, PolicyMemo(relay_timers=first.timers))
    assert later.on == {"pump"}
    short = decide_relays(r, 1200.0, p, NOW + 60, PolicyMemo(relay_timers=first.timers))
    assert short.on == set()  # 200 W of headroom is not 300


def test_decide_relays_stops_a_running_relay_once_its_shortfall_reaches_the_deficit() -> None:
    p = RelayParams(relay_stop_deficit_wh=7.5)
    r = [relay("pump", 1000.0, on=True, switched_at=NOW - 3600)]
    timers = {"pump": RelayTimer(deficit_wh=7.0, deficit_at=NOW - 36)}
    # 500 W short for 36 s is 5 Wh more: past 7.5 Wh, it stops
    assert decide_relays(r, 500.0, p, NOW, PolicyMemo(relay_timers=timers)).on == set()
    # 500 W short for 1.8 s is 0.25 Wh: 7.25 Wh, it keeps running
    timers = {"pump": RelayTimer(deficit_wh=7.0, deficit_at=NOW - 1.8)}
    assert decide_relays(r, 500.0, p, NOW, PolicyMemo(relay_timers=timers)).on == {"pump"}


def test_spread_over_dimmer_turns_a_dimmer_off_below_its_min_power() -> None:
    view = dimmer("h", 2000.0, min_power_w=50)
    assert spread_over_dimmer(view, 30.0, False, "margin", 10.0, DEFAULT) == (0.0, "min_power")


def test_spread_over_dimmer_lets_the_margin_pay_for_the_step_to_min_power() -> None:
    view = dimmer("h", 2000.0, min_power_w=50)
    assert spread_over_dimmer(view, 45.0, False, "margin", 10.0, DEFAULT) == (50.0, "margin")


def test_spread_over_dimmer_skips_a_step_too_small_inside_the_band() -> None:
    view = dimmer("h", 2000.0, setpoint=800.0)
    assert spread_over_dimmer(view, 801.0, True, "margin", 10.0, DEFAULT) == (800.0, "margin")


def test_explain_relay_names_the_min_off_hold() -> None:
    view: LoadView = relay("pump", 1000.0)
    assert explain_relay(view, False, {"pump": "min_off_hold"}) == ("min_off_hold", "min_off")
    assert explain_relay(view, True, {}) == ("surplus", "full")
    assert explain_relay(view, False, {}) == ("no_surplus", "relay_start")


def test_remember_carries_every_field_it_does_not_update() -> None:
    """`remember` builds the memo whole: a field added to PolicyMemo and forgotten there would
    silently reset every tick."""
    values = {f.name: f"kept {f.name}" for f in dataclasses.fields(PolicyMemo)}
    memo = PolicyMemo(**values)  # type: ignore[arg-type]
    load = dimmer("h", 2000.0, setpoint=100.0)
    out = remember(snap(-300.0), [load], [load], {"h": 400.0}, imbalance(-300.0),
                   Margin(20, 50, 7.0), Aim(280.0, False, None), 0.5, RelayPlan(set(), {}, {}),
                   dataclasses.replace(memo, last_move=0.0))  # fmt: skip
    updated = {"last_move", "rise_gain", "noise_w", "expected_grid_w", "s_prev_va",
               "step_prev_w", "relay_timers"}  # fmt: skip
    for name, value in values.items():
        if name not in updated:
            assert getattr(out, name) == value, name
    assert (out.last_move, out.rise_gain, out.noise_w) == (1.0, 0.5, 7.0)
    assert out.expected_grid_w == 0.0 and out.step_prev_w == 300.0 and out.relay_timers == {}
