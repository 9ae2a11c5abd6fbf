"""`regulation:` — the policy and its tuning (docs/regulation.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from machines.policy import POLICIES, PolicyParams, flat_names
from pvopt.kinds import MAX_POWER_W, Strict


class RegulationConfig(Strict):
    policy: str = "default"
    # which relay rule: the meter's alone, or the sun-aware one (meter.pv_topic and the site's
    # position; docs/regulation.md says where each wins)
    relay_rule: Literal["meter", "sun"] = "meter"
    tick_s: float = Field(5.0, gt=0, le=60)
    balance_band_w: float = Field(50.0, ge=0, le=5000)
    margin_w: float = Field(100.0, ge=0, le=5000)
    band_min_w: float = Field(8.0, ge=0, le=5000)  # the band and margin on a quiet meter
    margin_min_w: float = Field(4.0, ge=0, le=5000)
    settle_s: float = Field(1.5, ge=0, le=60)
    command_refresh_s: float = Field(60.0, gt=0, le=3600)
    relay_on_delay_s: float = Field(60.0, ge=0, le=3600)
    relay_stop_deficit_wh: float = Field(7.5, ge=0, le=1000)
    relay_start_headroom_w: float = Field(300.0, ge=0, le=MAX_POWER_W)
    relay_stop_tolerance_w: float = Field(0.0, ge=0, le=MAX_POWER_W)
    # the sun-aware relay rule, with meter.pv_topic and the site's position
    sun_horizon_s: float = Field(600.0, ge=60, le=7200)
    sun_tau_s: float = Field(600.0, ge=30, le=7200)
    sun_caution: float = Field(0.0, ge=0, le=5)
    sun_start_headroom_w: float = Field(100.0, ge=-MAX_POWER_W, le=MAX_POWER_W)
    sun_on_delay_s: float = Field(30.0, ge=0, le=3600)
    sun_stop_deficit_wh: float = Field(30.0, ge=0, le=1000)
    sun_stop_short_wh: float = Field(7.5, ge=0, le=1000)

    @field_validator("policy")
    @classmethod
    def _registered(cls, value: str) -> str:
        if POLICIES.find(value) is None:
            raise ValueError(POLICIES.unknown_message(value))
        return value

    @model_validator(mode="after")
    def _floors_below_maxima(self) -> RegulationConfig:
        if self.band_min_w > self.balance_band_w:
            raise ValueError("band_min_w must not exceed balance_band_w")
        if self.margin_min_w > self.margin_w:
            raise ValueError("margin_min_w must not exceed margin_w")
        return self

    def params(self) -> PolicyParams:
        """The policy's tuning: the keys set here, in their groups; the rest at their defaults."""
        tunables = set(flat_names()) & set(type(self).model_fields)
        return PolicyParams.from_flat(self.policy, **self.model_dump(include=tunables))
