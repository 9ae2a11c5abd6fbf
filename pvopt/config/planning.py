"""`planning:` — how the heating plan reads the forecast (docs/planning.md)."""

from __future__ import annotations

from pydantic import Field

from pvopt.kinds import Strict


class PlanningConfig(Strict):
    # the share of the forecast the plan counts on: below 1, a cloudier day than forecast
    # still finds the water warm; the grid top-up is released as real sun arrives
    pessimism: float = Field(0.7, gt=0, le=1)
