"""`battery:` — a home battery beside the meter (docs/battery.md): its config, its presets and
the reader the meter listener feeds.

A battery inverter keeps the grid near 0 W, so the meter alone cannot tell a charging battery
from a discharging one: pvopt reads the battery's power and state of charge too. The reader
rides on the meter's source (`MeterSource.battery`), so the readings share its cache, lock,
rejection count and staleness, and reach the regulator in the same `MeterSnapshot`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from machines.meter import (
    BatteryState,
    MeterValueError,
    check_active,
    check_soc,
    json_number,
    json_object,
    parse_grid_payload,
    parse_number,
)
from machines.model import BatteryMode, BatteryPlan
from pvopt.kinds.base import MAX_POWER_W, Strict, Text, Topic

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
Published = list[tuple[str, str]]


class BatterySimConfig(Strict):
    """`battery.sim:` — the battery the simulator and the virtual house model (pvsim/battery.py)."""

    capacity_wh: float = Field(5000.0, gt=0, le=1_000_000)
    max_charge_w: float = Field(2500.0, gt=0, le=MAX_POWER_W)
    max_discharge_w: float = Field(2500.0, gt=0, le=MAX_POWER_W)
    efficiency: float = Field(0.9, gt=0, le=1)  # round trip; sqrt of it each way
    soc0: float = Field(50.0, ge=0, le=100)  # %, at the start of the trace
    period_s: float = Field(2.0, gt=0, le=60)  # the inverter's control period
    lag_s: float = Field(2.0, ge=0, le=60)  # how old the grid it acts on is
    min_soc: float = Field(10.0, ge=0, le=100)  # %, the inverter's own limits
    max_soc: float = Field(100.0, ge=0, le=100)


PresetName = Literal["generic", "victron", "homeassistant"]
PRESET_ONLY = {
    "generic": ("power_topic", "soc_topic", "power_json_key", "soc_json_key", "charge_positive"),
    "victron": ("portal_id", "instance", "keepalive_s"),
    "homeassistant": ("base_topic", "power_entity", "soc_entity", "charge_positive"),
}


class BatteryConfig(Strict):
    """`battery:`; absent, pvopt runs as without a battery."""

    preset: PresetName = "generic"
    # generic: a topic pair, bare numbers or JSON at a dotted key
    power_topic: Topic | None = None
    soc_topic: Topic | None = None
    power_json_key: Text | None = None
    soc_json_key: Text | None = None
    charge_positive: bool | None = None  # the power's sign: None is the preset's
    # victron: Venus OS on MQTT
    portal_id: Text | None = None
    instance: int | None = Field(None, ge=0, le=65535)
    keepalive_s: float = Field(30.0, ge=1, le=55)  # Venus stops publishing 60 s after the last
    # homeassistant: another bridge's sensors through MQTT Statestream
    base_topic: Topic = "homeassistant"
    power_entity: Text | None = None
    soc_entity: Text | None = None
    # what a policy makes of it (machines/policy/)
    mode: BatteryMode = BatteryMode.BATTERY_FIRST
    soc_target: float = Field(90.0, ge=0, le=100)
    reserve_soc: float = Field(20.0, ge=0, le=100)
    soc_by_time: str = "15:00"
    stale_after_s: float = Field(120.0, gt=0, le=3600)
    response_s: float = Field(10.0, gt=0, le=600)
    tolerance_w: float = Field(50.0, ge=0, le=10_000)
    forced_from_battery: bool = False
    cold_tank_from_battery: bool = False
    residual_w: float = Field(0.0, ge=0, le=10_000)
    sim: BatterySimConfig = BatterySimConfig()

    @field_validator("soc_by_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.match(value):
            raise ValueError(f"{value!r} is not 'HH:MM'")
        return value

    def plan(self) -> BatteryPlan:
        """What the policy needs of this block."""
        hh, mm = map(int, self.soc_by_time.split(":"))
        return BatteryPlan(
            self.mode,
            self.soc_target,
            self.reserve_soc,
            hh * 3600 + mm * 60,
            self.response_s,
            self.tolerance_w,
            self.forced_from_battery,
            self.cold_tank_from_battery,
            self.residual_w,
        )


def battery_problems(b: BatteryConfig) -> list[tuple[tuple[str, ...], str]]:
    """What pydantic cannot see one field at a time: (key under `battery`, what is wrong)."""
    out: list[tuple[tuple[str, ...], str]] = []
    given = b.model_fields_set
    for key in sorted(given):
        owners = [p for p, keys in PRESET_ONLY.items() if key in keys]
        if owners and b.preset not in owners:
            out.append(((key,), f"only with preset {' or '.join(owners)} (preset is {b.preset})"))
    need = {
        "generic": ("power_topic",),
        "victron": ("portal_id", "instance"),
        "homeassistant": ("power_entity",),
    }[b.preset]
    for key in need:
        if getattr(b, key) is None:
            out.append(((), f"preset {b.preset} needs battery.{key}"))
    for key in ("power_entity", "soc_entity"):
        entity = getattr(b, key)
        if entity is not None and not re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", entity):
            out.append(((key,), f"{entity!r} is not an entity id such as sensor.battery_power"))
    if b.reserve_soc >= b.soc_target:
        out.append(
            (("reserve_soc",), f"{b.reserve_soc:g} % is not below soc_target {b.soc_target:g} %")
        )
    s = b.sim
    if s.min_soc >= s.max_soc:
        out.append((("sim", "min_soc"), f"{s.min_soc:g} % is not below max_soc {s.max_soc:g} %"))
    elif not s.min_soc <= s.soc0 <= s.max_soc:
        out.append((("sim", "soc0"), f"{s.soc0:g} % is outside min_soc-max_soc"))
    return out


# -- the readings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatteryTopics:
    """Where a preset's two readings come from and how they read (None: bare numbers)."""

    power: str
    soc: str | None
    power_key: str | None
    soc_key: str | None
    charge_positive: bool
    keepalive: str | None = None  # Venus OS: publish here every keepalive_s, or it goes quiet


def battery_topics(b: BatteryConfig) -> BatteryTopics:
    """The topics of a validated `battery:` block, by its preset."""
    if b.preset == "victron":
        # Venus OS dbus-flashmq: N/<portal ID>/<service type>/<instance>/<D-Bus path>, each
        # payload {"value": ...}; com.victronenergy.battery's /Dc/0/Power (W, + charging) and
        # /Soc (%); R/<portal ID>/keepalive wakes it (docs/battery.md has the sources)
        base = f"N/{b.portal_id}/battery/{b.instance}"
        return BatteryTopics(
            f"{base}/Dc/0/Power",
            f"{base}/Soc",
            "value",
            "value",
            charge_positive=True,
            keepalive=f"R/{b.portal_id}/keepalive",
        )
    if b.preset == "homeassistant":
        # MQTT Statestream: <base_topic>/<domain>/<object id>/state, the bare state; Home
        # Assistant's battery power is + discharging (its energy dashboard's convention)
        def state(entity: str | None) -> str | None:
            return None if entity is None else f"{b.base_topic}/{entity.replace('.', '/', 1)}/state"

        power = state(b.power_entity)
        assert power is not None  # battery_problems saw to it
        sign = False if b.charge_positive is None else b.charge_positive
        return BatteryTopics(power, state(b.soc_entity), None, None, sign)
    assert b.power_topic is not None
    sign = True if b.charge_positive is None else b.charge_positive
    return BatteryTopics(b.power_topic, b.soc_topic, b.power_json_key, b.soc_json_key, sign)


KEEPALIVE_FIRST = ""  # an empty keep-alive: Venus republishes every topic at once
KEEPALIVE_NEXT = json.dumps({"keepalive-options": ["suppress-republish"]})


class BatteryReader:
    """The battery's two readings, fed by the meter's source (not thread-safe: `MeterCache`
    serialises the calls)."""

    def __init__(self, cfg: BatteryConfig):
        self.cfg = cfg
        self.where = battery_topics(cfg)
        self.state = BatteryState()
        w = self.where
        self.topics = frozenset(t for t in (w.power, w.soc) if t)

    def _number(self, payload: bytes, key: str | None) -> float:
        if key is None:
            return parse_number(payload)
        if key == "value":  # Venus OS; {"value": null} (no such value now) is refused
            doc = json_object(payload)
            if "value" not in doc:
                raise MeterValueError("no 'value' in the payload")
            return json_number(doc["value"], "value")
        return parse_grid_payload(payload, key, False)

    def feed(self, topic: str, payload: bytes, now: float) -> None:
        """Take one of `topics`; MeterValueError if bad (the reading is kept)."""
        w, st = self.where, self.state
        if topic == w.power:
            value = check_active(self._number(payload, w.power_key), topic)
            value = value if w.charge_positive else -value
            self.state = BatteryState(value, now, st.soc, st.soc_at)
        elif topic == w.soc:
            soc = check_soc(self._number(payload, w.soc_key), topic)
            self.state = BatteryState(st.power_w, st.power_at, soc, now)
        else:
            raise MeterValueError(f"not a battery topic: {topic}")

    def readings(self, now: float) -> tuple[float | None, float | None]:
        """(battery_w + charging, battery_soc %), None where absent or stale."""
        return self.state.readings(now, self.cfg.stale_after_s)

    def keepalive(self, first: bool) -> Published:
        """What the edge sends every `keepalive_s` for the battery to speak (Venus OS)."""
        topic = self.where.keepalive
        if topic is None:
            return []
        return [(topic, KEEPALIVE_FIRST if first else KEEPALIVE_NEXT)]

    def publish(self, charge_w: float, soc: float) -> Published:
        """(topic, payload) the battery's bridge sends: the virtual house's side."""
        w = self.where
        power = charge_w if w.charge_positive else -charge_w

        def body(value: float, key: str | None) -> str:
            if key is None:
                return f"{value:.1f}"
            node: object = round(value, 1)
            for part in reversed(key.split(".")):
                node = {part: node}
            return json.dumps(node)

        out = [(w.power, body(power, w.power_key))]
        if w.soc is not None:
            out.append((w.soc, body(soc, w.soc_key)))
        return out
