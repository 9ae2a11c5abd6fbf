"""Load machines: every transition of the table, commands, thresholds, dump/restore."""

from __future__ import annotations

import pytest
from transitions import MachineError

from machines.loads import TRANSITIONS, CommandError, LoadMachine, check_temperature
from machines.model import Kind, LoadSpec, Mode, State, Thresholds
from tests.conftest import PARIS, T0

HEATER = LoadSpec("water_heater", 0, Kind.DIMMER, 2400.0, thresholds=Thresholds(45, 50, 55, 60))
RAIL = LoadSpec("towel_rail", 1, Kind.DIMMER, 500.0, min_energy_wh=1000.0)
OFF, ECO, SOLAR, BOOST = State.OFF, State.ECO, State.SOLAR, State.BOOST


def heater(temp: float | None = 50.0, now: float = T0) -> LoadMachine:
    m = LoadMachine(HEATER, PARIS, now)
    if temp is not None:
        m.set_temperature(temp, now)
    m.update(now, meter_stale=False)
    return m


def to(m: LoadMachine, state: State, now: float = T0) -> LoadMachine:
    """Drive a fresh machine to `state` through public events only."""
    if state is OFF:
        m.set_temperature(61.0, now)
        m.update(now, meter_stale=False)
    elif state is ECO:
        m.eco_reason = "forced_window"
        m.update(now, meter_stale=False)
    elif state is BOOST:
        m.force(now, until=now + 3600, power_w=None)
    assert m.state is state
    return m


def reached(start: State, act, expect_state: State, expect_reason: str, now: float = T0 + 10):
    m = to(heater(), start)
    act(m, now)
    assert (m.state, m.reason) == (expect_state, expect_reason)
    return m


def _update(temp: float | None = None, stale: bool = False, eco: str | None = "keep"):
    def act(m: LoadMachine, now: float) -> None:
        if temp is not None:
            m.set_temperature(temp, now)
        if eco != "keep":
            m.eco_reason = eco
        m.update(now, meter_stale=stale)

    return act


# (trigger, from, action, to, reason): every row of TRANSITIONS is exercised below.
CASES = [
    ("needs_surplus", OFF, _update(temp=54.9), SOLAR, "surplus"),
    ("goal_reached", SOLAR, _update(temp=60.0), OFF, "satisfied"),
    ("meter_lost", SOLAR, _update(stale=True), OFF, "meter_stale"),
    ("guarantee_at_risk", OFF, _update(eco="forced_window"), ECO, "forced_window"),
    ("guarantee_at_risk", SOLAR, _update(eco="deficit"), ECO, "deficit"),
    ("guarantee_met", ECO, _update(eco=None), SOLAR, "surplus"),
    ("guarantee_met_satisfied", ECO, _update(temp=61.0, eco=None), OFF, "satisfied"),
    ("forced", SOLAR, lambda m, now: m.force(now, until=None, power_w=None), BOOST, "manual"),
    ("forced", OFF, lambda m, now: m.force(now, until=now + 60, power_w=1000), BOOST, "manual"),
    ("forced", ECO, lambda m, now: m.force(now, until=None, power_w=None), BOOST, "manual"),
    ("forced", BOOST, lambda m, now: m.force(now, until=now + 99, power_w=None), BOOST, "manual"),
    ("force_ended", BOOST, lambda m, now: _update(temp=50.0)(m, now + 3600), SOLAR, "surplus"),
    ("force_ended_satisfied", BOOST, _update(temp=60.0), OFF, "satisfied"),
    ("switched_off", SOLAR, lambda m, now: m.switch_off(now), OFF, "manual"),
    ("switched_off", BOOST, lambda m, now: m.switch_off(now), OFF, "manual"),
    ("switched_off", ECO, lambda m, now: m.switch_off(now), OFF, "manual"),
    ("switched_off", OFF, lambda m, now: m.switch_off(now), OFF, "manual"),
]


@pytest.mark.parametrize(
    ("trigger", "start", "act", "dest", "reason"),
    CASES,
    ids=[f"{c[0]}:{c[1].value}" for c in CASES],
)
def test_transition_table(trigger: str, start: State, act, dest: State, reason: str) -> None:
    m = reached(start, act, dest, reason)
    last = m.records[-1]
    assert (last.trigger, last.source, last.dest) == (trigger, start.value, dest.value)
    assert last.at >= T0 and last.load == "water_heater"


def test_every_declared_transition_is_covered() -> None:
    covered = {(c[0], c[1]) for c in CASES} | {("disable", s) for s in (ECO, SOLAR, BOOST)}
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            assert (row["trigger"], source) in covered, (row["trigger"], source)


@pytest.mark.parametrize("start", [ECO, SOLAR, BOOST])
def test_disabled_load_goes_off(start: State) -> None:
    m = to(heater(), start)
    m.spec = LoadSpec(
        "water_heater", 0, Kind.DIMMER, 2400.0, thresholds=HEATER.thresholds, enabled=False
    )
    m.update(T0 + 1, meter_stale=False)
    assert (m.state, m.reason, m.records[-1].trigger) == (OFF, "disabled", "disable")


def test_impossible_sequences_raise() -> None:
    m = heater()
    with pytest.raises(MachineError):
        m.trigger("force_ended", reason="x", now=T0)
    with pytest.raises(MachineError):
        m.trigger("guarantee_met", reason="x", now=T0)


def test_satisfied_hysteresis_between_sol_min_and_max() -> None:
    m = heater(59.0)
    assert m.state is SOLAR
    for temp, state in [(60.0, OFF), (58.0, OFF), (55.0, OFF), (54.9, SOLAR), (59.9, SOLAR)]:
        m.set_temperature(temp, T0)
        m.update(T0, meter_stale=False)
        assert m.state is state, temp
    m.set_temperature(57.0, T0)
    m.satisfied = True
    assert m.tops_up(T0)  # satisfied but below temp_max: may take leftover surplus
    m.set_temperature(60.0, T0)
    assert not m.tops_up(T0)


def test_unknown_temperature_runs_on_surplus_but_is_never_forced() -> None:
    m = heater(temp=None)
    assert (m.state, m.reason) == (SOLAR, "temp_unknown")
    m.eco_reason = "forced_window"
    m.update(T0 + 1, meter_stale=False)
    assert m.state is SOLAR
    m.set_temperature(44.0, T0)
    m.update(T0 + 301, meter_stale=False)  # the reading went stale after 300 s
    assert (m.state, m.reason) == (SOLAR, "temp_unknown")


def test_boost_deadline_and_manual_modes() -> None:
    m = heater()
    m.force(T0, until=T0 + 7200, power_w=1200)
    assert (m.state, m.mode, m.forced_w) == (BOOST, Mode.MANUAL, 1200)
    m.update(T0 + 7199, meter_stale=False)
    assert m.state is BOOST
    m.update(T0 + 7200, meter_stale=False)
    assert (m.state, m.mode, m.forced_until) == (SOLAR, Mode.AUTO, None)
    m.switch_off(T0 + 7300)
    m.update(T0 + 7400, meter_stale=False)
    assert (m.state, m.mode, m.reason) == (OFF, Mode.MANUAL, "manual")
    m.set_auto(T0 + 7500)
    assert (m.state, m.mode) == (SOLAR, Mode.AUTO)
    with pytest.raises(CommandError):
        m.force(T0, until=None, power_w=5000)


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("temp_min", 40, True),
        ("temp_min", 50, False),
        ("temp_eco", 55, True),
        ("temp_eco", 56, False),
        ("temp_max", 55, False),
        ("temp_max", 111, False),
        ("temp_sol_min", 52, True),
        ("nope", 1, False),
    ],
)
def test_threshold_commands_keep_the_order(name: str, value: float, ok: bool) -> None:
    m = heater()
    before = m.thresholds
    if ok:
        m.set_threshold(name, value)
        assert getattr(m.thresholds, name) == value
    else:
        with pytest.raises(CommandError):
            m.set_threshold(name, value)
        assert m.thresholds == before


@pytest.mark.parametrize("bad", [85.0, -127.0, 111.0, -21.0, float("nan")])
def test_probe_errors_are_refused(bad: float) -> None:
    with pytest.raises(CommandError):
        check_temperature(bad)


def test_min_energy_periods_satisfied_and_deficit() -> None:
    m = LoadMachine(RAIL, PARIS, T0)
    m.update(T0, meter_stale=False)
    assert m.has_deficit() and m.state is SOLAR
    m.add_energy(1000.0, T0 + 60)
    m.update(T0 + 60, meter_stale=False)
    assert (m.state, m.reason, m.has_deficit()) == (OFF, "satisfied", False)
    next_day = T0 + 86400
    m.update(next_day, meter_stale=False)  # a new local day: goal reset, yesterday was met
    assert m.state is SOLAR and not m.has_deficit() and m.energy_yesterday_wh == 1000.0


def test_dump_restore_round_trip_keeps_everything() -> None:
    m = heater(52.0)
    m.set_threshold("temp_max", 62)
    m.force(T0, until=T0 + 3600, power_w=1500)
    m.add_energy(321.5, T0 + 10)
    m.setpoint_w = 1500
    data = m.dump()
    back = LoadMachine.restore(HEATER, PARIS, data, T0 + 20)
    assert back.dump() == data
    assert (back.state, back.mode, back.forced_until, back.thresholds.temp_max) == (
        BOOST,
        Mode.MANUAL,
        T0 + 3600,
        62,
    )


def test_restore_prefers_a_changed_config_value() -> None:
    m = heater()
    m.set_threshold("temp_max", 62)
    data = m.dump()
    edited = LoadSpec("water_heater", 0, Kind.DIMMER, 2400.0, thresholds=Thresholds(45, 50, 55, 65))
    assert LoadMachine.restore(edited, PARIS, data, T0).thresholds.temp_max == 65
    assert LoadMachine.restore(HEATER, PARIS, data, T0).thresholds.temp_max == 62
