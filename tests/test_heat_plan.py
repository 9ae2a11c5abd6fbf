"""The heating plan (machines/heat_plan.py): what it learns, the goal it sets, the fallback, and
the red-day rule; the day-ahead forecasts the simulator plays (pvsim/forecasts.py)."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest

from machines.controller import Controller
from machines.errors import ForecastError
from machines.forecast import Forecast, Slot
from machines.heat_plan import (
    COLD_WATER_C,
    DRAW_MARGIN_K,
    DrawLearner,
    HeatPlanner,
    SurplusCalibration,
    TankFacts,
    Target,
)
from machines.model import MeterSnapshot
from machines.policy import PolicyParams
from machines.schedules import Planner, Schedule
from machines.tariff import TEMPO_OFFPEAK, Tariff
from pvsim.forecasts import SIGMA_DAY, day_ahead, hourly_pv, latest, read_history
from pvsim.traces import Trace
from tests.conftest import PARIS
from tests.test_schedules import DAILY, HEATER

C = 200 * 1.163  # Wh per K of a 200 l tank
NIGHT = Schedule("offpeak", "water_heater", "eco", start=time(22, 0), end=time(6, 0))


def at(d: date, h: int, mi: int = 0) -> float:
    return datetime.combine(d, time(h, mi), PARIS).timestamp()


def tank(temp: float, name: str = "water_heater") -> TankFacts:
    return TankFacts(name, temp, 45.0, 60.0, 2400.0, C, 0.25)


def sunny(issued: float, day: date, peak_w: float) -> Forecast:
    """A bell of PV over `day`'s local 08:00-18:00, issued at `issued`."""
    slots = []
    start = int(at(day, 0)) // 3600 * 3600
    for k in range(48):
        t = start + k * 3600
        h = datetime.fromtimestamp(t, PARIS).hour + (k // 24) * 24
        pv = peak_w * max(0.0, math.sin(math.pi * (h - 8) / 10)) if 8 <= h <= 18 else 0.0
        slots.append(Slot(t, round(pv, 1)))
    return Forecast(int(issued), "test", tuple(slots))


def learn(learner: DrawLearner, day: date, draws: dict[str, float], temp: float = 55.0) -> None:
    """A day of 60 s probe readings of an idle tank with `draws` (HH:MM -> litres)."""
    energy = 0.0
    t = at(day, 0)
    for _ in range(1440):
        hm = datetime.fromtimestamp(t, PARIS).strftime("%H:%M")
        if hm in draws:
            temp -= draws[hm] / 200 * (temp - 15.0)
        learner.observe(t, temp, energy, C, 0.0, PARIS)
        t += 60


def test_a_draw_is_learnt_from_the_energy_balance_and_heating_is_not_a_draw() -> None:
    d = date(2026, 5, 4)
    learner = DrawLearner()
    learn(learner, d, {"07:00": 40.0, "19:30": 50.0})
    # heating: the energy counter and the temperature rise together, nothing drawn
    t, temp, energy = at(d + timedelta(days=1), 2), 40.0, 0.0
    for _ in range(60):
        learner.observe(t, temp, energy, C, 0.0, PARIS)
        t, temp, energy = t + 60, temp + 40 / C, energy + 40.0
    pattern = learner.pattern(d + timedelta(days=2))
    assert pattern is not None
    drawn = {k: round(v, 3) for k, v in enumerate(pattern) if v > 0}
    # 40 l of 200 from 55 °C with mains at 15 °C, read as a share above COLD_WATER_C
    share = 0.2 * (55 - 15) / (55 - COLD_WATER_C)
    assert set(drawn) == {7 * 4, 19 * 4 + 2}
    assert drawn[28] == pytest.approx(share, abs=0.01)
    assert learner.pattern(d) is None  # nothing learnt before that day


def planner_with(days: int, draws: dict[str, float], **kw: object) -> tuple[HeatPlanner, date]:
    heat = HeatPlanner(PARIS, **kw)  # type: ignore[arg-type]
    first = date(2026, 5, 4)
    learner = heat.draws.setdefault("water_heater", DrawLearner())
    for k in range(days):
        learn(learner, first + timedelta(days=k), draws)
    return heat, first + timedelta(days=days)


def test_no_forecast_or_no_draws_learnt_means_no_goal() -> None:
    heat, d = planner_with(1, {"07:00": 40.0})
    closes, until = at(d + timedelta(days=1), 6), at(d + timedelta(days=1), 22)
    assert heat.goal(at(d, 22), closes, until, tank(42.0)) is None  # no forecast
    heat.forecast = sunny(at(d, 18), d + timedelta(days=1), 4000.0)
    assert heat.goal(at(d, 22), closes, until, tank(42.0)) is not None
    heat.forecast = sunny(at(d, 18) - 37 * 3600, d + timedelta(days=1), 4000.0)  # stale
    assert heat.goal(at(d, 22), closes, until, tank(42.0)) is None
    fresh = HeatPlanner(PARIS)
    fresh.forecast = sunny(at(d, 18), d + timedelta(days=1), 4000.0)
    assert fresh.goal(at(d, 22), closes, until, tank(42.0)) is None  # no draws learnt


def test_evening_draws_and_a_sunny_tomorrow_need_no_offpeak_heating() -> None:
    heat, d = planner_with(2, {"19:30": 40.0, "21:00": 30.0})
    heat.forecast = sunny(at(d, 18), d + timedelta(days=1), 4000.0)
    tomorrow = d + timedelta(days=1)
    goal = heat.goal(at(d, 22), at(tomorrow, 6), at(tomorrow, 22), tank(40.0))
    assert goal is not None and goal.temp_c < 40.0  # the sun gets there before 19:30
    assert "enough until the next window" in goal.reason and goal.sun_wh > 5000
    # the same tomorrow without sun: heat, and enough for 19:30 and 21:00
    heat.forecast = sunny(at(d, 18), tomorrow, 0.0)
    goal = heat.goal(at(d, 22), at(tomorrow, 6), at(tomorrow, 22), tank(40.0))
    assert goal is not None and goal.temp_c is not None
    by_time = {datetime.fromtimestamp(s.start, PARIS).strftime("%H:%M"): s for s in goal.steps}
    assert by_time["19:30"].temp_c >= 45 + DRAW_MARGIN_K - 0.01
    assert by_time["21:00"].temp_c >= 45 + DRAW_MARGIN_K - 0.01


def test_morning_draws_set_the_goal_whatever_the_sun() -> None:
    heat, d = planner_with(2, {"07:00": 40.0, "07:15": 30.0})
    tomorrow = d + timedelta(days=1)
    heat.forecast = sunny(at(d, 18), tomorrow, 5000.0)
    goal = heat.goal(at(d, 22), at(tomorrow, 6), at(tomorrow, 22), tank(42.0))
    assert goal is not None and goal.temp_c is not None
    by_time = {datetime.fromtimestamp(s.start, PARIS).strftime("%H:%M"): s for s in goal.steps}
    assert by_time["07:15"].temp_c == pytest.approx(45 + DRAW_MARGIN_K, abs=0.05)  # no more
    assert 50.0 < goal.temp_c < 60.0


def test_a_target_is_met_by_its_deadline() -> None:
    targets = {"water_heater": [Target(52.0, 19 * 3600)]}
    heat, d = planner_with(1, {"07:00": 10.0}, targets=targets)
    tomorrow = d + timedelta(days=1)
    heat.forecast = sunny(at(d, 18), tomorrow, 0.0)  # no sun: the grid must do it
    goal = heat.goal(at(d, 22), at(tomorrow, 6), at(tomorrow, 22), tank(42.0))
    assert goal is not None and goal.temp_c is not None
    by_time = {datetime.fromtimestamp(s.start, PARIS).strftime("%H:%M"): s for s in goal.steps}
    assert by_time["19:00"].temp_c == pytest.approx(52.0, abs=0.05)  # no more


def tempo(colours: dict[date, str]) -> HeatPlanner:
    prices = {f"{c}_{p}": 0.1 for c in ("blue", "white", "red") for p in ("hp", "hc")}
    prices["red_hp"] = 0.66
    heat, _ = planner_with(1, {"07:00": 10.0})
    heat.tariff = Tariff("tempo", prices, offpeak=TEMPO_OFFPEAK)
    heat.colour_of = colours.get
    return heat


def test_red_day_tomorrow_heats_to_temp_max_tonight() -> None:
    d = date(2026, 5, 5)
    heat = tempo({d + timedelta(days=1): "red"})
    heat.forecast = sunny(at(d, 18), d + timedelta(days=1), 5000.0)
    goal = heat.goal(
        at(d, 22), at(d + timedelta(days=1), 6), at(d + timedelta(days=1), 22), tank(42.0)
    )
    assert goal is not None and goal.temp_c == 60.0 and "red day tomorrow" in goal.reason
    assert heat.red_peak(at(d + timedelta(days=1), 16))
    assert not heat.red_peak(at(d + timedelta(days=1), 23))  # a red day's night is off-peak
    assert not heat.red_peak(at(d, 16))


def test_no_boost_deficit_in_a_red_days_peak() -> None:
    d = date(2026, 1, 15)
    heat = tempo({d: "red"})
    planner = Planner([DAILY], PARIS, tank_litres={"water_heater": 200}, heat=heat)
    ctl = Controller([HEATER], PARIS, PolicyParams(), at(d, 15), planner=planner)
    heater = ctl.machines["water_heater"]
    heater.set_temperature(50.0, at(d, 15, 59))
    ctl.tick(at(d, 15, 59), MeterSnapshot(100.0, at(d, 15, 59)))
    heater.energy_today_wh = 100.0
    ctl.tick(at(d, 16), MeterSnapshot(100.0, at(d, 16)))
    checks = [e for e in planner.drain_events() if e.event == "check"]
    assert heater.state.value != "boost"
    assert "red day" in checks[0].detail


def test_eco_heats_to_the_planned_goal_instead_of_temp_eco() -> None:
    d = date(2026, 5, 6)
    heat, _ = planner_with(2, {"07:00": 40.0, "07:15": 30.0})
    heat.forecast = sunny(at(d, 18), d + timedelta(days=1), 5000.0)
    planner = Planner([NIGHT], PARIS, tank_litres={"water_heater": 200}, heat=heat)
    ctl = Controller([HEATER], PARIS, PolicyParams(), at(d, 21), planner=planner)
    heater = ctl.machines["water_heater"]
    t, temp = at(d, 22), 42.0
    while t < at(d + timedelta(days=1), 6):
        heater.set_temperature(temp, t)
        ctl.tick(t, MeterSnapshot(300.0, t))
        temp += heater.setpoint_w * 60 / 3600 / C - 0.25 / 60
        t += 60
    run = planner.runs.get("offpeak:water_heater")
    assert run is not None and run.planned and run.goal_c is not None
    assert run.goal_c > 50.0  # above temp_eco: the two morning draws need it
    assert temp == pytest.approx(run.goal_c, abs=0.6)
    events = planner.drain_events()
    plans = [e for e in events if e.event == "plan"]
    assert plans and "for the draws before the sun" in plans[0].detail
    assert planner.plan_version >= 1  # the shell publishes regulation/plan when this moves
    heater.set_temperature(temp, t)
    ctl.tick(t, MeterSnapshot(300.0, t))  # 06:00: the window closes, the plan against the tank
    closes = [e for e in planner.drain_events() if e.event == "close"]
    assert closes[0].detail == f"planned {run.goal_c:.1f} °C by the close, got {temp:.1f} °C"
    doc = planner.plan_doc(PARIS)["water_heater"]
    assert doc["goal_c"] == round(run.goal_c, 1) and "kWh of sun expected" in doc["reason"]
    assert doc["slots"][0]["start"].startswith(f"{d + timedelta(days=1)}T06:00")
    assert len(doc["slots"]) == 16 * 4  # 06:00 to the next window at 22:00, by quarter hours
    assert doc["grid_eur"] is None  # no tariff: no price


def test_calibration_learns_what_the_house_spares_of_the_forecast() -> None:
    d = date(2026, 5, 6)
    cal = SurplusCalibration()
    fc = sunny(at(d, 0), d, 4000.0)
    t = at(d, 0)
    while t < at(d, 23):
        pv = fc.power_at(t) or 0.0
        cal.observe(t, 0.6 * pv, fc, PARIS)  # the house keeps 40 % for itself
        t += 30
    assert cal.of(12) == pytest.approx(0.5 * 0.7 + 0.6 * 0.3, abs=0.01)  # one day's weight
    assert cal.of(3) == 0.5  # no sun at 03:00: the prior


# -- the simulator's forecasts -----------------------------------------------------------------


def flat_trace(days: int) -> Trace:
    start = datetime(2026, 5, 4, tzinfo=PARIS).timestamp()  # local midnight
    t = np.arange(days * 86400)
    hour = (t % 86400) / 3600.0
    pv = np.clip(np.sin(np.pi * (hour - 7) / 13), 0, None) * 4000.0
    return Trace("flat", start, pv, np.full_like(pv, 300.0))


def test_perfect_forecasts_are_the_traces_hourly_means_issued_the_evening_before() -> None:
    tr = flat_trace(4)
    truth = hourly_pv(tr)
    perfect = day_ahead(tr, PARIS, "perfect")
    assert len(perfect) == 4
    for f in perfect:
        issued = datetime.fromtimestamp(f.issued_at, PARIS)
        assert (issued.hour, issued.minute) == (18, 0)
        assert all(s.pv_w == pytest.approx(truth[s.start], abs=0.1) for s in f.slots)
    assert latest(perfect, perfect[2].issued_at + 1) is perfect[2]
    assert latest(perfect, perfect[0].issued_at - 1) is None


def test_realistic_forecasts_are_seeded_and_as_wrong_as_documented() -> None:
    tr = flat_trace(60)
    a = day_ahead(tr, PARIS, "realistic", seed=3)
    assert a == day_ahead(tr, PARIS, "realistic", seed=3)
    assert a != day_ahead(tr, PARIS, "realistic", seed=4)
    truth = hourly_pv(tr)
    ratios = []
    for f in a[1:]:
        day = datetime.fromtimestamp(f.issued_at, PARIS).date() + timedelta(days=1)
        lo, hi = at(day, 0), at(day + timedelta(days=1), 0)
        got = sum(s.pv_w for s in f.slots if lo <= s.start < hi)
        want = sum(v for k, v in truth.items() if lo <= k < hi)
        ratios.append(math.log(got / want))
    spread = float(np.std(ratios))
    assert SIGMA_DAY * 0.8 < spread < SIGMA_DAY * 1.6  # the day error, plus hours'
    with pytest.raises(ValueError, match="perfect, realistic"):
        day_ahead(tr, PARIS, "psychic")


def test_a_forecast_file_of_several_issues_names_its_bad_line(tmp_path) -> None:
    good = tmp_path / "issues.csv"
    good.write_text(
        "issued_at,start,pv_w\n"
        "2026-05-03T16:00:00Z,2026-05-04T10:00:00Z,2000\n"
        "2026-05-03T16:00:00Z,2026-05-04T11:00:00Z,2500\n"
        "2026-05-04T16:00:00Z,2026-05-05T10:00:00Z,100\n",
        encoding="utf-8",
    )
    issues = read_history(good)
    assert [len(f.slots) for f in issues] == [2, 1]
    assert issues[0].issued_at < issues[1].issued_at
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text() + "2026-05-04T16:00:00Z,2026-05-05T11:00:00Z,lots\n")
    with pytest.raises(ForecastError, match=r"bad.csv:5: pv_w"):
        read_history(bad)


def test_what_the_plan_learnt_survives_a_restart() -> None:
    heat, d = planner_with(2, {"07:00": 40.0})
    heat.surplus.ratio[12] = 0.8
    planner = Planner([NIGHT], PARIS, heat=heat)
    again = Planner([NIGHT], PARIS, saved=planner.dump(), heat=HeatPlanner(PARIS))
    assert again.heat is not None
    assert again.heat.draws["water_heater"].pattern(d) == heat.draws["water_heater"].pattern(d)
    assert again.heat.surplus.of(12) == 0.8


def test_the_service_plans_with_the_forecast_its_store_keeps(tmp_path) -> None:
    from machines.status import build_status
    from pvopt.service import Service
    from pvsim.servers.loopback import free_port
    from state.store import SqliteStore
    from tests.test_service import make_config

    db = tmp_path / "pvopt.db"
    d = date(2026, 5, 6)
    kept = sunny(at(d, 18), d + timedelta(days=1), 3000.0)
    store = SqliteStore(str(db))
    store.save_forecast(Forecast(kept.issued_at, "file", kept.slots), at(d, 18))
    store.close()
    fc = tmp_path / "fc.csv"
    fc.write_text("issued_at,start,pv_w\n", encoding="utf-8")
    cfg = make_config(
        tmp_path, free_port(), state={"path": str(db)}, forecast={"source": "file", "file": str(fc)}
    )
    svc = Service(cfg)
    try:
        assert svc.planner.heat is not None
        assert svc.planner.heat.forecast == Forecast(kept.issued_at, "file", kept.slots)
        doc = build_status(svc.ctl, None, None, at(d, 20), policy="default", dry_run=False)
        plan = {x["name"]: x.get("plan") for x in doc["loads"]}
        assert plan["water_heater"] == {
            "forecast": {"source": "file", "issued_at": kept.issued_at, "fresh": True},
            "planned_at": None,
            "goal_c": None,
            "reason": None,
        }
        assert plan["towel_rail"] is None  # no tank, no plan
    finally:
        svc.store.close()
    plain = Service(make_config(tmp_path, free_port(), state={"path": str(tmp_path / "b.db")}))
    try:
        assert plain.planner.heat is None  # no `forecast:`: today's rule, unchanged
    finally:
        plain.store.close()


def test_the_meters_tempo_colours_are_read_and_win_over_the_calendar() -> None:
    from machines.tariff import colours_from

    d = date(2027, 1, 11)
    doc = {"tempo_today": "white", "tempo_tomorrow": "red", "mobile_peak": 0}
    assert colours_from(doc, d) == {d: "white", d + timedelta(days=1): "red"}
    assert colours_from({"tempo_today": "BLEU", "tempo_tomorrow": "none"}, d) == {d: "blue"}
    assert colours_from({"tempo_today": 3}, d) == {}  # not a colour: nothing known
    heat = tempo({d + timedelta(days=1): "blue"})  # the calendar says blue
    heat.learn_colours(colours_from(doc, d))
    assert heat.red_peak(at(d + timedelta(days=1), 16))  # the meter said red
    assert heat.colour(at(d + timedelta(days=1), 5)) == "white"  # before 06:00: still today's


def test_the_service_takes_tempo_colours_from_the_decoded_register(tmp_path) -> None:
    from jobs.regulator import TempoColours
    from pvopt.service import Service
    from pvsim.servers.loopback import free_port
    from tests.test_service import make_config

    fc = tmp_path / "fc.csv"
    fc.write_text("issued_at,start,pv_w\n", encoding="utf-8")
    prices = {f"{c}_{p}": 0.2 for c in ("blue", "white", "red") for p in ("hp", "hc")}
    cfg = make_config(
        tmp_path,
        free_port(),
        state={"path": str(tmp_path / "pvopt.db")},
        forecast={"source": "file", "file": str(fc)},
        tariff={"kind": "tempo", "prices": prices},
    )
    svc = Service(cfg)
    try:
        now = at(date(2027, 1, 11), 12)
        svc.routes["tic/STGE/decoded"](b'{"tempo_today": "blue", "tempo_tomorrow": "red"}', now)
        svc.routes["tic/STGE/decoded"](b"not json", now)  # refused, logged, nothing queued
        item = svc.regulator.inbox.get_nowait()
        assert item == TempoColours({date(2027, 1, 11): "blue", date(2027, 1, 12): "red"})
        assert svc.regulator.inbox.empty()
        svc.regulator.inbox.put(item)
        svc.regulator._drain(now)
        assert svc.planner.heat is not None
        assert svc.planner.heat.colour(at(date(2027, 1, 12), 12)) == "red"
    finally:
        svc.store.close()


def test_a_day_half_watched_is_not_a_draw_pattern() -> None:
    """Started at noon, pvopt has not seen the morning: planning with that half day would
    leave the morning's showers cold."""
    d = date(2026, 5, 4)
    learner = DrawLearner()
    t, energy = at(d, 12), 0.0
    for _ in range(12 * 60):
        learner.observe(t, 55.0, energy, C, 0.0, PARIS)
        t += 60
    assert learner.pattern(d + timedelta(days=1)) is None
    learn(learner, d + timedelta(days=1), {"07:00": 40.0})
    assert learner.pattern(d + timedelta(days=2)) is not None
