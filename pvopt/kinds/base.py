"""What every load kind shares: the config models' common fields, the spec fields a kind fills
in, and the payload codecs of the seed's dimmers and smart plugs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, TypedDict, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from machines.model import Thresholds
from machines.wiring import Codec

MAX_POWER_W = 100_000.0
Power = Annotated[float, Field(gt=0, le=MAX_POWER_W)]
Celsius = Annotated[float, Field(ge=-20, le=110)]
MAX_TOPIC_BYTES = 65535  # MQTT's limit on a topic name


def not_blank(value: str) -> str:
    """A value that is needed: empty or spaces only is a mistake, never "use the default"."""
    if not value.strip():
        raise ValueError("empty; give a value or remove the key to use the default")
    if value != value.strip():
        raise ValueError(f"{value!r} has spaces around it")
    return value


def mqtt_topic(value: str) -> str:
    """A topic pvopt subscribes to as one value or publishes to: a name, not a filter."""
    not_blank(value)
    if "#" in value or "+" in value:
        raise ValueError(
            f"{value!r} has an MQTT wildcard (# or +): give the one topic the value comes on "
            "or goes to"
        )
    if value.startswith("$"):
        raise ValueError(f"{value!r} starts with $: those topics belong to the broker")
    if "\x00" in value or len(value.encode()) > MAX_TOPIC_BYTES:
        raise ValueError("not an MQTT topic name (NUL character or over 65535 bytes)")
    return value


Text = Annotated[str, AfterValidator(not_blank)]
Topic = Annotated[str, AfterValidator(mqtt_topic)]


def _takes_number(annotation: Any) -> bool:
    """A field typed int or float (optional or not): where YAML's true/false is a mistake."""
    if annotation in (int, float):
        return True
    return get_origin(annotation) in (Union, UnionType) and any(
        _takes_number(a) for a in get_args(annotation)
    )


class Strict(BaseModel):
    # NaN and infinities pass `gt`/`le` bounds in surprising ways (an infinite outbox bound
    # overflowed the InfluxDB job): a number in the config is finite
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_number(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic takes `max_power: true` as 1 W; a number field refuses YAML's booleans
        (the seed's env vars still arrive as text and are parsed as before)."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _takes_number(field.annotation):
            raise ValueError(f"a number is expected, not true/false (got {value})")
        return value


class LoadSimConfig(Strict):
    """How the simulator and the virtual house model a load (ignored by the service)."""

    litres: float = Field(200.0, gt=0, le=5000)
    loss_w_per_k: float = Field(1.8, ge=0, le=1000)
    thermostat_c: Celsius = 65.0
    t0_c: Celsius = 50.0
    power_w: Power | None = None  # an UnknownPowerEquipment's real power


class SpecFields(TypedDict, total=False):
    """The `LoadSpec` fields a kind derives from its entry (name, id, kind... come from the
    registry, so a kind cannot get them wrong)."""

    max_w: float
    min_power_w: float
    thresholds: Thresholds
    min_energy_wh: float | None
    period_s: int
    min_on_s: float
    min_off_s: float


def dimmer_percent(power_w: float, max_w: float, linearisation: str) -> float:
    """Phase-angle firing percent that delivers `power_w` from a resistive load (the fork's
    acos(1 − 2·P/Pmax)/π·100), or the plain ratio for a `linear` dimmer."""
    ratio = min(max(power_w / max_w, 0.0), 1.0)
    if linearisation == "linear":
        return ratio * 100.0
    return math.acos(1.0 - 2.0 * ratio) / math.pi * 100.0


def dimmer_power(percent: float, max_w: float, linearisation: str) -> float:
    """Inverse of `dimmer_percent`."""
    x = min(max(percent / 100.0, 0.0), 1.0)
    if linearisation == "linear":
        return x * max_w
    return (1.0 - math.cos(x * math.pi)) / 2.0 * max_w


@dataclass(frozen=True, slots=True)
class PercentCodec:
    """The seed's `scr/{id}/in`: a firing percent with one decimal."""

    linearisation: str = "phase_angle"

    def encode(self, power_w: float, max_w: float) -> str:
        return f"{dimmer_percent(power_w, max_w, self.linearisation):.1f}"

    def decode(self, payload: str, max_w: float) -> float:
        return dimmer_power(float(payload), max_w, self.linearisation)


@dataclass(frozen=True, slots=True)
class SwitchCodec:
    """A smart plug's `wifi_plug/{id}/in`: 1 or 0."""

    def encode(self, power_w: float, max_w: float) -> str:
        return "1" if power_w > 0 else "0"

    def decode(self, payload: str, max_w: float) -> float:
        return max_w if float(payload) > 0 else 0.0


class EquipmentModel(Strict):
    """Fields every `equipment:` entry has; a kind's model adds `type: Literal[...]` and its own.

    Per-entry behaviour lives here as methods (it reads the entry's fields); per-kind facts
    (actuation, default topics) live in the kind's `LoadKind` registration.
    """

    TYPE_FIELD: ClassVar[str] = "type"

    name: str = Field(min_length=1)
    id: int | None = Field(None, ge=0)
    priority: int | None = None
    enabled: bool = True
    command_topic: Topic | None = None
    retain: bool = False
    sim: LoadSimConfig = LoadSimConfig()

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    @classmethod
    def type_name(cls) -> str:
        """The YAML `type:` tag, read from the model's `type: Literal[...]` field."""
        field = cls.model_fields.get(cls.TYPE_FIELD)
        tags = get_args(field.annotation) if field is not None else ()
        if len(tags) != 1 or not isinstance(tags[0], str):
            raise TypeError(f"{cls.__name__} needs a field `type: Literal['<its type name>']`")
        return tags[0]

    def spec_fields(self) -> SpecFields:
        """The kind-specific part of the core's `LoadSpec`."""
        raise NotImplementedError(f"{type(self).__name__} must define spec_fields()")

    def codec(self) -> Codec:
        """How this entry's commands are written."""
        raise NotImplementedError(f"{type(self).__name__} must define codec()")

    def probe_topic(self) -> str | None:
        """A temperature topic the user set on this entry (None: the kind's default)."""
        return None

    def planning_tank_litres(self) -> float | None:
        """Tank volume for eco planning, when the user gave one."""
        return None


class DimmerEquipment(EquipmentModel):
    """A resistive load behind a dimmer (the seed's SCR): any power up to `max_power`."""

    max_power: Power
    min_power_w: float = Field(50.0, ge=0, le=MAX_POWER_W)
    linearisation: Literal["phase_angle", "linear"] = "phase_angle"

    def codec(self) -> Codec:
        return PercentCodec(self.linearisation)


class RelayEquipment(EquipmentModel):
    """A load on a relay or smart plug: on or off, with minimum on/off times."""

    min_on_s: float = Field(0.0, ge=0, le=86400)
    min_off_s: float = Field(0.0, ge=0, le=86400)

    def codec(self) -> Codec:
        return SwitchCodec()
