"""Which price applies when: the grid tariff as pure data (docs/tariff.md).

A tariff names its prices by key: `base`; `hp`/`hc` (peak, off-peak); Tempo's six
`blue_hp` … `red_hc`. A Tempo day runs from 06:00 to 06:00 the next morning, its off-peak
hours 22:00-06:00; its colour comes from outside (the Linky's STGE, a calendar) and a day
whose colour is unknown is priced blue, the colour of about 300 days a year.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from machines.value import value

DAY_S = 86400
COLOURS = ("blue", "white", "red")
TEMPO_DAY_STARTS_S = 6 * 3600
TEMPO_OFFPEAK = ((22 * 3600, 6 * 3600),)
PRICE_KEYS: dict[str, tuple[str, ...]] = {
    "base": ("base",),
    "hphc": ("hp", "hc"),
    "tempo": tuple(f"{c}_{p}" for c in COLOURS for p in ("hp", "hc")),
}

Window = tuple[int, int]  # (start, end) seconds of the local day; end < start wraps midnight


def in_window(second_of_day: float, w: Window) -> bool:
    a, b = w
    return a <= second_of_day < b if a <= b else (second_of_day >= a or second_of_day < b)


def tempo_day(local: datetime) -> date:
    """The Tempo day `local` belongs to: before 06:00 it is still yesterday's."""
    day = local.date()
    return day - timedelta(days=1) if local.hour * 3600 < TEMPO_DAY_STARTS_S else day


@value
class Tariff:
    kind: str  # a key of PRICE_KEYS
    prices: Mapping[str, float]  # €/kWh by key, the user's own
    export: float = 0.0  # €/kWh paid for exported energy
    offpeak: tuple[Window, ...] = ()
    boundaries: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        edges = {s for w in self.offpeak for s in w}
        if self.kind == "tempo":
            edges.add(TEMPO_DAY_STARTS_S)
        object.__setattr__(self, "boundaries", tuple(sorted(edges)))

    def is_offpeak(self, second_of_day: float) -> bool:
        return any(in_window(second_of_day, w) for w in self.offpeak)

    def key(self, local: datetime, colour: str | None = None) -> str:
        """The price key in force at `local`; `colour`: the Tempo day's (None: blue)."""
        if self.kind == "base":
            return "base"
        sod = local.hour * 3600 + local.minute * 60 + local.second
        period = "hc" if self.is_offpeak(sod) else "hp"
        if self.kind == "hphc":
            return period
        return f"{colour or 'blue'}_{period}"

    def seconds_to_change(self, local: datetime) -> int:
        """Seconds from `local` to the next instant the key may change (≥ 1)."""
        sod = local.hour * 3600 + local.minute * 60 + local.second
        if not self.boundaries:
            return DAY_S - sod
        return min((b - sod) % DAY_S or DAY_S for b in self.boundaries)

    def cost_eur(self, import_wh: Mapping[str, float], export_wh: float) -> float:
        """What the grid bills: each key's import at its price, less the export paid."""
        bought = sum(wh * self.prices[k] for k, wh in import_wh.items())
        return (bought - export_wh * self.export) / 1000.0


# the Tempo colour as meters and bridges spell it: `pvopt tic`'s blue/white/red, the Linky's own
COLOUR_NAMES = {
    "blue": "blue",
    "bleu": "blue",
    "white": "white",
    "blanc": "white",
    "blan": "white",
    "red": "red",
    "rouge": "red",
    "roug": "red",
}


def colours_from(doc: Mapping[str, object], today: date) -> dict[date, str]:
    """The Tempo days a decoded status register names (`tempo_today`, `tempo_tomorrow`):
    `today` is the Tempo day the reading belongs to. "none" (not announced yet, the normal
    state until late morning) and anything unknown name no day."""
    out: dict[date, str] = {}
    for key, day in (("tempo_today", today), ("tempo_tomorrow", today + timedelta(days=1))):
        value = doc.get(key)
        colour = COLOUR_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
        if colour is not None:
            out[day] = colour
    return out


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """Local midnight to the next local midnight (23 or 25 h on DST days), as epoch seconds."""
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return int(start.timestamp()), int(end.timestamp())


def money(
    intervals: list[dict[str, Any]],
    names: list[str],
    tariff: Tariff,
    tz: ZoneInfo,
    colour_of: Callable[[date], str | None] | None = None,
) -> dict[str, Any]:
    """What the grid billed and what the solar saved, priced interval by interval (docs/tariff.md).

    Each load's energy in an interval is split into solar and grid by priority order (`names`):
    the surplus the interval diverted serves the first loads first, as the regulator does. The
    solar a load took is worth what it would have cost from the grid, less the export it
    replaced. A Tempo day is priced by `colour_of` (the colours the meter announced), blue when
    unknown: the history does not keep them."""
    bought = paid = 0.0
    loads = {n: {"grid_wh": 0.0, "grid_eur": 0.0, "solar_wh": 0.0, "solar_eur": 0.0} for n in names}
    for doc in intervals:
        g = doc["grid"]
        mid = datetime.fromtimestamp(doc["end"] - doc["interval_s"] / 2, tz)
        colour = None if colour_of is None else colour_of(tempo_day(mid))
        price = tariff.prices[tariff.key(mid, colour)]
        bought += g.get("import_wh", 0.0) * price / 1000.0
        paid += g.get("export_wh", 0.0) * tariff.export / 1000.0
        left = g.get("diverted_wh", 0.0)
        for name in names:
            wh = doc["loads"].get(name, {}).get("energy_wh", 0.0)
            solar = min(wh, max(left, 0.0))
            left -= solar
            acc = loads[name]
            acc["solar_wh"] += solar
            acc["solar_eur"] += solar * (price - tariff.export) / 1000.0
            acc["grid_wh"] += wh - solar
            acc["grid_eur"] += (wh - solar) * price / 1000.0
    return {
        "cost_eur": round(bought - paid, 3),
        "import_eur": round(bought, 3),
        "export_eur": round(paid, 3),
        "loads": {
            n: {k: round(v, 3 if k.endswith("eur") else 2) for k, v in acc.items()}
            for n, acc in loads.items()
        },
    }
