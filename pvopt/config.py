"""The YAML config (DESIGN §10) as pydantic models, with errors that name file, line and key."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from machines.model import LoadSpec
from machines.policy import POLICIES, PolicyParams, flat_names
from machines.schedules import DAY_NAMES, Schedule
from machines.wiring import OWN_TOPICS, LoadWiring
from pvopt.kinds import (
    LOAD_KINDS,
    MAX_POWER_W,
    Celsius,
    EquipmentModel,
    MeterConfig,
    MeterTopics,
    Strict,
    Text,
    load_kind,
    meter_source,
)
from pvopt.kinds.base import not_blank

__all__ = ["MAX_POWER_W", "MeterConfig", "MeterTopics"]  # re-exported: where they always were
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def host_name(value: str) -> str:
    """A host name or address: not a URL, not host:port, no spaces."""
    not_blank(value)
    if "://" in value:
        raise ValueError(f"{value!r} is not a URL: give the host name or address only")
    if " " in value or "/" in value:
        raise ValueError(f"{value!r} is not a host name or address")
    if value.count(":") == 1:  # one colon: host:port (an IPv6 address has several)
        raise ValueError(f"{value!r}: put the port in `port`, the host alone here")
    return value


Host = Annotated[str, AfterValidator(host_name)]


class SiteConfig(Strict):
    timezone: str = "Europe/Paris"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class TlsConfig(Strict):
    ca_file: Text | None = None
    cert_file: Text | None = None
    key_file: Text | None = None


class MqttConfig(Strict):
    host: Host = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    keepalive: int = Field(120, ge=5, le=65535)
    username: Text | None = None
    password: SecretStr | None = None
    tls: TlsConfig = TlsConfig()
    client_id: Text = "pvopt"


class TicConfig(Strict):
    """`pvopt tic`: the Linky's serial output (TIC) bridged to MQTT."""

    port: str = "/dev/ttyUSB0"
    mode: Literal["auto", "historic", "standard"] = "auto"
    topic_prefix: str = Field("tic/", pattern=r"^[^#+]*$")
    summary_every_s: float = Field(10.0, gt=0, le=3600)  # the retained bridge summary
    reconnect_min_s: float = Field(1.0, gt=0, le=600)  # serial reopen backoff (tests: tiny)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    detect_s: float = Field(6.0, gt=0, le=120)  # `auto`: listen this long per baud rate


class RegulationConfig(Strict):
    policy: str = "default"
    tick_s: float = Field(5.0, gt=0, le=60)
    balance_band_w: float = Field(50.0, ge=0, le=5000)
    margin_w: float = Field(100.0, ge=0, le=5000)
    band_min_w: float = Field(8.0, ge=0, le=5000)  # the band and margin on a quiet meter
    margin_min_w: float = Field(4.0, ge=0, le=5000)
    settle_s: float = Field(1.5, ge=0, le=60)
    command_refresh_s: float = Field(60.0, gt=0, le=3600)
    relay_on_delay_s: float = Field(60.0, ge=0, le=3600)
    relay_stop_deficit_wh: float = Field(7.5, ge=0, le=1000)
    relay_start_headroom_w: float = Field(300.0, ge=0, le=MAX_POWER_W)
    relay_stop_tolerance_w: float = Field(0.0, ge=0, le=MAX_POWER_W)

    @field_validator("policy")
    @classmethod
    def _registered(cls, value: str) -> str:
        if POLICIES.find(value) is None:
            raise ValueError(POLICIES.unknown_message(value))
        return value

    @model_validator(mode="after")
    def _floors_below_maxima(self) -> RegulationConfig:
        if self.band_min_w > self.balance_band_w:
            raise ValueError("band_min_w must not exceed balance_band_w")
        if self.margin_min_w > self.margin_w:
            raise ValueError("margin_min_w must not exceed margin_w")
        return self

    def params(self) -> PolicyParams:
        """The policy's tuning: the keys set here, in their groups; the rest at their defaults."""
        tunables = set(flat_names()) & set(type(self).model_fields)
        return PolicyParams.from_flat(self.policy, **self.model_dump(include=tunables))


class StateConfig(Strict):
    path: Text = "pvopt.db"
    checkpoint_s: float = Field(60.0, gt=0, le=3600)
    history_days: int = Field(400, ge=1)


class InfluxConfig(Strict):
    host: Host = "localhost"
    port: int = Field(8086, ge=1, le=65535)
    database: Text = "teleinfo"
    username: Text | None = None
    password: SecretStr | None = None
    interval_s: int = Field(60, ge=10, le=3600)
    outbox_max_days: float = Field(30.0, gt=0)
    retention_policy: Text | None = "pvopt"  # created if missing (never the default); None: default
    retention: str = Field("INF", pattern=r"^(INF|\d+[hdw])$")  # of the `pvopt` policy


def _equipment(value: Any) -> EquipmentModel:
    """Validate one `equipment:` entry with the model its `type` registered (pvopt.kinds):
    the discriminated union, built from the registry at validation time so a kind registered
    after import counts, and an unregistered type is an error, never a guess."""
    if isinstance(value, EquipmentModel):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )
    tag = value.get("type")
    names = LOAD_KINDS.names()
    if tag is None:
        raise PydanticCustomError(
            "union_tag_not_found",
            "Unable to extract tag using discriminator 'type'",
            {"discriminator": "'type'"},
        )
    if not isinstance(tag, str) or tag not in names:
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag {tag!r} found using 'type' does not match any of the expected tags",
            {"discriminator": "'type'", "tag": str(tag), "expected_tags": ", ".join(names)},
        )
    return load_kind(tag).model.model_validate(value)


# Serialised as the entry's own model (masked_dump shows every field of its kind).
Equipment = SerializeAsAny[Annotated[EquipmentModel, PlainValidator(_equipment)]]
DAYS = DAY_NAMES
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
EVERY_DAY: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleConfig(Strict):
    name: Text
    load: str | int
    window: str | None = None
    tariff: Literal["HC"] | None = None
    at: str | None = None
    days: list[DayName] = Field(default_factory=lambda: list(EVERY_DAY))
    action: Literal["eco", "boost", "boost-deficit"] = "eco"
    min_energy_today_wh: float | None = Field(None, ge=0)
    min_energy_two_days_wh: float | None = Field(None, ge=0)

    @field_validator("window")
    @classmethod
    def _window_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.split("-")
        if len(parts) != 2 or not all(HHMM.match(p.strip()) for p in parts):
            raise ValueError(f"window {value!r} is not 'HH:MM-HH:MM'")
        if parts[0].strip() == parts[1].strip():
            raise ValueError(f"window {value!r} has zero length")
        return value

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("no day: the schedule would never run (remove `days` for every day)")
        return value

    @field_validator("at")
    @classmethod
    def _at_format(cls, value: str | None) -> str | None:
        if value is not None and not HHMM.match(value):
            raise ValueError(f"at {value!r} is not 'HH:MM'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleConfig:
        if self.at is not None and (self.window is not None or self.tariff is not None):
            raise ValueError("a schedule has either `at` or a `window`/`tariff`, not both")
        if self.at is None and self.window is None and self.tariff is None:
            raise ValueError("a schedule needs `window`, `tariff` or `at`")
        if (self.action == "boost-deficit") != (self.at is not None):
            raise ValueError("action boost-deficit goes with `at`, eco/boost with a window")
        return self


class MeterSimConfig(Strict):
    period_s: float = Field(2.0, gt=0, le=60)
    quantum_va: float = Field(1.0, gt=0, le=1000)
    reactive_ratio: float = Field(0.25, ge=0, le=2)


class SimConfig(Strict):
    meter: MeterSimConfig = MeterSimConfig()
    ambient_c: Celsius = 20.0
    cold_water_c: Celsius = 15.0
    draws: list[tuple[str, float]] = [
        ("07:00", 40.0),
        ("07:15", 30.0),
        ("13:00", 10.0),
        ("19:30", 50.0),
        ("21:00", 30.0),
    ]

    @field_validator("draws")
    @classmethod
    def _draw_times(cls, value: list[tuple[str, float]]) -> list[tuple[str, float]]:
        for at, litres in value:
            if not HHMM.match(at):
                raise ValueError(f"draw time {at!r} is not 'HH:MM'")
            if litres < 0:
                raise ValueError(f"draw of {litres} litres is negative")
        return value


class WebConfig(Strict):
    """`web:` — the local page (off when the section is absent). No default credential: a
    listen address other than loopback needs a password, and reading without it is opt-in."""

    listen: str = "127.0.0.1:8080"
    password: SecretStr | None = Field(None, min_length=8)
    read_without_password: bool = False  # on the LAN: anyone may look, only the password acts

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: may resolve to anything

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"listen {value!r} is not host:port (like 127.0.0.1:8080)")
        return value

    @model_validator(mode="after")
    def _credential(self) -> WebConfig:
        if not self.loopback and self.password is None:
            raise ValueError(
                f"listen {self.listen!r} is reachable from the network: set web.password"
            )
        if self.read_without_password and self.password is None:
            raise ValueError("read_without_password needs a password (to act)")
        return self


class TicEntities(Strict):
    """The meter's own values, as `pvopt tic` publishes them (Home Assistant entities only)."""

    topic_prefix: str = "tic"  # <prefix>/EAST, EAIT, SINSTS, SINSTI, LTARF
    summary_topic: str = "tic/STGE/decoded"  # `pvopt tic`'s decoded status register (Tempo)
    tempo_today_key: str = "tempo_today"
    tempo_tomorrow_key: str = "tempo_tomorrow"


class HomeAssistantConfig(Strict):
    """MQTT discovery for Home Assistant (pvopt/adapters/homeassistant.py)."""

    discovery: bool = False
    prefix: str = Field(default="homeassistant", pattern=r"^[^#+\s]+$")
    # the site's name in topics and unique_ids: two pvopt on one broker need two node_ids
    node_id: str = Field(default="pvopt", pattern=r"^[A-Za-z0-9_-]+$")
    name: str = "pvopt"  # the device's name in Home Assistant
    tic: TicEntities | None = None  # entities for the meter's own values


class Config(Strict):
    site: SiteConfig = SiteConfig()
    mqtt: MqttConfig = MqttConfig()
    meter: MeterConfig = MeterConfig()
    tic: TicConfig = TicConfig()
    regulation: RegulationConfig = RegulationConfig()
    state: StateConfig = StateConfig()
    influxdb: InfluxConfig | None = None
    web: WebConfig | None = None  # the local page (pvopt/adapters/web)
    equipment: list[Equipment] = Field(min_length=1)
    schedules: list[ScheduleConfig] = []
    sim: SimConfig = SimConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    source: str | None = Field(None, exclude=True)  # the file it came from, for messages

    def load_id(self, index: int) -> int:
        eq = self.equipment[index]
        return eq.id if eq.id is not None else index

    def specs(self) -> list[LoadSpec]:
        """The loads in priority order (lower `priority` first, ties in list order)."""
        ranked = sorted(
            range(len(self.equipment)),
            key=lambda i: (
                self.equipment[i].priority if self.equipment[i].priority is not None else i,
                i,
            ),
        )
        return [load_spec(self.equipment[i], self.load_id(i)) for i in ranked]

    def wiring(self) -> list[LoadWiring]:
        """Each load's topics and payload codec, in priority order."""
        by_name = {eq.name: (eq, self.load_id(i)) for i, eq in enumerate(self.equipment)}
        out = []
        for spec in self.specs():
            eq, load_id = by_name[spec.name]
            topics = load_kind(eq.type_name()).topics(eq, load_id)
            out.append(LoadWiring(spec, topics, retain=eq.retain, codec=eq.codec()))
        return out

    def schedule_list(self) -> list[Schedule]:
        """The `schedules:` entries for the planner, each load resolved to its name."""
        names: dict[str, str] = {}
        for i, eq in enumerate(self.equipment):
            names[eq.name] = eq.name
            names.setdefault(str(self.load_id(i)), eq.name)
        out = []
        for sc in self.schedules:
            start = end = at = None
            if sc.window is not None:
                a, b = (p.strip() for p in sc.window.split("-"))
                start, end = time.fromisoformat(a), time.fromisoformat(b)
            if sc.at is not None:
                at = time.fromisoformat(sc.at)
            out.append(
                Schedule(
                    name=sc.name,
                    load=names[str(sc.load)],
                    action=sc.action,
                    start=start,
                    end=end,
                    tariff=sc.tariff is not None,
                    at=at,
                    days=frozenset(DAY_NAMES.index(d) for d in sc.days),
                    min_today_wh=sc.min_energy_today_wh,
                    min_two_days_wh=sc.min_energy_two_days_wh,
                )
            )
        return out

    def tank_litres(self) -> dict[str, float]:
        """Tank volumes the user gave, for eco planning."""
        out = {}
        for eq in self.equipment:
            litres = eq.planning_tank_litres()
            if litres is not None:
                out[eq.name] = litres
        return out


def load_spec(eq: EquipmentModel, load_id: int) -> LoadSpec:
    """The core's view of one validated equipment entry, as its registered kind builds it."""
    return load_kind(eq.type_name()).spec(eq, load_id)


# -- loading and error reporting ---------------------------------------------------------------

ENV_KEYS: dict[str, tuple[str, ...]] = {
    "MQTT_BROKER_HOST": ("mqtt", "host"),
    "MQTT_BROKER_PORT": ("mqtt", "port"),
    "MQTT_KEEPALIVE": ("mqtt", "keepalive"),
    "MQTT_USERNAME": ("mqtt", "username"),
    "MQTT_PASSWORD": ("mqtt", "password"),
    "INFLUXDB_HOST": ("influxdb", "host"),
    "INFLUXDB_PORT": ("influxdb", "port"),
    "INFLUXDB_DATABASE": ("influxdb", "database"),
    "INFLUXDB_USERNAME": ("influxdb", "username"),
    "INFLUXDB_PASSWORD": ("influxdb", "password"),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config: where (file, line, dotted key) and what."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; `problems` says every reason found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest YAML node on `loc` (the key's own line for mappings)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _message(err: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """Turn one pydantic error into (loc without union tags, a user's message)."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        tag = err.get("ctx", {}).get("tag")
        loc = (*loc, "type")
        if tag is None:
            return loc, f"missing; one of {', '.join(LOAD_KINDS.names())}"
        return loc, LOAD_KINDS.unknown_message(str(tag))
    if kind == "extra_forbidden":
        parent = loc[:-1]
        return loc, f"unknown key {loc[-1]!r}" + (f" in {dotted(parent)}" if parent else "")
    if kind == "missing":
        return loc, "required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return loc, f"{msg} (got {err['input']!r})" if kind not in {
        "value_error",
        "assertion_error",
    } and not isinstance(err.get("input"), dict | list) else msg


def _semantic(cfg: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-entry rules pydantic cannot see one field at a time."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    seen_names: dict[str, int] = {}
    seen_ids: dict[int, int] = {}
    for i, eq in enumerate(cfg.equipment):
        if eq.name in seen_names:
            out.append(
                (
                    ("equipment", i, "name"),
                    f"duplicate name {eq.name!r} (also equipment[{seen_names[eq.name]}])",
                )
            )
        seen_names.setdefault(eq.name, i)
        load_id = cfg.load_id(i)
        if load_id in seen_ids:
            out.append(
                (
                    ("equipment", i, "id"),
                    f"duplicate id {load_id} (also equipment[{seen_ids[load_id]}])",
                )
            )
        seen_ids.setdefault(load_id, i)
    if cfg.mqtt.tls.key_file is not None and cfg.mqtt.tls.cert_file is None:
        out.append(
            (("mqtt", "tls", "key_file"), "key_file without cert_file: give the certificate too")
        )
    out += _topic_clashes(cfg)
    ids = {cfg.load_id(i) for i in range(len(cfg.equipment))}
    schedule_names: dict[str, int] = {}
    for i, sched in enumerate(cfg.schedules):
        if sched.name in schedule_names:
            out.append(
                (
                    ("schedules", i, "name"),
                    f"duplicate name {sched.name!r} (also schedules[{schedule_names[sched.name]}])"
                    ": the status and the planner tell schedules apart by name",
                )
            )
        schedule_names.setdefault(sched.name, i)
        if sched.load not in seen_names and not (
            str(sched.load).isdigit() and int(sched.load) in ids
        ):
            close = difflib.get_close_matches(str(sched.load), list(seen_names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((("schedules", i, "load"), f"unknown load {sched.load!r}{hint}"))
    return out


def _topic_clashes(cfg: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """One topic, one role: a topic read as two values, or both read and written by pvopt,
    mixes them up silently (a command would come back as a meter value)."""
    roles: list[tuple[str, tuple[str | int, ...], str]] = []  # (topic, where, what)
    m = cfg.meter
    read = meter_source(m).meter_topics()  # the topics this meter kind subscribes to
    for key in MeterTopics.model_fields:
        if getattr(m.topics, key) in read:
            roles.append((getattr(m.topics, key), ("meter", "topics", key), f"meter.topics.{key}"))
    if m.grid_topic and m.grid_topic in read:
        roles.append((m.grid_topic, ("meter", "grid_topic"), "meter.grid_topic"))
    if m.pv_topic:
        roles.append((m.pv_topic, ("meter", "pv_topic"), "meter.pv_topic"))
    roles.append((m.tariff_topic, ("meter", "tariff_topic"), "meter.tariff_topic"))
    for i, eq in enumerate(cfg.equipment):
        topics = load_kind(eq.type_name()).topics(eq, cfg.load_id(i))
        if topics.temperature is not None:
            probe: tuple[str | int, ...] = ("equipment", i, "temperature_topic")
            roles.append((topics.temperature, probe, f"equipment[{i}]'s probe"))
        command: tuple[str | int, ...] = ("equipment", i, "command_topic")
        roles.append((topics.command, command, f"equipment[{i}]'s commands"))
        roles.append((topics.control, ("equipment", i, "id"), f"equipment[{i}]'s control"))
    out: list[tuple[tuple[str | int, ...], str]] = []
    first: dict[str, str] = {}
    for topic, where, what in roles:
        if topic.startswith(OWN_TOPICS):
            out.append((where, f"topic {topic!r} is under {OWN_TOPICS}, pvopt's own topics"))
        elif topic in first:
            out.append((where, f"topic {topic!r} is also {first[topic]}: one topic, one role"))
        else:
            first[topic] = what
    return out


def apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, tuple[str | int, ...]]:
    """Overlay the seed's env vars on the raw config (env > file); return what came from env."""
    used: dict[str, tuple[str | int, ...]] = {}
    for var, (section, key) in ENV_KEYS.items():
        value = environ.get(var)
        if value is None or value == "":
            continue
        if section == "influxdb" and raw.get("influxdb") is None:
            raw["influxdb"] = {}
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            continue
        target[key] = value
        used[var] = (section, key)
    hc = (environ.get("HC_START_TIME"), environ.get("HC_END_TIME"))
    equipment = raw.get("equipment")
    if all(hc) and not raw.get("schedules") and isinstance(equipment, list):
        window = "-".join(_hhmm(v) for v in hc if v)
        raw["schedules"] = [
            {"name": "offpeak", "load": eq["name"], "window": window, "action": "eco"}
            for eq in equipment
            if isinstance(eq, dict) and "name" in eq and ("temp_min" in eq or "min_energy" in eq)
        ]
        for i in range(len(raw["schedules"])):
            used[f"HC_START_TIME/HC_END_TIME ({window})#{i}"] = ("schedules", i)
    return used


def _hhmm(value: str) -> str:
    """The seed's HC times as HH:MM (it also wrote H:MM and HH:MM:SS)."""
    parts = value.strip().split(":")
    if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
        return f"{int(parts[0]):02d}:{int(parts[1]):02d}"
    return value.strip()


def parse(
    text: str,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate config text; raise ConfigError naming file, line and key of every problem."""
    binary = re.search(r"[\x00-\x08\x0e-\x1f\x7f]", text)
    if binary is not None:
        line = text.count("\n", 0, binary.start()) + 1
        raise ConfigError(
            [
                Problem(
                    source,
                    line,
                    "",
                    f"not a text file (control character {binary.group()!r}): "
                    "a pvopt config is YAML text",
                )
            ]
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            [
                Problem(
                    source,
                    mark.line + 1 if mark else None,
                    "",
                    f"not valid YAML: {exc.problem or exc}",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:  # the reader's own errors (characters YAML refuses)
        raise ConfigError([Problem(source, None, "", f"not valid YAML: {exc}")]) from None
    cycle = _self_alias(node, (), [])
    if cycle is not None:
        loc, line = cycle
        raise ConfigError(
            [
                Problem(
                    source,
                    line,
                    dotted(loc),
                    "a YAML alias here contains the value it is in: give the value, not a loop",
                )
            ]
        )
    duplicates = _duplicate_keys(node, ())
    if duplicates:
        raise ConfigError([Problem(source, line, dotted(loc), m) for loc, line, m in duplicates])
    if raw is None:
        raise ConfigError([Problem(source, None, "", "empty file; it needs at least `equipment:`")])
    if not isinstance(raw, dict):
        raise ConfigError(
            [Problem(source, 1, "", "the top level must be a mapping with `equipment:`")]
        )
    env_used = apply_env(raw, os.environ if environ is None else environ)
    from_env = {path: var for var, path in env_used.items()}
    try:
        cfg = Config.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, msg = _message(err)
            var = from_env.get(tuple(loc[:2]))
            if var:
                msg += f" (from env {var.split('#')[0]})"
            problems.append(Problem(source, _line_of(node, loc), dotted(loc), msg))
        raise ConfigError(problems) from None
    semantic = _semantic(cfg)
    if semantic:
        raise ConfigError(
            [Problem(source, _line_of(node, loc), dotted(loc), m) for loc, m in semantic]
        )
    if base_dir is None:
        return cfg
    cfg = _resolve_paths(cfg, base_dir)
    files = _check_files(cfg)
    if files:
        raise ConfigError(
            [Problem(source, _line_of(node, loc), dotted(loc), m) for loc, m in files]
        )
    return cfg


def _self_alias(
    node: yaml.Node | None, loc: tuple[str | int, ...], stack: list[yaml.Node]
) -> tuple[tuple[str | int, ...], int] | None:
    """A node that contains itself (`a: &a [*a]`): loading it would recurse without end."""
    if node is None or not isinstance(node, yaml.CollectionNode):
        return None
    if any(seen is node for seen in stack):
        return loc, node.start_mark.line + 1
    stack.append(node)
    try:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                found = _self_alias(value_node, (*loc, str(key_node.value)), stack)
                if found is not None:
                    return found
        else:
            for i, item in enumerate(node.value):
                found = _self_alias(item, (*loc, i), stack)
                if found is not None:
                    return found
    finally:
        stack.pop()
    return None


def _duplicate_keys(
    node: yaml.Node | None, loc: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], int, str]]:
    """Keys given twice in one mapping: YAML keeps the last silently, the user meant one."""
    out: list[tuple[tuple[str | int, ...], int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                out.append(
                    ((*loc, key), line, f"duplicate key (also line {seen[key]}): give it once")
                )
            seen.setdefault(key, line)
            out += _duplicate_keys(value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out += _duplicate_keys(item, (*loc, i))
    return out


def _check_files(cfg: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """What the service will open: TLS files that exist, can be read and hold what they
    should; a state store in a folder that exists."""
    import ssl

    out: list[tuple[tuple[str | int, ...], str]] = []
    tls = cfg.mqtt.tls
    readable = {}
    for key in ("ca_file", "cert_file", "key_file"):
        name = getattr(tls, key)
        if name is None:
            continue
        try:
            with open(name, "rb") as f:
                f.read(1)
            readable[key] = name
        except FileNotFoundError:
            out.append((("mqtt", "tls", key), f"{name}: no such file"))
        except IsADirectoryError:
            out.append((("mqtt", "tls", key), f"{name}: a folder, not a file"))
        except OSError as exc:
            out.append((("mqtt", "tls", key), f"{name}: cannot read: {exc.strerror or exc}"))
    if "ca_file" in readable:
        try:
            ssl.create_default_context(cafile=readable["ca_file"])
        except (ssl.SSLError, ValueError):
            out.append((("mqtt", "tls", "ca_file"), f"{tls.ca_file}: not a PEM certificate"))
    if "cert_file" in readable and (tls.key_file is None or "key_file" in readable):
        try:
            ssl.create_default_context().load_cert_chain(tls.cert_file or "", tls.key_file)
        except (ssl.SSLError, ValueError):
            key = "cert_file" if tls.key_file is None else "key_file"
            out.append(
                (("mqtt", "tls", key), "the certificate and key are not a PEM pair that matches")
            )
    store = Path(cfg.state.path)
    if store.is_dir():
        out.append((("state", "path"), f"{store} is a folder, not a file: name the store file"))
    elif not store.parent.is_dir():
        out.append((("state", "path"), f"{store.parent}: no such folder for the state store"))
    return out


def _resolve_paths(cfg: Config, base: Path) -> Config:
    """Relative paths in a config resolve against the config file's folder (DESIGN §9)."""

    def fix(p: str | None) -> str | None:
        return p if p is None or Path(p).is_absolute() else str(base / p)

    tls = cfg.mqtt.tls.model_copy(
        update={
            "ca_file": fix(cfg.mqtt.tls.ca_file),
            "cert_file": fix(cfg.mqtt.tls.cert_file),
            "key_file": fix(cfg.mqtt.tls.key_file),
        }
    )
    return cfg.model_copy(
        update={
            "state": cfg.state.model_copy(update={"path": fix(cfg.state.path)}),
            "mqtt": cfg.mqtt.model_copy(update={"tls": tls}),
        }
    )


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [Problem(str(p), None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError([Problem(str(p), 1, "", "not UTF-8 text (UTF-16): save it as UTF-8")])
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise ConfigError(
            [Problem(str(p), line, "", "not a text file (NUL bytes): a pvopt config is YAML text")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [
                Problem(
                    str(p),
                    line,
                    "",
                    f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}): "
                    "save the file as UTF-8",
                )
            ]
        ) from None
    text = text.removeprefix("\ufeff")  # a BOM some editors write
    return parse(text, str(p), environ, p.resolve().parent)


def default_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--config FILE, else $PVOPT_CONFIG, else ./pvopt.yml (DESIGN §9)."""
    env = os.environ if environ is None else environ
    return explicit or env.get("PVOPT_CONFIG") or "pvopt.yml"


def masked_dump(cfg: Config) -> str:
    """The resolved config as YAML, secrets masked."""
    data = cfg.model_dump(mode="json", exclude={"source"})
    for section in ("mqtt", "influxdb"):
        if data.get(section) and data[section].get("password") is not None:
            data[section]["password"] = "********"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
