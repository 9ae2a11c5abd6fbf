"""The households and tariffs the heating plan is measured on, shared by `bench/planning.py`
and the tests (docs/planning.md): the example house with its off-peak window on the tariff's
hours, and the same house with evening showers."""

from __future__ import annotations

from typing import Any

import yaml

from pvopt.config import Config, parse
from pvopt.examples import config_path

HPHC: dict[str, Any] = {
    "kind": "hphc",
    "prices": {"hp": 0.2700, "hc": 0.2068},
    "export": 0.04,
    "offpeak": ["22:00-06:00"],
}
# Tempo's 2025 prices (€/kWh, 6 kVA): the user's own in real life, never shipped as defaults
TEMPO_PRICES = {
    "blue_hp": 0.1552,
    "blue_hc": 0.1288,
    "white_hp": 0.1792,
    "white_hc": 0.1447,
    "red_hp": 0.6586,
    "red_hc": 0.1518,
}
EVENING_DRAWS = [["07:00", 15], ["19:30", 60], ["21:00", 60]]


def plan_house(
    tariff: dict[str, Any],
    draws: list[list[Any]] | None = None,
    pessimism: float = 0.7,
    **sim: Any,
) -> Config:
    """The example house on `tariff`, its `eco` window on the off-peak hours 22:00-06:00;
    `draws` replace its hot-water draws, `sim` adds `sim:` keys (`tempo_calendar`)."""
    raw = yaml.safe_load(config_path("house").read_text(encoding="utf-8"))
    raw["tariff"] = tariff
    raw["planning"] = {"pessimism": pessimism}
    raw["schedules"][0]["window"] = "22:00-06:00"
    raw.setdefault("sim", {}).update(sim)
    if draws is not None:
        raw["sim"]["draws"] = draws
    return parse(yaml.safe_dump(raw), "planning:house")
