"""The heating plan in the simulator (docs/planning.md): cheaper than today's rule with no more
cold draws where the sun can stand in for the night, today's rule again without a fresh
forecast, and never a red-day peak's grid heating. The full frontier is `bench/planning.py`'s."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from machines.forecast import Forecast, Slot
from pvopt.examples import trace_path
from pvsim.forecasts import day_ahead, hourly_pv
from pvsim.planning_cases import EVENING_DRAWS, HPHC, TEMPO_PRICES, plan_house
from pvsim.simulator import simulate
from pvsim.traces import Trace, chain, load_trace, window


@pytest.fixture(scope="module")
def spring() -> Trace:
    return window(load_trace(trace_path("week_spring")), 0, 4 * 86400)


KEYS = ("cost_eur", "cold_draws", "grid_heating_wh", "import_wh")


def test_the_plan_is_cheaper_with_no_more_cold_draws_where_the_sun_can_do_it(
    spring: Trace,
) -> None:
    cfg = plan_house(HPHC, EVENING_DRAWS)
    rule = simulate(spring, cfg).kpis
    planned = simulate(spring, cfg, forecasts=day_ahead(spring, cfg.site.tz, "realistic")).kpis
    assert planned["cold_draws"] <= rule["cold_draws"]
    assert planned["cost_eur"] <= 0.95 * rule["cost_eur"]
    assert planned["grid_heating_wh"] < rule["grid_heating_wh"] - 2000
    plans = [e for e in planned["schedule_events"] if e["event"] == "plan"]
    assert any("kWh of sun expected" in e["detail"] for e in plans)
    # the money adds up: the keys sum to the import, the cost to their price
    by_key = planned["import_by_tariff_wh"]
    assert sum(by_key.values()) == pytest.approx(planned["import_wh"], abs=0.5)
    cost = (
        sum(wh * HPHC["prices"][k] for k, wh in by_key.items()) - planned["export_wh"] * 0.04
    ) / 1000
    assert planned["cost_eur"] == pytest.approx(cost, abs=0.002)


def test_without_a_fresh_forecast_the_result_is_todays_rule(spring: Trace) -> None:
    cfg = plan_house(HPHC, EVENING_DRAWS)
    rule = simulate(spring, cfg).kpis
    slots = tuple(Slot(t, pv) for t, pv in hourly_pv(spring).items())
    old = [Forecast(int(spring.start) - 40 * 3600, "old", slots)]  # every hour, issued too early
    stale = simulate(spring, cfg, forecasts=old).kpis
    assert {k: stale[k] for k in KEYS} == {k: rule[k] for k in KEYS}
    plans = {e["detail"] for e in stale["schedule_events"] if e["event"] == "plan"}
    assert plans == {"no fresh forecast or no draws learnt: today's rule"}


def test_a_tempo_red_day_never_heats_from_the_grid_in_its_peak_hours() -> None:
    days = [load_trace(trace_path(n)) for n in ("overcast_winter", "heldout_grey") * 2]
    tr = chain("winter", days, datetime(2017, 1, 9, tzinfo=UTC).timestamp())
    red = {date(2017, 1, 11): "red", date(2017, 1, 12): "red"}
    cfg = plan_house({"kind": "tempo", "prices": TEMPO_PRICES, "export": 0.0}, tempo_calendar=red)
    more = {"min_energy_today_wh": 6000, "min_energy_two_days_wh": 12000}
    daily = cfg.schedules[1].model_copy(update=more)
    cfg = cfg.model_copy(update={"schedules": [cfg.schedules[0], daily]})  # boosts every day
    rule = simulate(tr, cfg).kpis
    planned = simulate(tr, cfg, forecasts=day_ahead(tr, cfg.site.tz, "realistic")).kpis
    assert rule["forced_heating_by_tariff_wh"]["red_hp"] > 500  # today's 16:00 boost
    assert planned["forced_heating_by_tariff_wh"]["red_hp"] == 0
    assert planned["cold_draws"] <= rule["cold_draws"]
    assert planned["cost_eur"] < rule["cost_eur"]
