"""Load machines: every row of the table, commands, thresholds, dump/restore."""

from __future__ import annotations

import itertools

import pytest
from transitions import MachineError

from machines.loads import RELEASE, TICK, CommandError, LoadMachine, Row, Table, check_temperature
from machines.model import DeviceReport, Kind, LoadSpec, Mode, State, Thresholds
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
        m.request_eco("forced_window", None)
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


def _offline(m: LoadMachine, now: float) -> None:
    m.device.observe(DeviceReport(online=False), now)
    m.update(now, meter_stale=False)


def _cut(m: LoadMachine, now: float) -> None:
    """Its reading says nothing drawn on a 1.2 kW command for 30 s: its thermostat cut."""
    m.thermostat.reading(1200.0, 3.0, now - 30)
    m.thermostat.reading(1200.0, 3.0, now)
    m.update(now, meter_stale=False)


def _update(temp: float | None = None, stale: bool = False, eco: str | None = "keep"):
    def act(m: LoadMachine, now: float) -> None:
        if temp is not None:
            m.set_temperature(temp, now)
        if eco is None:
            m.drop_eco()
        elif eco != "keep":
            m.request_eco(eco, now + 3600)
        m.update(now, meter_stale=stale)

    return act


# (move, from, action, to, reason): every moving row of the tables, through public events.
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
    *(("device_lost", s, _offline, OFF, "device_offline") for s in (SOLAR, ECO, BOOST)),
    *(("cut_off", s, _cut, OFF, "thermostat_cut") for s in (SOLAR, ECO, BOOST)),
]


@pytest.mark.parametrize(
    ("trigger", "start", "act", "dest", "reason"),
    CASES,
    ids=[f"{c[0]}:{c[1].value}" for c in CASES],
)
def test_every_move_through_public_events(
    trigger: str, start: State, act, dest: State, reason: str
) -> None:
    m = reached(start, act, dest, reason)
    last = m.records[-1]
    assert (last.trigger, last.source, last.dest) == (trigger, start.value, dest.value)
    assert last.at >= T0 and last.load == "water_heater"


def test_every_moving_row_is_covered() -> None:
    covered = {(c[0], c[1]) for c in CASES} | {("disable", s) for s in (ECO, SOLAR, BOOST)}
    for row in (*TICK.rows, *RELEASE.rows):
        if row.dest is not None:
            for source in row.source - {row.dest}:
                assert (row.move, source) in covered, (row.move, source)


# -- reading the table is enough ----------------------------------------------------------------
TABLES = {"tick": TICK, "release": RELEASE}


@pytest.mark.parametrize("name", TABLES)
def test_every_row_names_its_guards_move_and_reason(name: str) -> None:
    for row in TABLES[name].rows:
        for guard in row.when:
            assert callable(getattr(LoadMachine, f"guard_{guard}", None)), guard
        if row.dest is not None:
            assert row.move and row.reason is not None, row  # the log needs both
        else:
            assert not row.move, row  # a row that keeps the state logs nothing


@pytest.mark.parametrize("name", TABLES)
def test_each_state_ends_in_a_row_without_guards_and_none_after(name: str) -> None:
    """Every case is decided, and no row hides behind a catch-all."""
    for state in State:
        mine = [row for row in TABLES[name].rows if state in row.source]
        if name == "release" and state is not BOOST:
            assert mine == []  # only a boost is released
            continue
        assert mine[-1].when == (), (state, mine[-1])
        assert all(row.when for row in mine[:-1]), state


def _deciding(rows: list[Row], index: int) -> dict[str, bool] | None:
    """Guard values for which row `index` is the first of `rows` that holds, if any."""
    names = sorted({g for row in rows for g in row.when})
    for values in itertools.product([False, True], repeat=len(names)):
        facts = dict(zip(names, values, strict=True))
        holds = [all(facts[g] for g in row.when) for row in rows]
        if holds[index] and not any(holds[:index]):
            return facts
    return None


CHOICES = [
    (name, state, i)
    for name, table in TABLES.items()
    for state in State
    for i, row in enumerate(r for r in table.rows if state in r.source)
]


@pytest.mark.parametrize(
    ("name", "source", "index"), CHOICES, ids=[f"{n}:{s.value}:{i}" for n, s, i in CHOICES]
)
def test_each_row_does_what_it_says(
    name: str, source: State, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make the row the first that holds: applying the table takes exactly that row."""
    mine = [row for row in TABLES[name].rows if source in row.source]
    row, facts = mine[index], _deciding(mine, index)
    assert facts is not None, f"row {row.label} can never decide from {source.value}"
    for guard, value in facts.items():
        monkeypatch.setattr(LoadMachine, f"guard_{guard}", lambda m, now, stale, v=value: v)
    fresh = Table(*((r.source, r.when, r.dest, r.move, r.reason, r.ends_boost) for r in mine))
    m = heater()
    m.machine.set_state(source)
    m.request_eco("deficit", None)
    m.reason = "before"
    m.records.clear()
    moved = m._apply(fresh, T0 + 10, False)
    reason = row.reason(m) if callable(row.reason) else row.reason
    if row.dest in (None, source):
        assert (moved, m.state, m.records) == (False, source, [])
        assert m.reason == (reason or "before")
    else:
        last = m.records[-1]
        assert (moved, m.state, m.reason) == (True, row.dest, reason)
        assert (last.trigger, last.source, last.dest) == (row.move, source.value, m.state.value)
        assert (m.mode is Mode.AUTO) or not row.ends_boost


@pytest.mark.parametrize("start", list(State))
def test_a_tick_settles_within_the_longest_chain(start: State) -> None:
    for mode, temp, stale, eco, expired, enabled in itertools.product(
        Mode, [None, 44.0, 57.0, 61.0], [False, True], [False, True], [False, True], [True, False]
    ):
        m = heater(temp)
        m.spec = (
            HEATER if enabled else LoadSpec("water_heater", 0, Kind.DIMMER, 2400.0, enabled=False)
        )
        m.machine.set_state(start)
        m.mode, m.forced_until = mode, (T0 if expired else None)
        if eco:
            m.request_eco("forced_window", None)
        m.update(T0 + 10, meter_stale=stale)  # raises if TICK did not settle
        assert m.reason != "starting"


def test_guards_read_now_and_the_meter() -> None:
    m = heater(60.5)
    assert m.guard_meter_stale(T0, True) and m.guard_hot(T0, True)
    assert m.guard_reached_goal(T0, True)
    assert not (m.guard_disabled(T0, True) or m.guard_manual(T0, True))
    assert not m.guard_expired(T0, True)
    assert not m.guard_hot(T0 + 301, False)  # the reading went stale


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
        m.trigger("force_ended", now=T0)  # nothing to end
    m.switch_off(T0)
    with pytest.raises(MachineError):
        m.trigger("guarantee_met", now=T0)  # not in eco


def test_an_ended_boost_may_go_to_eco_in_the_same_tick() -> None:
    m = to(heater(), BOOST)
    m.request_eco("forced_window", T0 + 7200)
    m.set_temperature(48.0, T0 + 3600)
    m.update(T0 + 3600, meter_stale=False)
    assert (m.state, m.reason, m.mode) == (ECO, "forced_window", Mode.AUTO)
    assert [r.trigger for r in m.records[-2:]] == ["force_ended", "guarantee_at_risk"]


def test_an_eco_request_lapses_when_its_window_closes() -> None:
    m = heater(44.0)
    m.request_eco("forced_window", T0 + 60)
    m.update(T0 + 59, meter_stale=False)
    assert m.state is ECO
    m.update(T0 + 60, meter_stale=False)
    assert (m.state, m.reason) == (SOLAR, "surplus")


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
    m.request_eco("forced_window", None)
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


def test_restore_reads_a_dump_of_an_older_version() -> None:
    m = heater(52.0)
    m.request_eco("forced_window", T0 + 600)
    m.update(T0, meter_stale=False)
    data = m.dump()
    del data["eco_until"]  # before eco requests had a deadline
    back = LoadMachine.restore(HEATER, PARIS, data, T0 + 20)
    assert (back.state, back.mode, back.eco_reason, back.eco_until) == (
        ECO,
        Mode.AUTO,
        "forced_window",
        None,
    )
    assert data["mode"] == "auto" and data["state"] == "eco"  # serialized as the same strings


def test_restore_prefers_a_changed_config_value() -> None:
    m = heater()
    m.set_threshold("temp_max", 62)
    data = m.dump()
    edited = LoadSpec("water_heater", 0, Kind.DIMMER, 2400.0, thresholds=Thresholds(45, 50, 55, 65))
    assert LoadMachine.restore(edited, PARIS, data, T0).thresholds.temp_max == 65
    assert LoadMachine.restore(HEATER, PARIS, data, T0).thresholds.temp_max == 62


def test_an_offline_device_is_shed_and_rejoins_on_surplus_counting_nothing_meanwhile() -> None:
    m = to(heater(), SOLAR)
    m.set_power(1200.0, T0)
    _offline(m, T0 + 5)
    assert (m.state, m.reason, m.device.drawn_w(1200.0, T0 + 5)) == (OFF, "device_offline", 0.0)
    m.device.observe(DeviceReport(online=True), T0 + 60)
    m.update(T0 + 60, meter_stale=False)
    assert (m.state, m.reason) == (SOLAR, "surplus")


def test_a_manual_off_stays_manual_through_an_outage() -> None:
    m = heater()
    m.switch_off(T0)
    _offline(m, T0 + 1)
    assert (m.state, m.mode, m.reason) == (OFF, Mode.MANUAL, "device_offline")
    m.device.observe(DeviceReport(online=True), T0 + 2)
    m.update(T0 + 2, meter_stale=False)
    assert (m.state, m.mode, m.reason) == (OFF, Mode.MANUAL, "manual")


def test_a_device_that_disobeys_is_resent_then_left_out_then_retried() -> None:
    from machines.device import MAX_RESENDS, OBEY_S, RETRY_S

    m = to(heater(), SOLAR)
    m.device.observe(DeviceReport(on=False), T0)  # commanded on, says off
    resends = [t for t in range(0, 200) if m.device.resend_due(True, T0 + t)]
    assert len(resends) == MAX_RESENDS  # one every OBEY_S, then it is left out
    assert resends == [OBEY_S * k for k in range(1, MAX_RESENDS + 1)]
    m.update(T0 + 200, meter_stale=False)
    assert (m.state, m.reason) == (OFF, "device_not_following")
    m.update(T0 + 200 + RETRY_S, meter_stale=False)  # tried again, its next report decides
    assert m.state is SOLAR and not m.device.resend_due(True, T0 + 200 + RETRY_S + 1)


def test_a_measurement_counts_while_fresh_then_the_command_again() -> None:
    from machines.device import MEASURED_FRESH_S

    m = heater()
    m.device.observe(DeviceReport(power_w=19.0), T0)
    assert m.device.drawn_w(2400.0, T0 + MEASURED_FRESH_S) == 19.0
    assert m.device.drawn_w(2400.0, T0 + MEASURED_FRESH_S + 1) == 2400.0
