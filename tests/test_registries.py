"""The registries: a load kind, a meter source and a policy added from outside the package,
through their registrations only, run end to end in the simulator; unknown names are refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import pytest

from machines.meter import GridState, parse_number
from machines.model import Decision, Kind, MeterSnapshot, PolicyMemo
from machines.policy import (
    POLICIES,
    Frame,
    Policy,
    PolicyParams,
    get_policy,
    register_policy,
)
from pvopt import config
from pvopt.kinds import (
    LOAD_KINDS,
    METER_SOURCES,
    DimmerEquipment,
    HouseReading,
    LoadKind,
    MeterConfig,
    MeterSource,
    SpecFields,
    UnknownLoadKind,
    load_kind,
    meter_source,
    register_load_kind,
    register_meter_source,
)
from pvsim.physics import PHYSICS, LoadPhysics, register_physics
from pvsim.simulator import simulate
from pvsim.traces import Trace
from tests.conftest import T0


class ToyRadiator(DimmerEquipment):
    """A towel rail on a linear dimmer that takes its command in watts."""

    type: Literal["ToyRadiator"]

    def spec_fields(self) -> SpecFields:
        return {"max_w": self.max_power, "min_power_w": self.min_power_w}

    def curve(self) -> str:
        return "linear"


class KilowattMeter(MeterSource):
    """A meter that publishes signed grid power in kW with three decimals on one topic."""

    kind = "toy-kw"
    TOPIC = "toy/grid_kw"

    def __init__(self, cfg: MeterConfig):
        super().__init__(cfg)
        self.state = GridState()

    def meter_topics(self) -> frozenset[str]:
        return frozenset({self.TOPIC})

    def feed_meter(self, topic: str, payload: bytes, now: float) -> bool:
        self.state = GridState(parse_number(payload) * 1000.0, now)
        return True

    def meter_snapshot(self, now: float) -> MeterSnapshot:
        return self.state.snapshot(now, self.cfg.stale_after_s)

    def newest_at(self) -> float | None:
        return self.state.at

    def publish(self, reading: HouseReading) -> list[tuple[str, str]]:
        return [(self.TOPIC, f"{reading.grid_w / 1000.0:.3f}")]


PHYSICS_USED: list[str] = []


def toy_physics(eq: object, spec: object, cfg: object) -> LoadPhysics:
    assert isinstance(eq, ToyRadiator)
    PHYSICS_USED.append(eq.name)
    return LoadPhysics(eq.max_power)


TOY_CONFIG = """
meter: {kind: toy-kw}
equipment:
  - {type: ToyRadiator, name: radiator, max_power: 1500}
  - {type: ConstantPowerEquipment, name: pump, nominal_power: 400}
"""


@pytest.fixture
def toys() -> Iterator[None]:
    register_load_kind(LoadKind(ToyRadiator, Kind.DIMMER, command_topic="toy/{id}/set"))
    register_physics("ToyRadiator", toy_physics)
    register_meter_source(KilowattMeter)
    yield
    LOAD_KINDS.unregister("ToyRadiator")
    PHYSICS.unregister("ToyRadiator")
    METER_SOURCES.unregister("toy-kw")


def sunny_hour() -> Trace:
    """One hour at 10:00 with 3 kW of PV over a 300 W base load."""
    n = 3600
    return Trace("sunny", T0, np.full(n, 3000.0), np.full(n, 300.0))


@pytest.mark.usefixtures("toys")
def test_toy_load_and_meter_run_in_the_simulator() -> None:
    cfg = config.parse(TOY_CONFIG, "toy.yml", environ={})
    radiator = next(w for w in cfg.wiring() if w.spec.name == "radiator")
    assert radiator.command_topic == "toy/0/set" and radiator.temperature_topic is None
    assert radiator.payload(750) == "50.0" and radiator.spec.kind is Kind.DIMMER
    PHYSICS_USED.clear()
    k = simulate(sunny_hour(), cfg).kpis
    assert PHYSICS_USED == ["radiator"]
    assert k["loads"]["radiator"]["energy_wh"] > 1400  # 1.5 kW for (nearly) the whole hour
    assert k["loads"]["pump"]["energy_wh"] > 0  # the relay after it got the rest
    assert k["import_wh"] == 0.0 and k["capture"] > 0.95


@pytest.mark.usefixtures("toys")
def test_toy_meter_feeds_the_service_cache() -> None:
    from jobs.meter_cache import MeterCache

    cfg = config.parse(TOY_CONFIG, "toy.yml", environ={})
    cache = MeterCache(meter_source(cfg.meter), started_at=T0)
    assert isinstance(cache.source, KilowattMeter) and cache.kick_delay_s == 0.0
    assert "toy/grid_kw" in cache.topics
    assert cache.feed("toy/grid_kw", b"-1.250", T0 + 1)
    assert cache.snapshot(T0 + 2).grid_w == -1250.0


def test_unregistered_kinds_are_refused_with_the_closest_name() -> None:
    with pytest.raises(config.ConfigError) as info:
        config.parse(TOY_CONFIG, "toy.yml", environ={})
    text = str(info.value)
    assert "toy.yml:2: meter.kind: unknown meter kind 'toy-kw'" in text
    assert "toy.yml:4: equipment[0].type: unknown type 'ToyRadiator'" in text
    assert "(valid: VariablePowerEquipment, TempDrivenVariablePowerEquipment" in text
    with pytest.raises(UnknownLoadKind, match="unknown type 'ConstantPower'; did you mean"):
        load_kind("ConstantPower")


@pytest.mark.usefixtures("toys")
def test_a_kind_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_load_kind(LoadKind(ToyRadiator, Kind.RELAY, command_topic="x/{id}"))
    with pytest.raises(ValueError, match="already registered"):
        register_meter_source(KilowattMeter)


def test_a_policy_is_chosen_by_its_registered_name() -> None:
    def seedish(frame: Frame, params: PolicyParams, now: float, memo: PolicyMemo) -> Decision:
        return get_policy("legacy").spread(frame, params, now, memo)

    text = (
        "regulation: {policy: seedish}\n"
        "equipment: [{type: ConstantPowerEquipment, name: p, nominal_power: 400}]\n"
    )
    with pytest.raises(config.ConfigError, match="unknown policy 'seedish'"):
        config.parse(text, environ={})
    register_policy(Policy("seedish", seedish, tops_up=False, seed_rule=True))
    try:
        cfg = config.parse(text, environ={})
        assert cfg.regulation.params().name == "seedish"
        k = simulate(sunny_hour(), cfg).kpis
        assert k["policy"] == "seedish" and k["loads"]["p"]["energy_wh"] > 0
    finally:
        POLICIES.unregister("seedish")
