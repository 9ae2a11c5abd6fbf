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
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PLACEHOLDER = re.compile(r"\{(topic|node|channel|n|level|percent|power_w|on|src)\}")
DYNAMIC = ("level", "percent", "power_w", "on")  # per command; the others are per device


def render(template: str, values: dict[str, str]) -> str:
    """`template` with its known placeholders filled (JSON braces untouched)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass(frozen=True, slots=True)
class Template:
    """A template with its device's placeholders (`topic`, `node`, `channel`, `n`, `src`)
    filled once, when the wiring is resolved: a command then costs a `str.replace` per dynamic
    placeholder left, not a regex pass per load per tick."""

    text: str
    dynamic: tuple[str, ...]  # the names of the dynamic placeholders left in `text`

    @classmethod
    def of(cls, template: str, values: dict[str, str]) -> Template:
        text = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
        used = {m.group(1) for m in PLACEHOLDER.finditer(template)}
        return cls(text, tuple(n for n in DYNAMIC if n in used))

    def level(self, level: int, percent: float, power_w: float) -> str:
        """The text of a level command, the dynamic placeholders filled (as `render` did)."""
        out = self.text
        for name in self.dynamic:
            if name == "level":
                value = str(level)
            elif name == "percent":
                value = f"{percent:.1f}"
            elif name == "power_w":
                value = f"{power_w:.0f}"
            else:
                value = "true" if percent > 0 else "false"
            out = out.replace("{" + name + "}", value)
        return out


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
    payload_off: str = "OFF"  # what the device sends there when it is off (the virtual house)
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


def _json_value(text: str) -> bool | str:
    """A state value as the device writes it in JSON: `true`/`false` as booleans."""
    return {"true": True, "false": False}.get(text, text)


def _number(value: float) -> int | float:
    """A reading as devices print it: an integer when it is one, else one decimal."""
    rounded = round(value, 1)
    return int(rounded) if rounded.is_integer() else rounded


def _message(entries: list[tuple[str | None, Any]]) -> list[str]:
    """The payloads of one topic: each value without a path plain, those with a path merged
    into one JSON object (nested at their dotted paths)."""
    out: list[str] = []
    obj: dict[str, Any] = {}
    for path, value in entries:
        if path is None:
            text = json.dumps(value) if isinstance(value, bool) else str(value)
            out.append(text)
            continue
        node = obj
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    if obj:
        out.append(json.dumps(obj, separators=(",", ":")))
    return out


@dataclass(frozen=True, slots=True)
class DeviceWiring:
    """One load's device with its topics resolved: what to publish, what to read. Every
    topic and the static part of every payload is filled once, here (hot paths: a command per
    load per tick, a read per device message)."""

    preset: str
    values: dict[str, str]
    relay: RelayVerbs | None
    dimmer: DimmerVerbs | None
    availability: Availability | None
    _switch: tuple[tuple[str, str], tuple[str, str]] | None = field(init=False, repr=False)
    _level: tuple[Template, Template, Template | None, int] | None = field(init=False, repr=False)
    _level_match: tuple[re.Pattern[str], re.Pattern[str] | None] | None = field(
        init=False, repr=False
    )
    _topics: dict[str, str | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values = self.values
        switch = level = match = None
        if self.relay is not None:
            cmd = self.relay.command
            off_v, on_v = {**values, "on": "false"}, {**values, "on": "true"}
            switch = (
                (render(cmd.topic, off_v), render(cmd.payload_off, off_v)),
                (render(cmd.topic, on_v), render(cmd.payload_on, on_v)),
            )
        if self.dimmer is not None:
            lc = self.dimmer.command
            off = None if lc.payload_off is None else Template.of(lc.payload_off, values)
            level = (Template.of(lc.topic, values), Template.of(lc.payload, values), off, lc.scale)
            off_match = None if lc.payload_off is None else matcher(lc.payload_off, values)
            match = (matcher(lc.payload, values), off_match)
        topics: dict[str, str | None] = {}
        for name, verbs in (("relay", self.relay), ("dimmer", self.dimmer)):
            for kind in ("state", "power"):
                report = None if verbs is None else getattr(verbs, kind)
                topics[f"{name}.{kind}"] = None if report is None else render(report.topic, values)
        a = self.availability
        topics["availability"] = None if a is None else render(a.topic, values)
        object.__setattr__(self, "_switch", switch)
        object.__setattr__(self, "_level", level)
        object.__setattr__(self, "_level_match", match)
        object.__setattr__(self, "_topics", topics)

    def _verbs(self, dimmer: bool) -> RelayVerbs | DimmerVerbs:
        verbs = self.dimmer if dimmer else self.relay
        if verbs is None:
            kind = "a dimmer" if dimmer else "a relay"
            raise ValueError(f"preset {self.preset} cannot drive {kind}")
        return verbs

    def command_topic(self, dimmer: bool) -> str:
        self._verbs(dimmer)
        if dimmer:
            assert self._level is not None
            return self._level[0].text
        assert self._switch is not None
        return self._switch[1][0]

    def switch(self, on: bool) -> tuple[str, str]:
        """(topic, payload) that switches the relay."""
        switch = self._switch
        if switch is None:
            self._verbs(False)
        assert switch is not None
        return switch[on]

    def level(self, percent: float, power_w: float) -> tuple[str, str]:
        """(topic, payload) that sets the dimmer to `percent` (0–100) of its range."""
        templates = self._level
        if templates is None:
            raise ValueError(f"preset {self.preset} cannot drive a dimmer")
        topic, payload, off, scale = templates
        percent = 0.0 if percent < 0.0 else 100.0 if percent > 100.0 else percent
        level = round(percent * scale / 100.0)
        template = off if level == 0 and off is not None else payload
        return (
            topic.level(level, percent, power_w) if topic.dynamic else topic.text,
            template.level(level, percent, power_w),
        )

    def parse_switch(self, payload: str) -> bool | None:
        """Whether a relay command says on (the device's end of the wire); None: not one."""
        self._verbs(False)
        assert self._switch is not None
        text = payload.strip()
        for on in (True, False):
            if text == self._switch[on][1]:
                return on
        return None

    def parse_level(self, payload: str) -> float | None:
        """The percent (0-100) a dimmer command sets; None: not a command of this preset."""
        cmd = self._verbs(True).command
        assert isinstance(cmd, LevelCommand) and self._level_match is not None
        text = payload.strip()
        on_match, off_match = self._level_match
        if off_match is not None and off_match.fullmatch(text):
            return 0.0
        m = on_match.fullmatch(text)
        if m is None:
            return None
        got = m.groupdict()
        if got.get("percent") is not None:
            return float(got["percent"])
        if got.get("level") is not None:
            return float(got["level"]) * 100.0 / cmd.scale
        return None

    def state_topic(self, dimmer: bool) -> str | None:
        self._verbs(dimmer)
        return self._topics["dimmer.state" if dimmer else "relay.state"]

    def power_topic(self, dimmer: bool) -> str | None:
        self._verbs(dimmer)
        return self._topics["dimmer.power" if dimmer else "relay.power"]

    def availability_topic(self) -> str | None:
        return self._topics["availability"]

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

    # -- the device's end of the wire (the virtual house) ----------------------------------
    def device_state(
        self,
        dimmer: bool,
        on: bool,
        percent: float,
        power_w: float,
        kinds: tuple[str, ...] = ("state", "power"),
    ) -> list[tuple[str, str]]:
        """(topic, payload) the device publishes for its output `on`, its level `percent` (a
        dimmer's, 0-100) and its measured `power_w`, for the reports of `kinds`. Reports that
        share a topic go out as one message, as a device sends its whole status there (Shelly
        Gen2 `status/switch:0` with `output` and `apower`, zigbee2mqtt's `state` and `power`):
        so a power refresh of such a device carries its state too. Empty: it reports nothing."""
        verbs = self._verbs(dimmer)
        name = "dimmer" if dimmer else "relay"
        wanted = {self._topics[f"{name}.{kind}"] for kind in kinds} - {None}
        by_topic: dict[str, list[tuple[str | None, Any]]] = {}
        state, power = verbs.state, verbs.power
        state_topic, power_topic = self._topics[f"{name}.state"], self._topics[f"{name}.power"]
        if state is not None and state_topic in wanted:
            assert state_topic is not None
            text = state.payload_on if on else state.payload_off
            entries = by_topic.setdefault(state_topic, [])
            entries.append((state.path, text if state.path is None else _json_value(text)))
            if isinstance(verbs, DimmerVerbs) and state.level_path is not None:
                level = round(min(max(percent, 0.0), 100.0) * verbs.command.scale / 100.0)
                entries.append((state.level_path, level))
        if power is not None and power_topic in wanted:
            assert power_topic is not None
            by_topic.setdefault(power_topic, []).append((power.path, _number(max(power_w, 0.0))))
        return [(t, text) for t, entries in by_topic.items() for text in _message(entries)]

    def device_availability(self, online: bool) -> tuple[str, str] | None:
        """(topic, payload) of the device's availability (its birth, or its Last Will as the
        broker publishes it): JSON at the path when the preset reads one (zigbee2mqtt 2.x
        `{"state":"online"}`). None: the device does not tell."""
        a = self.availability
        topic = self._topics["availability"]
        if a is None or topic is None:
            return None
        text = a.payload_available if online else a.payload_not_available
        return topic, text if a.path is None else _message([(a.path, text)])[0]
