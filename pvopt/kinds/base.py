"""What every load kind shares: the config models' common fields (its `device:` among them) and
the spec fields a kind fills in."""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, ClassVar, TypedDict, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from machines.heat_plan import Legionella, Target
from machines.model import DIMMER_MIN_POWER_W, Thresholds
from pvopt.devices import CUSTOM, DevicePreset, presets, resolve
from pvopt.devices.curve import Curve
from pvopt.devices.link import DeviceLink
from pvopt.devices.preset import Availability, DimmerVerbs, RelayVerbs

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


_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _window(value: str) -> str:
    if not _WINDOW.match(value):
        raise ValueError(f"{value!r} is not a daily window HH:MM-HH:MM")
    return value


DailyWindow = Annotated[str, AfterValidator(_window)]  # local "HH:MM-HH:MM", may wrap midnight


def window_seconds(window: str) -> tuple[int, int]:
    """A `DailyWindow` as (start, end) seconds of the local day (end < start wraps)."""
    a, b = (int(x[:2]) * 3600 + int(x[3:]) * 60 for x in window.split("-"))
    return a, b


class LoadSimConfig(Strict):
    """How the simulator and the virtual house model a load (ignored by the service)."""

    litres: float = Field(200.0, gt=0, le=5000)
    loss_w_per_k: float = Field(1.8, ge=0, le=1000)
    thermostat_c: Celsius = 65.0
    t0_c: Celsius = 50.0
    power_w: Power | None = None  # an UnknownPowerEquipment's real power
    # a tank with its own thermostat behind a load of any kind (a heater without a probe)
    tank: bool = False
    hysteresis_k: float = Field(0.0, ge=0, le=20)  # the thermostat closes again this far below
    # when the device is off the network (and powered down): local "HH:MM-HH:MM", daily
    offline: list[DailyWindow] = []

    def offline_windows(self) -> list[tuple[int, int]]:
        """The offline windows as (start, end) seconds of the local day (end may wrap)."""
        return [window_seconds(w) for w in self.offline]


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


class DeviceConfig(Strict):
    """`device:` of a load: how it is spoken to and what it reports (docs/devices.md).

    `preset` names a shipped protocol (`pvopt devices`), or `custom` with its own `relay:` /
    `dimmer:` / `availability:` sections in the preset's shape.
    """

    preset: Text = "seed"
    topic: Topic | None = None  # the device's name on MQTT (the seed: the load's command topic)
    channel: int = Field(0, ge=0, le=31)
    curve: Curve | None = None  # a dimmer's curve (default: the entry's `linearisation`)
    relay: RelayVerbs | None = None
    dimmer: DimmerVerbs | None = None
    availability: Availability | None = None

    @model_validator(mode="after")
    def _preset_known(self) -> DeviceConfig:
        own = [k for k in ("relay", "dimmer", "availability") if getattr(self, k) is not None]
        if self.preset == CUSTOM:
            if self.relay is None and self.dimmer is None:
                raise ValueError("a custom device needs a relay: or a dimmer: section")
        else:
            registry = presets()
            if registry.find(self.preset) is None:
                raise ValueError(registry.unknown_message(self.preset) + ", or custom")
            if own:
                raise ValueError(
                    f"{', '.join(own)}: only for preset: custom ({self.preset} defines them)"
                )
        if self.topic is None and self.preset != "seed":
            raise ValueError(f"preset {self.preset} needs topic: the device's name on MQTT")
        return self

    def model(self) -> DevicePreset:
        if self.preset != CUSTOM:
            return presets().get(self.preset)
        return DevicePreset(
            name=CUSTOM,
            title="custom",
            relay=self.relay,
            dimmer=self.dimmer,
            availability=self.availability,
        )

    def link(self, default_topic: str, dimmer: bool, curve: str, src: str) -> DeviceLink:
        """The load's link; `default_topic` is the seed's topic for a `seed` device."""
        wiring = resolve(self.model(), self.topic or default_topic, self.channel, src)
        return DeviceLink(wiring, dimmer, self.curve or curve)


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
    device: DeviceConfig = DeviceConfig()
    # a load its own thermostat cut is probed this often (docs/devices.md); 0: never judged
    thermostat_probes_per_hour: float = Field(4.0, ge=0, le=60)
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

    def curve(self) -> str:
        """A dimmer's curve when its device does not say (a relay has none)."""
        return "phase_angle"

    @model_validator(mode="after")
    def _one_command_topic(self) -> EquipmentModel:
        if self.command_topic is not None and self.device.preset != "seed":
            raise ValueError(
                f"command_topic is for the seed's firmware; preset {self.device.preset} "
                "derives its topics from device.topic"
            )
        return self

    def probe_topic(self) -> str | None:
        """A temperature topic the user set on this entry (None: the kind's default)."""
        return None

    def planning_tank_litres(self) -> float | None:
        """Tank volume for eco planning, when the user gave one."""
        return None

    def comfort(self) -> tuple[list[Target], Legionella | None]:
        """The heating plan's targets and legionella cycle (a tank's kinds have them)."""
        return [], None


class DimmerEquipment(EquipmentModel):
    """A resistive load behind a dimmer (the seed's SCR): any power up to `max_power`."""

    max_power: Power
    min_power_w: float = Field(DIMMER_MIN_POWER_W, ge=0, le=MAX_POWER_W)
    linearisation: Curve = "phase_angle"

    def curve(self) -> str:
        return self.linearisation


class RelayEquipment(EquipmentModel):
    """A load on a relay or smart plug: on or off, with minimum on/off times."""

    min_on_s: float = Field(0.0, ge=0, le=86400)
    min_off_s: float = Field(0.0, ge=0, le=86400)
