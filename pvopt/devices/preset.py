"""A device preset: how pvopt's three verbs (switch, set a level, read back) are spoken to one
vendor's firmware over MQTT, as data (docs/devices.md).

A preset's topics and payloads are templates. The placeholders are `{topic}` (what the user
names the device by), `{node}` (its first segment, ESPHome's node), `{channel}` (0-based),
`{n}` (1-based, Tasmota's POWER<n>), `{level}` (the percent on the device's own scale),
`{percent}`, `{power_w}`, `{on}` (`true`/`false`) and `{src}` (this pvopt's RPC source).
Any other brace is kept, so JSON payloads need no escaping.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PLACEHOLDER = re.compile(r"\{(topic|node|channel|n|level|percent|power_w|on|src)\}")


def render(template: str, values: dict[str, str]) -> str:
    """`template` with its known placeholders filled (JSON braces untouched)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


NUMBER = r"-?\d+(?:\.\d+)?"


def matcher(template: str, values: dict[str, str]) -> re.Pattern[str]:
    """A pattern that reads a rendered `template` back: `{level}`, `{percent}` and `{power_w}`
    captured as numbers, `{on}` as true/false, the other placeholders as their values."""
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        if name in ("level", "percent", "power_w"):
            out.append(f"(?P<{name}>{NUMBER})")
        elif name == "on":
            out.append("(?P<on>true|false)")
        else:
            out.append(re.escape(values[name]))
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def json_path(payload: str, path: str | None) -> str | None:
    """The value at dotted `path` of a JSON payload, as text (`true`/`false` for booleans);
    the bare payload without a path, or when it is not JSON (zigbee2mqtt's legacy plain
    availability). None when the path is missing."""
    text = payload.strip()
    if path is None:
        return text
    try:
        value: Any = json.loads(text)
    except ValueError:
        return text  # a plain payload where JSON was expected: its text is the value
    if not isinstance(value, dict):
        return text if not isinstance(value, list) else None
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None or isinstance(value, dict | list) else str(value)


class _Section(BaseModel):
    """Keys follow Home Assistant's MQTT names (`payload_on`…): YAML reads a bare `on:` as
    true."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class SwitchCommand(_Section):
    topic: str
    payload_on: str
    payload_off: str


class LevelCommand(_Section):
    topic: str
    payload: str
    payload_off: str | None = None  # sent at 0 % instead of a zero level (a light's "off")
    scale: int = Field(100, ge=1, le=65535)  # the device's full level: 100, 254, 255


class StateReport(_Section):
    topic: str
    path: str | None = None
    payload_on: str = "ON"  # the value at `path` that means the output is on
    level_path: str | None = None


class PowerReport(_Section):
    topic: str
    path: str | None = None


class Availability(_Section):
    topic: str
    path: str | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"


class RelayVerbs(_Section):
    command: SwitchCommand
    state: StateReport | None = None
    power: PowerReport | None = None


class DimmerVerbs(_Section):
    command: LevelCommand
    state: StateReport | None = None
    power: PowerReport | None = None


class DevicePreset(_Section):
    """One protocol, as its vendor's documentation gives it."""

    name: str
    title: str
    examples: list[str] = []
    setup: str = ""
    docs: list[str] = []
    availability: Availability | None = None
    relay: RelayVerbs | None = None
    dimmer: DimmerVerbs | None = None

    def reads_back(self) -> list[str]:
        """What the device reports: `state`, `power`, `availability`, as far as it does."""
        verbs = [v for v in (self.relay, self.dimmer) if v is not None]
        out = []
        if any(v.state for v in verbs):
            out.append("state")
        if any(v.power for v in verbs):
            out.append("power")
        if self.availability is not None:
            out.append("availability")
        return out


@dataclass(frozen=True, slots=True)
class DeviceWiring:
    """One load's device with its topics resolved: what to publish, what to read."""

    preset: str
    values: dict[str, str]
    relay: RelayVerbs | None
    dimmer: DimmerVerbs | None
    availability: Availability | None

    def _verbs(self, dimmer: bool) -> RelayVerbs | DimmerVerbs:
        verbs = self.dimmer if dimmer else self.relay
        if verbs is None:
            kind = "a dimmer" if dimmer else "a relay"
            raise ValueError(f"preset {self.preset} cannot drive {kind}")
        return verbs

    def command_topic(self, dimmer: bool) -> str:
        return render(self._verbs(dimmer).command.topic, self.values)

    def switch(self, on: bool) -> tuple[str, str]:
        """(topic, payload) that switches the relay."""
        cmd = self._verbs(False).command
        assert isinstance(cmd, SwitchCommand)
        values = {**self.values, "on": "true" if on else "false"}
        return render(cmd.topic, values), render(cmd.payload_on if on else cmd.payload_off, values)

    def level(self, percent: float, power_w: float) -> tuple[str, str]:
        """(topic, payload) that sets the dimmer to `percent` (0–100) of its range."""
        cmd = self._verbs(True).command
        assert isinstance(cmd, LevelCommand)
        percent = min(max(percent, 0.0), 100.0)
        level = round(percent * cmd.scale / 100.0)
        values = {
            **self.values,
            "level": str(level),
            "percent": f"{percent:.1f}",
            "power_w": f"{power_w:.0f}",
            "on": "true" if percent > 0 else "false",
        }
        template = cmd.payload_off if level == 0 and cmd.payload_off is not None else cmd.payload
        return render(cmd.topic, values), render(template, values)

    def parse_switch(self, payload: str) -> bool | None:
        """Whether a relay command says on (the device's end of the wire); None: not one."""
        cmd = self._verbs(False).command
        assert isinstance(cmd, SwitchCommand)
        text = payload.strip()
        for on in (True, False):
            values = {**self.values, "on": "true" if on else "false"}
            if text == render(cmd.payload_on if on else cmd.payload_off, values):
                return on
        return None

    def parse_level(self, payload: str) -> float | None:
        """The percent (0-100) a dimmer command sets; None: not a command of this preset."""
        cmd = self._verbs(True).command
        assert isinstance(cmd, LevelCommand)
        text = payload.strip()
        if cmd.payload_off is not None and matcher(cmd.payload_off, self.values).fullmatch(text):
            return 0.0
        m = matcher(cmd.payload, self.values).fullmatch(text)
        if m is None:
            return None
        got = m.groupdict()
        if got.get("percent") is not None:
            return float(got["percent"])
        if got.get("level") is not None:
            return float(got["level"]) * 100.0 / cmd.scale
        return None

    def state_topic(self, dimmer: bool) -> str | None:
        report = self._verbs(dimmer).state
        return None if report is None else render(report.topic, self.values)

    def power_topic(self, dimmer: bool) -> str | None:
        report = self._verbs(dimmer).power
        return None if report is None else render(report.topic, self.values)

    def availability_topic(self) -> str | None:
        a = self.availability
        return None if a is None else render(a.topic, self.values)

    def read_on(self, dimmer: bool, payload: str) -> bool | None:
        """Whether a state report says the output is on (None: not in this report)."""
        report = self._verbs(dimmer).state
        if report is None:
            return None
        value = json_path(payload, report.path)
        return None if value is None else value == report.payload_on

    def read_level(self, payload: str) -> float | None:
        """The dimmer's level in a state report, as a percent (None: not in this report)."""
        verbs = self._verbs(True)
        assert isinstance(verbs, DimmerVerbs)
        report = verbs.state
        if report is None or report.level_path is None:
            return None
        value = json_path(payload, report.level_path)
        try:
            return None if value is None else float(value) * 100.0 / verbs.command.scale
        except ValueError:
            return None

    def read_power(self, dimmer: bool, payload: str) -> float | None:
        """The measured power (W) in a power report; None when absent or not a number."""
        report = self._verbs(dimmer).power
        if report is None:
            return None
        value = json_path(payload, report.path)
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    def read_online(self, payload: str) -> bool | None:
        """True online, False offline, None for a payload that says neither."""
        a = self.availability
        if a is None:
            return None
        value = json_path(payload, a.path)
        if value == a.payload_available:
            return True
        return False if value == a.payload_not_available else None
