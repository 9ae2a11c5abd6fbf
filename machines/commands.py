"""Manual commands (docs/commands.md): the seed's `scr/{id}/control` words and the original's
`regulation/control` JSON, parsed into one `Command` and applied to the controller. Pure."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import field
from typing import Any

from machines.battery import MODES
from machines.controller import Controller
from machines.loads import CommandError
from machines.meter import MeterValueError, parse_number
from machines.model import BatteryMode
from machines.value import value

SEED_THRESHOLDS = {"MIN": "temp_min", "ECO": "temp_eco", "MAX": "temp_max"}
THRESHOLD_KEYS = ("temp_min", "temp_eco", "temp_sol_min", "temp_max")
MAX_DURATION_S = 30 * 86400.0


class Action(enum.StrEnum):
    """What a command does; the values are the `regulation/control` words."""

    FORCE = "force"  # boost: manual mode
    AUTO = "auto"  # back to automatic mode (also `unforce`)
    OFF = "off"  # manual off: manual mode
    SET = "set"  # thresholds


@value
class Command:
    """One manual command to one load (by name, or id when a number)."""

    action: Action  # a plain word is accepted and checked
    load: str | int
    power_w: float | None = None
    duration_s: float | None = None  # force: None = until auto
    thresholds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "action", Action(self.action))
        except ValueError:
            raise CommandError(f"unknown action {self.action!r}") from None

    def to_json(self) -> str:
        """The `regulation/control` payload (what the CLI publishes)."""
        body: dict[str, Any] = {"command": self.action.value, "name": self.load}
        if self.power_w is not None:
            body["power"] = self.power_w
        if self.duration_s is not None:
            body["duration"] = self.duration_s
        body.update(self.thresholds)
        return json.dumps(body)


@value
class BatteryCommand:
    """Who fills first beside the home battery (`{"command": "battery_mode", "mode": ...}`):
    a site's command, not a load's."""

    mode: BatteryMode

    def to_json(self) -> str:
        return json.dumps({"command": "battery_mode", "mode": self.mode.value})


AnyCommand = Command | BatteryCommand  # what `regulation/control` and the page accept


def _number(value: Any, what: str) -> float:
    """A finite number from a JSON value or command text (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CommandError(f"{what} must be a number, not {value!r}")
    try:
        return parse_number(str(value))
    except MeterValueError as exc:
        raise CommandError(f"{what}: {exc}") from None


def parse_seed_control(load_id: int, payload: bytes) -> Command:
    """`ON`, `OFF`, `AUTO`, `MIN;t`, `MAX;t`, `ECO;t` on `scr/{id}/control`."""
    text = payload.decode("utf-8", "replace").strip()
    word, _, arg = text.partition(";")
    word = word.strip().upper()
    if word in {"ON", "OFF", "AUTO"} and not arg:
        return Command({"ON": Action.FORCE, "OFF": Action.OFF, "AUTO": Action.AUTO}[word], load_id)
    if word in SEED_THRESHOLDS and arg:
        value = _number(arg.strip(), word)
        return Command(Action.SET, load_id, thresholds={SEED_THRESHOLDS[word]: value})
    raise CommandError(f"not a control command: {text[:40]!r} (ON, OFF, AUTO, MIN;t, MAX;t, ECO;t)")


def parse_control_json(payload: bytes) -> AnyCommand:
    """`{"command": "force"|"unforce"|"auto"|"off"|"set", "name": N, ...}`, or
    `{"command": "battery_mode", "mode": "battery_first"|"loads_first"|"soc_by"}`."""
    try:
        body = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        raise CommandError(f"not JSON: {payload[:60]!r}") from None
    if not isinstance(body, dict):
        raise CommandError(f"not a JSON object: {payload[:60]!r}")
    action = body.get("command")
    if action == "battery_mode":
        mode = body.get("mode")
        if set(body) != {"command", "mode"} or mode not in MODES:
            modes = ", ".join(sorted(MODES))
            raise CommandError(f"'battery_mode' takes one 'mode' ({modes}); got {body!r:.80}")
        return BatteryCommand(BatteryMode(mode))
    name = body.get("name")
    if isinstance(name, bool) or not isinstance(name, str | int) or name == "":
        raise CommandError(f"'name' must be a load name or id, not {name!r}")
    if action == "unforce":
        action = Action.AUTO
    if action in {Action.AUTO, Action.OFF}:
        return Command(Action(action), name)
    if action == Action.FORCE:
        power = body.get("power")
        duration = body.get("duration")
        power_w = None if power is None else _number(power, "power")
        duration_s = None if duration is None else _number(duration, "duration")
        if duration_s is not None and not 0 < duration_s <= MAX_DURATION_S:
            raise CommandError(f"duration {duration_s:g} s outside 0..{MAX_DURATION_S:g} s")
        return Command(Action.FORCE, name, power_w=power_w, duration_s=duration_s)
    if action == Action.SET:
        values = {k: _number(body[k], k) for k in THRESHOLD_KEYS if k in body}
        extra = set(body) - {"command", "name", *THRESHOLD_KEYS}
        if extra or not values:
            raise CommandError(f"'set' takes {', '.join(THRESHOLD_KEYS)}; got {sorted(body)}")
        return Command(Action.SET, name, thresholds=values)
    raise CommandError(f"unknown command {action!r} (force, unforce, auto, off, set, battery_mode)")


def apply(ctl: Controller, cmd: AnyCommand, now: float, *, meter_stale: bool) -> str:
    """Apply `cmd`; returns what was done, raises `UnknownLoad` / `CommandError` unchanged."""
    if isinstance(cmd, BatteryCommand):
        return ctl.set_battery_mode(cmd.mode)
    m = ctl.load(cmd.load)
    name = m.spec.name
    if cmd.action is Action.FORCE:
        until = None if cmd.duration_s is None else now + cmd.duration_s
        m.force(now, until=until, power_w=cmd.power_w)
        power = "full power" if cmd.power_w is None else f"{cmd.power_w:g} W"
        lasting = "" if until is None else f" for {cmd.duration_s:g} s"
        return f"{name}: forced at {power}{lasting}"
    if cmd.action is Action.OFF:
        m.switch_off(now)
        return f"{name}: manual off"
    if cmd.action is Action.AUTO:
        m.set_auto(now, meter_stale=meter_stale)
        return f"{name}: automatic"
    if cmd.action is Action.SET:
        m.set_thresholds(cmd.thresholds)
        return f"{name}: thresholds {cmd.thresholds}"
    raise CommandError(f"unknown action {cmd.action!r}")


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `2h`, `1h30m` → seconds (docs/cli.md)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise CommandError(f"not a duration: {text!r} (like 90s, 15m, 2h, 1h30m)")
    h, m, s = (int(g) if g else 0 for g in match.groups())
    seconds = h * 3600 + m * 60 + s
    if not 0 < seconds <= MAX_DURATION_S:
        raise CommandError(f"duration {text!r} outside 1 s..30 days")
    return float(seconds)


@value
class Outcome:
    """What became of a command: done (what was done) or refused (why), for a caller that
    shows it (the local page); `regulation/control` only logs it."""

    ok: bool
    message: str
