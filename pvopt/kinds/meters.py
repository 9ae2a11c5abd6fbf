"""The meter-source registry: one `MeterSource` class per `meter.kind`, registered by its module,
and the meter presets (`meter.preset`): shipped devices whose topics follow from the device's
name, each resolving to a source (pvopt/kinds/meter_presets.py).

A source knows its MQTT topics, how to read them into a `MeterSnapshot`, how long to wait
before deciding on a fresh value, and what a virtual house publishes to imitate the meter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from machines.meter import MeterValueError, parse_grid_payload
from machines.model import MeterSnapshot
from machines.registry import Registry
from pvopt.kinds.base import Strict, Text, Topic
from pvopt.kinds.battery import BatteryConfig, BatteryReader


class MeterTopics(Strict):
    sinsts: Topic = "tic/SINSTS"
    sinsti: Topic = "tic/SINSTI"
    erqt: Topic = "tic/ERQT"


KIND_KEYS = ("topics", "grid_topic", "json_key", "invert")  # what a preset defines itself


class MeterConfig(Strict):
    kind: str = "linky"
    preset: Text | None = None  # a shipped device instead of a kind (kinds/meter_presets.py)
    topic: Topic | None = None  # a preset's device name on MQTT
    channel: int = Field(0, ge=0, le=3)  # a preset's meter channel (Shelly EM1 / Gen1 emeter)
    topics: MeterTopics = MeterTopics()
    grid_topic: Topic | None = None
    json_key: Text | None = None
    invert: bool = False
    pv_topic: Topic | None = None
    pv_json_key: Text | None = None  # the PV power's dotted key in a JSON payload (docs/meter.md)
    tariff_topic: Topic = "tic/PTEC"
    offpeak_values: list[Text] = ["HC..", "HC", "HEURE CREUSE", "HEURES CREUSES"]
    stale_after_s: float = Field(30.0, gt=0, le=3600)

    @field_validator("kind")
    @classmethod
    def _registered(cls, value: str) -> str:
        if METER_SOURCES.find(value) is None:
            raise ValueError(METER_SOURCES.unknown_message(value))
        return value

    @field_validator("preset")
    @classmethod
    def _preset_registered(cls, value: str | None) -> str | None:
        if value is not None and METER_PRESETS.find(value) is None:
            raise ValueError(METER_PRESETS.unknown_message(value))
        return value

    @model_validator(mode="after")
    def _source_needs(self) -> MeterConfig:
        given = self.model_fields_set
        if self.preset is None:
            stray = [k for k in ("topic", "channel") if k in given]
            if stray:
                raise ValueError(f"{', '.join(stray)}: only with meter.preset")
            source = METER_SOURCES.find(self.kind)
            if source is not None:
                source.check_config(self)
            return self
        preset = METER_PRESETS.find(self.preset)
        if preset is None:
            return self  # the field's own error says it
        if "kind" in given:
            raise ValueError(
                f"meter.preset and meter.kind together: give one (preset {self.preset} "
                "is read its own way)"
            )
        own = [k for k in KIND_KEYS if k in given]
        if own:
            raise ValueError(
                f"{', '.join(own)}: only for meter.kind (preset {self.preset} defines its topics "
                "and sign)"
            )
        if self.topic is None:
            raise ValueError(
                f"preset {self.preset} needs meter.topic: the device's name on MQTT "
                f"({preset.topic_hint})"
            )
        if "channel" in given and not preset.uses_channel:
            raise ValueError(f"channel: preset {self.preset} has one meter, no channel to choose")
        return self


@dataclass(frozen=True, slots=True)
class HouseReading:
    """The true flows at a simulated meter, for a source to publish as the real meter would."""

    grid_w: float  # active power, + import
    reactive_var: float  # what the house's inductive loads draw
    erqt_varh: float  # the reactive energy index
    quantum_va: float  # the meter's resolution
    battery_w: float | None = None  # a home battery's power, + charging (`battery:`)
    battery_soc: float | None = None  # ... and its state of charge, %


class MeterSource(ABC):
    """One kind of meter on MQTT. The meter-specific part is abstract; the PV and tariff topics
    (`meter.pv_topic`, `meter.tariff_topic`) are read the same way for every kind.

    Not thread-safe: `MeterCache` serialises the calls.
    """

    kind: ClassVar[str]  # the `meter.kind` it registers under
    kick_delay_s: ClassVar[float] = 0.0  # wait after a fresh value before deciding
    # fed by the Linky's TIC (`pvopt tic`), whose historic mode carries no export reading
    reads_tic: ClassVar[bool] = False

    def __init__(self, cfg: MeterConfig):
        self.cfg = cfg
        self.pv_w: float | None = None
        self.pv_at: float | None = None
        self.tariff: str | None = None
        self.tariff_at: float | None = None
        self.battery: BatteryReader | None = None  # `battery:` beside the meter

    @classmethod
    def check_config(cls, cfg: MeterConfig) -> None:
        """Raise ValueError when `cfg` lacks what this source needs (a config error)."""
        return None

    # -- the meter-specific part -------------------------------------------------------------
    @abstractmethod
    def meter_topics(self) -> frozenset[str]:
        """The meter's own topics."""

    @abstractmethod
    def feed_meter(self, topic: str, payload: bytes, now: float) -> bool:
        """Take one of `meter_topics`; True for a fresh power value; MeterValueError if bad."""

    @abstractmethod
    def meter_snapshot(self, now: float) -> MeterSnapshot:
        """The latest reading, stale after `cfg.stale_after_s`."""

    @abstractmethod
    def newest_at(self) -> float | None:
        """Arrival of the newest power value, None before the first."""

    @abstractmethod
    def publish(self, reading: HouseReading) -> list[tuple[str, str]]:
        """(topic, payload) the real meter would send for `reading`: the virtual house's side."""

    # -- shared by every kind ----------------------------------------------------------------
    def published(self, reading: HouseReading) -> list[tuple[str, str]]:
        """`publish`, and the battery's readings when there is one: all a virtual house sends."""
        out = self.publish(reading)
        if self.battery is not None and reading.battery_w is not None:
            out += self.battery.publish(reading.battery_w, reading.battery_soc or 0.0)
        return out

    @property
    def stale_after_s(self) -> float:
        return self.cfg.stale_after_s

    @property
    def topics(self) -> frozenset[str]:
        """Everything to subscribe to."""
        extra = {x for x in (self.cfg.pv_topic, self.cfg.tariff_topic) if x}
        if self.battery is not None:
            extra |= self.battery.topics
        return self.meter_topics() | extra

    def feed(self, topic: str, payload: bytes, now: float) -> bool:
        """Take one message; True when it was a fresh power value (worth a tick now)."""
        if topic in self.meter_topics():
            return self.feed_meter(topic, payload, now)
        if topic == self.cfg.pv_topic:
            self.pv_w = abs(parse_grid_payload(payload, self.cfg.pv_json_key, False))
            self.pv_at = now
            return False
        if topic == self.cfg.tariff_topic:
            text = payload.decode("utf-8", "replace").strip()
            if not text or len(text) > 40 or not text.isprintable():
                raise MeterValueError(f"not a tariff name: {text[:40]!r}")
            self.tariff, self.tariff_at = text, now
            return False
        if self.battery is not None and topic in self.battery.topics:
            self.battery.feed(topic, payload, now)
            return False  # the regulator decides on the meter's samples, not the battery's
        raise MeterValueError(f"not a meter topic: {topic}")

    def snapshot(self, now: float) -> MeterSnapshot:
        """The meter's reading, with PV power while it is fresh."""
        snap = self.meter_snapshot(now)
        if self.pv_at is not None and now - self.pv_at <= self.cfg.stale_after_s:
            snap = replace(snap, pv_w=self.pv_w, pv_at=self.pv_at)
        if self.battery is not None:
            battery_w, soc = self.battery.readings(now)
            snap = replace(snap, battery_w=battery_w, battery_soc=soc)
        return snap

    def offpeak(self, now: float) -> bool | None:
        """Whether the tariff (PTEC) says off-peak; None when unknown or stale."""
        tariff, at = self.tariff, self.tariff_at
        if tariff is None or at is None or now - at > self.cfg.stale_after_s:
            return None
        return tariff in self.cfg.offpeak_values


@dataclass(frozen=True, slots=True)
class MeterPreset(ABC):
    """A shipped meter on MQTT (`meter.preset`): what it is, where its vendor documents it, and
    the source that reads it. Subclasses are small data tables (pvopt/kinds/meter_presets.py)."""

    name: str
    devices: str  # which devices, for docs and messages
    docs: tuple[str, ...]  # the vendor's documentation or source it was checked against
    topic_hint: str  # what `meter.topic` is, for the missing-topic message
    uses_channel: bool = field(default=False, kw_only=True)
    # how often the device reports at best, when that is too slow to regulate a dimmer well
    reports_every_s: float | None = field(default=None, kw_only=True)

    @abstractmethod
    def source(self, cfg: MeterConfig) -> MeterSource:
        """A fresh source reading this preset for a validated meter config."""


METER_SOURCES: Registry[type[MeterSource]] = Registry("meter kind")
METER_PRESETS: Registry[MeterPreset] = Registry("meter preset")


def register_meter_source(source: type[MeterSource], *, replace: bool = False) -> type[MeterSource]:
    """Make `source.kind` a valid `meter.kind`; usable as a class decorator."""
    return METER_SOURCES.register(source.kind, source, replace=replace)


def register_meter_preset(preset: MeterPreset, *, replace: bool = False) -> MeterPreset:
    """Make `preset.name` a valid `meter.preset`."""
    return METER_PRESETS.register(preset.name, preset, replace=replace)


def meter_preset(cfg: MeterConfig) -> MeterPreset | None:
    """The config's preset, None for a `meter.kind`."""
    return None if cfg.preset is None else METER_PRESETS.get(cfg.preset)


def meter_source(cfg: MeterConfig, battery: BatteryConfig | None = None) -> MeterSource:
    """A fresh source for a validated meter config: its preset's, or its kind's; with
    `battery`, it reads the battery's topics too."""
    preset = meter_preset(cfg)
    source = METER_SOURCES.get(cfg.kind)(cfg) if preset is None else preset.source(cfg)
    if battery is not None:
        source.battery = BatteryReader(battery)
    return source
