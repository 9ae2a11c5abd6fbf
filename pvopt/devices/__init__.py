"""Device presets: how a load's device is spoken to and what it reports (docs/devices.md).

Each protocol is one YAML file in `presets/`, loaded once; `custom` is the same shape written
in the load's own `device:` entry.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from machines.registry import Registry, UnknownName
from pvopt.devices.preset import DevicePreset, DeviceWiring, json_path, render

CUSTOM = "custom"  # a preset written in the load's own `device:` entry

__all__ = [
    "CUSTOM",
    "DevicePreset",
    "DeviceWiring",
    "UnknownPreset",
    "json_path",
    "presets",
    "render",
    "resolve",
]


class UnknownPreset(UnknownName):
    """A `device.preset` no file in `presets/` declares."""


@cache
def presets() -> Registry[DevicePreset]:
    """Every shipped preset, by name (read once)."""
    registry: Registry[DevicePreset] = Registry("device preset", UnknownPreset)
    for entry in sorted(resources.files(__package__).joinpath("presets").iterdir(), key=str):
        if not entry.name.endswith(".yml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        try:
            preset = DevicePreset.model_validate(data)
        except ValidationError as exc:  # a shipped file is wrong: say which
            raise RuntimeError(f"device preset {entry.name}: {exc}") from None
        registry.register(preset.name, preset)
    return registry


def resolve(
    preset: str | DevicePreset, topic: str, channel: int = 0, src: str = "pvopt"
) -> DeviceWiring:
    """One load's device: the preset (a name, or a `custom` one) with its topics filled."""
    p = presets().get(preset) if isinstance(preset, str) else preset
    values: dict[str, Any] = {
        "topic": topic,
        "node": topic.split("/", 1)[0],
        "channel": str(channel),
        "n": str(channel + 1),
        "src": src,
    }
    return DeviceWiring(p.name, values, p.relay, p.dimmer, p.availability)
