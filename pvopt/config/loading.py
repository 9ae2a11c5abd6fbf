"""Reading a config: the file's bytes, the YAML, the seed's env vars, the models, the checks;
every problem as file, line and key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pvopt.config.checks import check_files, cross_section_problems
from pvopt.config.errors import ConfigError, Problem, dotted
from pvopt.config.model import Config
from pvopt.config.nodes import duplicate_keys, line_of, self_alias
from pvopt.kinds import LOAD_KINDS

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
    cycle = self_alias(node, (), [])
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
    duplicates = duplicate_keys(node, ())
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
            problems.append(Problem(source, line_of(node, loc), dotted(loc), msg))
        raise ConfigError(problems) from None
    semantic = cross_section_problems(cfg)
    if semantic:
        raise ConfigError(
            [Problem(source, line_of(node, loc), dotted(loc), m) for loc, m in semantic]
        )
    if base_dir is None:
        return cfg
    cfg = _resolve_paths(cfg, base_dir)
    files = check_files(cfg)
    if files:
        raise ConfigError([Problem(source, line_of(node, loc), dotted(loc), m) for loc, m in files])
    return cfg


def _resolve_paths(cfg: Config, base: Path) -> Config:
    """Relative paths in a config resolve against the config file's folder (docs/cli.md)."""

    def fix(p: str | None) -> str | None:
        return p if p is None or Path(p).is_absolute() else str(base / p)

    tls = cfg.mqtt.tls.model_copy(
        update={
            "ca_file": fix(cfg.mqtt.tls.ca_file),
            "cert_file": fix(cfg.mqtt.tls.cert_file),
            "key_file": fix(cfg.mqtt.tls.key_file),
        }
    )
    forecast = cfg.forecast
    if forecast is not None and forecast.file is not None:
        forecast = forecast.model_copy(update={"file": fix(forecast.file)})
    return cfg.model_copy(
        update={
            "state": cfg.state.model_copy(update={"path": fix(cfg.state.path)}),
            "mqtt": cfg.mqtt.model_copy(update={"tls": tls}),
            "forecast": forecast,
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
    """--config FILE, else $PVOPT_CONFIG, else ./pvopt.yml (docs/cli.md)."""
    env = os.environ if environ is None else environ
    return explicit or env.get("PVOPT_CONFIG") or "pvopt.yml"


def masked_dump(cfg: Config) -> str:
    """The resolved config as YAML, secrets masked."""
    data = cfg.model_dump(mode="json", exclude={"source"})
    for section in ("mqtt", "influxdb"):
        if data.get(section) and data[section].get("password") is not None:
            data[section]["password"] = "********"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
