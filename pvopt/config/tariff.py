"""`tariff:` — what the grid charges and pays, for the money pvopt shows (docs/tariff.md).

The prices are the user's: none is built in. `offpeak` gives the off-peak hours; Tempo's are
22:00-06:00 unless given.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from machines.tariff import PRICE_KEYS, TEMPO_OFFPEAK, Tariff
from pvopt.kinds import Strict
from pvopt.kinds.base import DailyWindow, Topic, window_seconds


class TariffConfig(Strict):
    kind: Literal["base", "hphc", "tempo"]
    prices: dict[str, float]  # €/kWh by key: base | hp, hc | blue_hp … red_hc
    export: float = Field(0.0, ge=0, le=10)  # €/kWh paid for export
    offpeak: list[DailyWindow] | None = None
    # tempo: where today's and tomorrow's colours come from (`pvopt tic`'s decoded STGE)
    colour_topic: Topic = "tic/STGE/decoded"

    @model_validator(mode="after")
    def _keys(self) -> TariffConfig:
        want = PRICE_KEYS[self.kind]
        missing = [k for k in want if k not in self.prices]
        extra = [k for k in self.prices if k not in want]
        if missing or extra:
            raise ValueError(
                f"a {self.kind} tariff has prices {', '.join(want)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        bad = [k for k, v in self.prices.items() if not 0 <= v <= 10]
        if bad:
            raise ValueError(f"prices {', '.join(bad)}: €/kWh between 0 and 10")
        if self.kind == "hphc" and not self.offpeak:
            raise ValueError('an hphc tariff needs its off-peak hours: offpeak: ["22:00-06:00"]')
        if self.kind == "base" and self.offpeak:
            raise ValueError("a base tariff has no off-peak hours: drop `offpeak`")
        return self

    def tariff(self) -> Tariff:
        if self.offpeak is not None:
            windows = tuple(window_seconds(w) for w in self.offpeak)
        else:
            windows = TEMPO_OFFPEAK if self.kind == "tempo" else ()
        return Tariff(self.kind, dict(self.prices), self.export, windows)
