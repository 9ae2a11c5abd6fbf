"""Plug-in kinds: load kinds (`equipment[].type`) and meter sources (`meter.kind`), each one
module plus its registration. Importing this package registers the built-in ones.

Add a load kind: a module with its pydantic model (an `EquipmentModel` subclass with
`type: Literal["..."]`) and its `KIND = LoadKind(...)`, registered below.
Add a meter kind: a module with a `MeterSource` subclass, registered below; a meter preset: a
row in `meter_presets.PRESETS`.
"""

from __future__ import annotations

from machines.wiring import Codec
from pvopt.devices.curve import dimmer_percent, dimmer_power
from pvopt.kinds import constant, grid, linky, meter_presets, temp_driven, unknown, variable
from pvopt.kinds.base import (
    MAX_POWER_W,
    Celsius,
    DeviceConfig,
    DimmerEquipment,
    EquipmentModel,
    LoadSimConfig,
    Power,
    RelayEquipment,
    SpecFields,
    Strict,
    Text,
    Topic,
)
from pvopt.kinds.battery import (
    BatteryConfig,
    BatteryReader,
    BatterySimConfig,
    battery_problems,
    battery_topics,
)
from pvopt.kinds.meters import (
    METER_PRESETS,
    METER_SOURCES,
    HouseReading,
    MeterConfig,
    MeterPreset,
    MeterSource,
    MeterTopics,
    meter_preset,
    meter_source,
    register_meter_preset,
    register_meter_source,
)
from pvopt.kinds.registry import (
    LOAD_KINDS,
    LoadKind,
    UnknownLoadKind,
    load_kind,
    register_load_kind,
)

# The built-in kinds, in the order error messages list them.
for _kind in (variable.KIND, temp_driven.KIND, constant.KIND, unknown.KIND):
    register_load_kind(_kind)
for _source in (linky.LinkySource, grid.GridSource):
    register_meter_source(_source)
for _preset in meter_presets.PRESETS:
    register_meter_preset(_preset)

__all__ = [
    "LOAD_KINDS",
    "MAX_POWER_W",
    "METER_PRESETS",
    "METER_SOURCES",
    "BatteryConfig",
    "BatteryReader",
    "BatterySimConfig",
    "Celsius",
    "Codec",
    "DeviceConfig",
    "DimmerEquipment",
    "EquipmentModel",
    "HouseReading",
    "LoadKind",
    "LoadSimConfig",
    "MeterConfig",
    "MeterPreset",
    "MeterSource",
    "MeterTopics",
    "Power",
    "RelayEquipment",
    "SpecFields",
    "Strict",
    "Text",
    "Topic",
    "UnknownLoadKind",
    "battery_problems",
    "battery_topics",
    "dimmer_percent",
    "dimmer_power",
    "load_kind",
    "meter_preset",
    "meter_source",
    "register_load_kind",
    "register_meter_preset",
    "register_meter_source",
]
