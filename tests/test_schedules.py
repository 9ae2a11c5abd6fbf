"""Schedules on an injected clock: windows, daylight saving, checks, eco planning, restarts."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from jobs.schedules import BoundaryTrigger
from machines.controller import Controller
from machines.model import Kind, LoadSpec, MeterSnapshot, Mode, State, Thresholds
from machines.policy import PolicyParams
from machines.schedules import (
    BoostRequest,
    EcoRequest,
    Planner,
    Release,
    Schedule,
    next_events,
    open_window,
    wall,
)
from pvopt import config
from tests.conftest import EXAMPLES, PARIS

HEATER = LoadSpec("water_heater", 0, Kind.DIMMER, 2400.0, thresholds=Thresholds(45, 50, 55, 60))
RAIL = LoadSpec("towel_rail", 1, Kind.DIMMER, 500.0, min_energy_wh=1000.0)
OFFPEAK = Schedule("offpeak", "water_heater", "eco", start=time(2, 5), end=time(6, 50))
DAILY = Schedule(
    "daily-minimum",
    "water_heater",
    "boost-deficit",
    at=time(16, 0),
    min_today_wh=2000,
    min_two_days_wh=4000,
)


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS).timestamp()


def site(
    now: float, schedules: list[Schedule], seed_rule: bool = False, saved: dict | None = None
) -> tuple[Controller, Planner]:
    planner = Planner(
        schedules, PARIS, seed_rule=seed_rule, tank_litres={"water_heater": 200}, saved=saved
    )
    ctl = Controller([HEATER, RAIL], PARIS, PolicyParams(), now, planner=planner)
    return ctl, planner


def tick(ctl: Controller, now: float, temp: float | None = None) -> None:
    if temp is not None:
        ctl.machines["water_heater"].set_temperature(temp, now)
    ctl.tick(now, MeterSnapshot(100.0, now))  # night: importing, no surplus


def test_spring_forward_gap_opens_at_the_first_minute_that_exists() -> None:
    opens = wall(date(2026, 3, 29), time(2, 5), PARIS)
    assert datetime.fromtimestamp(opens, PARIS).isoformat() == "2026-03-29T03:00:00+02:00"
    first = next_events(OFFPEAK, at(2026, 3, 28, 12), PARIS, 2)
    assert [(datetime.fromtimestamp(t, PARIS).strftime("%H:%M"), e) for t, e in first] == [
        ("03:00", "open"),
        ("06:50", "close"),
    ]


def test_fall_back_night_runs_a_window_once() -> None:
    s = Schedule("short", "water_heater", "boost", start=time(2, 5), end=time(2, 55))
    ctl, planner = site(at(2026, 10, 25, 0), [s])
    opened, boosted_s = 0, 0
    t = at(2026, 10, 25, 0)
    while t < at(2026, 10, 25, 5):  # 00:00 CEST to 05:00 CET: 6 hours of wall clock
        tick(ctl, t, 50.0)
        opened += sum(e.event == "open" for e in planner.drain_events())
        boosted_s += 60 * (ctl.machines["water_heater"].state.value == "boost")
        t += 60
    assert opened == 1
    assert boosted_s == 50 * 60
    assert len([e for e in next_events(s, at(2026, 10, 24, 12), PARIS, 4) if e[1] == "open"]) == 2


def test_window_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    s = Schedule("night", "water_heater", "eco", start=time(22), end=time(6), days=frozenset({0}))
    assert open_window(s, at(2026, 1, 12, 23), PARIS) is not None  # Monday 23:00
    assert open_window(s, at(2026, 1, 13, 5), PARIS) is not None  # Tuesday 05:00, Monday's
    assert open_window(s, at(2026, 1, 13, 23), PARIS) is None  # Tuesday's does not exist


def test_window_open_at_start_is_entered_at_once_and_a_restart_keeps_it() -> None:
    s = Schedule("boost-night", "water_heater", "boost", start=time(2), end=time(5))
    now = at(2026, 1, 15, 3)
    ctl, planner = site(now, [s])
    tick(ctl, now, 48.0)
    heater = ctl.machines["water_heater"]
    assert heater.state.value == "boost" and heater.forced_until == at(2026, 1, 15, 5)
    assert [e.event for e in planner.drain_events()] == ["open"]
    # restart at 04:00 from what the store kept
    later = at(2026, 1, 15, 4)
    planner2 = Planner([s], PARIS, saved=planner.dump())
    ctl2 = Controller([HEATER, RAIL], PARIS, PolicyParams(), later, ctl.dump(), planner=planner2)
    tick(ctl2, later, 52.0)
    assert planner2.drain_events() == []  # the same occurrence is not opened twice
    h2 = ctl2.machines["water_heater"]
    assert h2.state.value == "boost" and h2.forced_until == at(2026, 1, 15, 5)
    tick(ctl2, at(2026, 1, 15, 5), 55.0)
    assert h2.state.value != "boost"


def test_eco_starts_as_late_as_still_reaches_temp_eco() -> None:
    ctl, planner = site(at(2026, 1, 15, 2), [OFFPEAK])
    heater = ctl.machines["water_heater"]
    tick(ctl, at(2026, 1, 15, 2, 5), 44.0)
    assert heater.state.value != "eco"  # at risk, but 44 → 50 °C takes 35 min: wait
    tick(ctl, at(2026, 1, 15, 5, 30), 43.5)
    assert heater.state.value != "eco"
    # need = 6.5 K × 232.6 Wh/K / 2400 W = 38 min; × 1.25 + 15 min = 62 min before 06:50
    tick(ctl, at(2026, 1, 15, 5, 50), 43.4)
    assert heater.state.value == "eco" and heater.reason == "forced_window"
    tick(ctl, at(2026, 1, 15, 6, 30), 50.1)  # reached: hold, not heat
    assert heater.state.value != "eco"
    tick(ctl, at(2026, 1, 15, 6, 40), 49.9)  # fell below: heat again
    assert heater.state.value == "eco"
    tick(ctl, at(2026, 1, 15, 6, 50), 50.2)
    close = [e for e in planner.drain_events() if e.event == "close"]
    assert close and close[0].triggered and close[0].temperature_c == 50.2
    assert heater.state.value != "eco"


def test_eco_stays_idle_when_the_water_will_last() -> None:
    ctl, planner = site(at(2026, 1, 15, 1), [OFFPEAK])
    t = at(2026, 1, 15, 1)
    while t <= at(2026, 1, 15, 6, 50):  # 52 °C losing 0.25 K/h: 51 °C at the close
        tick(ctl, t, round(52 - (t - at(2026, 1, 15, 1)) / 3600 * 0.25, 1))
        assert ctl.machines["water_heater"].state.value != "eco"
        t += 300
    closes = [e for e in planner.drain_events() if e.event == "close"]
    assert closes and closes[0].triggered is False


def test_seed_rule_heats_at_once_at_temp_min() -> None:
    ctl, _ = site(at(2026, 1, 15, 2), [OFFPEAK, DAILY], seed_rule=True)
    tick(ctl, at(2026, 1, 15, 2, 10), 45.0)
    assert ctl.machines["water_heater"].state.value == "eco"
    tick(ctl, at(2026, 1, 15, 16, 1), 40.0)  # the seed has no 16:00 check (and no window)
    assert ctl.machines["water_heater"].state.value != "boost"


@pytest.mark.parametrize(
    ("today", "yesterday", "boost_min"),
    [(500.0, 1000.0, 37.5), (2500.0, 0.0, None), (1500.0, 3000.0, None)],
)
def test_boost_deficit_at_16(today: float, yesterday: float, boost_min: float | None) -> None:
    ctl, planner = site(at(2026, 1, 15, 15), [DAILY])
    heater = ctl.machines["water_heater"]
    tick(ctl, at(2026, 1, 15, 15, 59), 50.0)
    heater.energy_today_wh, heater.energy_yesterday_wh = today, yesterday
    now = at(2026, 1, 15, 16)
    tick(ctl, now, 50.0)
    assert [e.event for e in planner.drain_events()] == ["check"]
    if boost_min is None:
        assert heater.state.value != "boost"
    else:
        assert heater.state.value == "boost" and heater.reason == "deficit"
        assert heater.forced_until == pytest.approx(now + boost_min * 60)


def test_a_missed_check_runs_the_same_day_else_is_logged_missed() -> None:
    ctl, planner = site(at(2026, 1, 14, 16), [DAILY])
    tick(ctl, at(2026, 1, 14, 16, 1), 50.0)
    saved = planner.dump()
    # down from the 14th 16:01 to the 16th 17:00: the 15th was missed, the 16th still runs
    planner2 = Planner([DAILY], PARIS, saved=saved)
    ctl2 = Controller([HEATER, RAIL], PARIS, PolicyParams(), at(2026, 1, 16, 17), planner=planner2)
    tick(ctl2, at(2026, 1, 16, 17), 50.0)
    events = [(e.event, e.detail[:10]) for e in planner2.drain_events()]
    assert events == [("missed", "2026-01-15"), ("check", "deficit: b")]
    tick(ctl2, at(2026, 1, 16, 18), 50.0)
    assert planner2.drain_events() == []


def test_boost_beats_eco_and_the_later_deadline_wins() -> None:
    boost = Schedule("boost", "water_heater", "boost", start=time(3), end=time(4))
    late = Schedule("late", "water_heater", "boost", start=time(3, 30), end=time(5))
    ctl, _ = site(at(2026, 1, 15, 2), [OFFPEAK, boost, late])
    heater = ctl.machines["water_heater"]
    tick(ctl, at(2026, 1, 15, 3), 40.0)  # eco at risk, but boost is on
    assert heater.state.value == "boost" and heater.forced_until == at(2026, 1, 15, 4)
    tick(ctl, at(2026, 1, 15, 3, 30), 45.0)
    assert heater.forced_until == at(2026, 1, 15, 5)


def test_tariff_window_follows_the_meter_then_the_clock() -> None:
    hc = Schedule("hc", "water_heater", "boost", tariff=True, start=time(2), end=time(6))
    ctl, planner = site(at(2026, 1, 15, 12), [hc])
    heater = ctl.machines["water_heater"]
    heater.set_temperature(50.0, at(2026, 1, 15, 12))
    ctl.tick(at(2026, 1, 15, 12), MeterSnapshot(100.0, at(2026, 1, 15, 12)), offpeak=True)
    assert heater.state.value == "boost"
    ctl.tick(at(2026, 1, 15, 13), MeterSnapshot(100.0, at(2026, 1, 15, 13)), offpeak=False)
    assert heater.state.value != "boost"
    assert [e.event for e in planner.drain_events()] == ["open", "close"]
    heater.set_temperature(50.0, at(2026, 1, 15, 3))
    ctl.tick(at(2026, 1, 15, 3), MeterSnapshot(100.0, at(2026, 1, 15, 3)), offpeak=None)
    assert heater.state.value == "boost"  # tariff unknown: the clock window


def test_min_energy_deficit_forces_inside_a_window_until_met() -> None:
    rail_window = Schedule("offpeak", "towel_rail", "eco", start=time(2), end=time(6))
    ctl, _ = site(at(2026, 1, 15, 1), [rail_window])
    rail = ctl.machines["towel_rail"]
    tick(ctl, at(2026, 1, 15, 1, 30), 50.0)
    assert rail.state.value != "eco"  # deficit, but no window yet
    tick(ctl, at(2026, 1, 15, 2), 50.0)
    assert rail.state.value == "eco" and rail.reason == "deficit"
    rail.period_wh = 1000.0
    tick(ctl, at(2026, 1, 15, 2, 10), 50.0)
    assert rail.state.value != "eco"


def test_seed_hc_env_creates_offpeak_windows() -> None:
    text = (EXAMPLES / "seed_house.yml").read_text()  # no schedules of its own
    cfg = config.parse(text, "house.yml", {"HC_START_TIME": "22:30", "HC_END_TIME": "6:30"})
    eligible = [s.load for s in cfg.schedule_list()]
    assert eligible == ["water_heater"]  # the only load with thresholds or min_energy
    assert cfg.schedule_list()[0].start == time(22, 30)
    with_own = (
        text + "\nschedules: [{name: x, load: water_heater, at: '16:00', action: boost-deficit}]\n"
    )
    cfg2 = config.parse(with_own, "h.yml", {"HC_START_TIME": "22:30", "HC_END_TIME": "6:30"})
    assert [s.name for s in cfg2.schedule_list()] == ["x"]  # the config's own schedules win


def test_the_service_is_woken_at_each_boundary_dst_included() -> None:
    trigger = BoundaryTrigger([OFFPEAK, DAILY], PARIS)
    now = datetime(2026, 3, 28, 17, 0, tzinfo=PARIS)
    fired = []
    prev = None
    for _ in range(4):
        prev = trigger.get_next_fire_time(prev, now)
        assert prev is not None
        fired.append(prev.strftime("%d %H:%M %z"))
        now = prev
    assert fired == ["29 03:00 +0200", "29 06:50 +0200", "29 16:00 +0200", "30 02:05 +0200"]
    night = BoundaryTrigger([OFFPEAK], PARIS)
    prev, now, opens = None, datetime(2026, 10, 24, 12, 0, tzinfo=PARIS), []
    for _ in range(4):
        prev = night.get_next_fire_time(prev, now)
        assert prev is not None
        opens.append(prev.strftime("%d %H:%M %z"))
        now = prev
    assert opens == ["25 02:05 +0200", "25 06:50 +0100", "26 02:05 +0100", "26 06:50 +0100"]


def plan(ctl: Controller, planner: Planner, now: float, **kw: bool | None) -> list:
    return planner.update(now, {n: m.facts(now) for n, m in ctl.machines.items()}, **kw)


def test_the_planner_asks_and_the_controller_applies() -> None:
    boost = Schedule("boost-night", "water_heater", "boost", start=time(2), end=time(5))
    rail_window = Schedule("offpeak", "towel_rail", "eco", start=time(2), end=time(6))
    now = at(2026, 1, 15, 3)
    ctl, planner = site(now, [boost, rail_window])
    heater, rail = ctl.machines["water_heater"], ctl.machines["towel_rail"]
    heater.set_temperature(48.0, now)
    before = {n: m.dump() for n, m in ctl.machines.items()}
    asked = plan(ctl, planner, now)
    assert asked == [
        BoostRequest("water_heater", at(2026, 1, 15, 5), "forced_window"),
        EcoRequest("towel_rail", at(2026, 1, 15, 6), "deficit"),
    ]
    assert {n: m.dump() for n, m in ctl.machines.items()} == before  # asked, not moved
    ctl.apply_requests(asked, now)
    for m in ctl.machines.values():
        m.update(now, meter_stale=False)
    assert (heater.state, heater.mode, heater.reason) == (State.BOOST, Mode.AUTO, "forced_window")
    assert (rail.state, rail.reason, rail.eco_until) == (State.ECO, "deficit", at(2026, 1, 15, 6))
    ctl.apply_requests([], now + 60)  # eco is a level: a plan without it drops it
    rail.update(now + 60, meter_stale=False)
    assert rail.state is State.SOLAR


def test_a_closing_tariff_window_releases_and_a_later_window_sees_it() -> None:
    hc = Schedule("hc", "water_heater", "boost", tariff=True, start=time(2), end=time(6))
    lunch = Schedule("lunch", "water_heater", "boost", start=time(13), end=time(14))
    ctl, planner = site(at(2026, 1, 15, 12), [hc, lunch])
    heater = ctl.machines["water_heater"]
    heater.set_temperature(50.0, at(2026, 1, 15, 12))
    first = plan(ctl, planner, at(2026, 1, 15, 12), offpeak=True)
    assert first == [BoostRequest("water_heater", None, "forced_window")]
    ctl.apply_requests(first, at(2026, 1, 15, 12))
    # off-peak ends: release; the lunch window opening in the same tick sees the load released
    assert plan(ctl, planner, at(2026, 1, 15, 13), offpeak=False) == [
        Release("water_heater"),
        BoostRequest("water_heater", at(2026, 1, 15, 14), "forced_window"),
    ]


def test_a_backward_clock_step_reopens_no_window_and_reruns_no_check() -> None:
    """NTP steps the clock back an hour after the night window closed and after the 16:00
    check ran: the wall clock is inside that window and before 16:00 again, yet the
    occurrence already ran and the day's check is done, so nothing is forced twice."""
    s = Schedule("boost-night", "water_heater", "boost", start=time(2), end=time(5))
    ctl, planner = site(at(2026, 1, 15, 1, 50), [s, DAILY])
    heater = ctl.machines["water_heater"]

    def run(t: float, until: float) -> list[str]:
        events: list[str] = []
        while t <= until:
            tick(ctl, t, 40.0)  # cold: a reopened window or a second check would boost
            events += [e.event for e in planner.drain_events()]
            t += 60
        return events

    assert run(at(2026, 1, 15, 1, 50), at(2026, 1, 15, 5, 10)).count("open") == 1
    assert heater.state.value != "boost"
    ctl.clock_stepped(-3600.0)
    assert "open" not in run(at(2026, 1, 15, 4, 10), at(2026, 1, 15, 5, 10))
    assert heater.state.value != "boost"

    assert run(at(2026, 1, 15, 15, 50), at(2026, 1, 15, 16, 10)).count("check") == 1
    ctl.clock_stepped(-3600.0)
    assert "check" not in run(at(2026, 1, 15, 15, 10), at(2026, 1, 15, 16, 10))
