"""The YAML config (DESIGN §10) as pydantic models, with errors that name file, line and key."""

from __future__ import annotations

import difflib
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
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from machines.model import Kind, LoadSpec, Thresholds
from machines.policy import PolicyParams
from machines.schedules import DAY_NAMES, Schedule

MAX_POWER_W = 100_000.0
Power = Annotated[float, Field(gt=0, le=MAX_POWER_W)]
Celsius = Annotated[float, Field(ge=-20, le=110)]
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class MqttConfig(Strict):
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    keepalive: int = Field(120, ge=5, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig = TlsConfig()
    client_id: str = "pvopt"


class MeterTopics(Strict):
    sinsts: str = "tic/SINSTS"
    sinsti: str = "tic/SINSTI"
    erqt: str = "tic/ERQT"


class MeterConfig(Strict):
    kind: Literal["linky", "grid"] = "linky"
    topics: MeterTopics = MeterTopics()
    grid_topic: str | None = None
    json_key: str | None = None
    invert: bool = False
    pv_topic: str | None = None
    tariff_topic: str = "tic/PTEC"
    offpeak_values: list[str] = ["HC..", "HC", "HEURE CREUSE", "HEURES CREUSES"]
    stale_after_s: float = Field(30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _grid_needs_topic(self) -> MeterConfig:
        if self.kind == "grid" and not self.grid_topic:
            raise ValueError("meter.kind 'grid' needs meter.grid_topic")
        return self


class RegulationConfig(Strict):
    policy: Literal["default", "legacy"] = "default"
    tick_s: float = Field(5.0, gt=0, le=60)
    balance_band_w: float = Field(50.0, ge=0, le=5000)
    margin_w: float = Field(20.0, ge=0, le=5000)
    settle_s: float = Field(1.5, ge=0, le=60)
    command_refresh_s: float = Field(60.0, gt=0, le=3600)
    relay_on_delay_s: float = Field(60.0, ge=0, le=3600)
    relay_stop_deficit_wh: float = Field(7.5, ge=0, le=1000)
    relay_start_headroom_w: float = Field(300.0, ge=0, le=MAX_POWER_W)
    relay_stop_tolerance_w: float = Field(0.0, ge=0, le=MAX_POWER_W)

    def params(self) -> PolicyParams:
        return PolicyParams(
            name=self.policy,
            balance_band_w=self.balance_band_w,
            margin_w=self.margin_w,
            settle_s=self.settle_s,
            relay_on_delay_s=self.relay_on_delay_s,
            relay_stop_deficit_wh=self.relay_stop_deficit_wh,
            relay_start_headroom_w=self.relay_start_headroom_w,
            relay_stop_tolerance_w=self.relay_stop_tolerance_w,
        )


class StateConfig(Strict):
    path: str = "pvopt.db"
    checkpoint_s: float = Field(60.0, gt=0, le=3600)
    history_days: int = Field(400, ge=1)


class InfluxConfig(Strict):
    host: str = "localhost"
    port: int = Field(8086, ge=1, le=65535)
    database: str = "teleinfo"
    username: str | None = None
    password: SecretStr | None = None
    interval_s: int = Field(60, ge=10, le=3600)
    outbox_max_days: float = Field(30.0, gt=0)
    retention_policy: str | None = "pvopt"  # created if missing (never the default); None: default
    retention: str = Field("INF", pattern=r"^(INF|\d+[hdw])$")  # of the `pvopt` policy


class LoadSimConfig(Strict):
    """How the simulator and the virtual house model a load (ignored by the service)."""

    litres: float = Field(200.0, gt=0, le=5000)
    loss_w_per_k: float = Field(1.8, ge=0, le=1000)
    thermostat_c: Celsius = 65.0
    t0_c: Celsius = 50.0
    power_w: Power | None = None  # an UnknownPowerEquipment's real power


class _Equipment(Strict):
    name: str = Field(min_length=1)
    id: int | None = Field(None, ge=0)
    priority: int | None = None
    enabled: bool = True
    command_topic: str | None = None
    retain: bool = False
    sim: LoadSimConfig = LoadSimConfig()

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value


class _Dimmer(_Equipment):
    max_power: Power
    min_power_w: float = Field(50.0, ge=0, le=MAX_POWER_W)
    linearisation: Literal["phase_angle", "linear"] = "phase_angle"


class VariablePowerEquipment(_Dimmer):
    type: Literal["VariablePowerEquipment"]
    min_energy: float | None = Field(None, gt=0, le=10 * MAX_POWER_W * 24)
    period: int = Field(86400, gt=0, le=7 * 86400)


class TempDrivenVariablePowerEquipment(_Dimmer):
    type: Literal["TempDrivenVariablePowerEquipment"]
    temp_min: Celsius
    temp_eco: Celsius
    temp_sol_min: Celsius
    temp_max: Celsius
    temperature_topic: str | None = None
    tank_litres: float | None = Field(None, gt=0, le=5000)  # eco planning; learnt after a night

    @field_validator("temp_eco")
    @classmethod
    def _eco_above_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("temp_min")
        if low is not None and not value > low:
            raise ValueError(f"temp_eco ({value:g}) must be above temp_min ({low:g})")
        return value

    @field_validator("temp_sol_min")
    @classmethod
    def _sol_min_not_below_eco(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("temp_eco")
        if low is not None and value < low:
            raise ValueError(f"temp_sol_min ({value:g}) must not be below temp_eco ({low:g})")
        return value

    @field_validator("temp_max")
    @classmethod
    def _max_above_sol_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("temp_sol_min")
        if low is not None and not value > low:
            raise ValueError(f"temp_max ({value:g}) must be above temp_sol_min ({low:g})")
        low = info.data.get("temp_min")
        if low is not None and not value > low:
            raise ValueError(f"temp_max ({value:g}) must be above temp_min ({low:g})")
        return value


class _Relay(_Equipment):
    min_on_s: float = Field(0.0, ge=0, le=86400)
    min_off_s: float = Field(0.0, ge=0, le=86400)


class ConstantPowerEquipment(_Relay):
    type: Literal["ConstantPowerEquipment"]
    nominal_power: Power


class UnknownPowerEquipment(_Relay):
    type: Literal["UnknownPowerEquipment"]
    expected_power_w: Power


Equipment = Annotated[
    VariablePowerEquipment
    | TempDrivenVariablePowerEquipment
    | ConstantPowerEquipment
    | UnknownPowerEquipment,
    Field(discriminator="type"),
]
EQUIPMENT_TYPES = (
    "VariablePowerEquipment",
    "TempDrivenVariablePowerEquipment",
    "ConstantPowerEquipment",
    "UnknownPowerEquipment",
)
DAYS = DAY_NAMES


class ScheduleConfig(Strict):
    name: str = Field(min_length=1)
    load: str | int
    window: str | None = None
    tariff: Literal["HC"] | None = None
    at: str | None = None
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(DAYS)
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


class TicEntities(Strict):
    """The meter's own values, as `pvopt tic` publishes them (Home Assistant entities only)."""

    topic_prefix: str = "tic"  # <prefix>/EAST, EAIT, SINSTS, SINSTI, LTARF
    summary_topic: str = "tic/summary"  # retained JSON with the Tempo colours
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
    regulation: RegulationConfig = RegulationConfig()
    state: StateConfig = StateConfig()
    influxdb: InfluxConfig | None = None
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
        return {
            eq.name: eq.tank_litres
            for eq in self.equipment
            if getattr(eq, "tank_litres", None) is not None
        }


def load_spec(eq: Any, load_id: int) -> LoadSpec:
    """The core's view of one validated equipment entry."""
    common = {"name": eq.name, "id": load_id, "enabled": eq.enabled}
    if isinstance(eq, TempDrivenVariablePowerEquipment):
        th = Thresholds(eq.temp_min, eq.temp_eco, eq.temp_sol_min, eq.temp_max)
        return LoadSpec(
            kind=Kind.DIMMER,
            max_w=eq.max_power,
            min_power_w=eq.min_power_w,
            thresholds=th,
            **common,
        )
    if isinstance(eq, VariablePowerEquipment):
        return LoadSpec(
            kind=Kind.DIMMER,
            max_w=eq.max_power,
            min_power_w=eq.min_power_w,
            min_energy_wh=eq.min_energy,
            period_s=eq.period,
            **common,
        )
    if isinstance(eq, ConstantPowerEquipment):
        return LoadSpec(
            kind=Kind.RELAY,
            max_w=eq.nominal_power,
            min_on_s=eq.min_on_s,
            min_off_s=eq.min_off_s,
            **common,
        )
    return LoadSpec(
        kind=Kind.RELAY,
        max_w=eq.expected_power_w,
        min_on_s=eq.min_on_s,
        min_off_s=eq.min_off_s,
        learns_power=True,
        **common,
    )


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
    loc = tuple(p for p in err["loc"] if p not in EQUIPMENT_TYPES)
    kind = err["type"]
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        tag = err.get("ctx", {}).get("tag")
        loc = (*loc, "type")
        if tag is None:
            return loc, f"missing; one of {', '.join(EQUIPMENT_TYPES)}"
        close = difflib.get_close_matches(str(tag), EQUIPMENT_TYPES, n=1, cutoff=0.0)
        return (
            loc,
            f"unknown type {tag!r}; did you mean {close[0]!r}? "
            f"(valid: {', '.join(EQUIPMENT_TYPES)})",
        )
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
    ids = {cfg.load_id(i) for i in range(len(cfg.equipment))}
    for i, sched in enumerate(cfg.schedules):
        if sched.load not in seen_names and not (
            str(sched.load).isdigit() and int(sched.load) in ids
        ):
            close = difflib.get_close_matches(str(sched.load), list(seen_names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((("schedules", i, "load"), f"unknown load {sched.load!r}{hint}"))
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
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(
            [Problem(source, line, "", f"not valid YAML: {exc.problem or exc}")]
        ) from None
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
            var = from_env.get(tuple(loc[:2]))  # type: ignore[arg-type]
            if var:
                msg += f" (from env {var.split('#')[0]})"
            problems.append(Problem(source, _line_of(node, loc), dotted(loc), msg))
        raise ConfigError(problems) from None
    semantic = _semantic(cfg)
    if semantic:
        raise ConfigError(
            [Problem(source, _line_of(node, loc), dotted(loc), m) for loc, m in semantic]
        )
    return _resolve_paths(cfg, base_dir) if base_dir is not None else cfg


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
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem(str(p), None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
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
