"""The YAML config (docs/config.md) as pydantic models, one module per section, with errors that
name file, line and key. `load(path)` reads and validates a file; `parse(text)` the text."""

from __future__ import annotations

from pvopt.config.equipment import Equipment, load_spec
from pvopt.config.errors import ConfigError, Problem, dotted
from pvopt.config.forecast import ForecastConfig
from pvopt.config.homeassistant import HomeAssistantConfig, TicEntities
from pvopt.config.influx import InfluxConfig
from pvopt.config.loading import ENV_KEYS, apply_env, default_path, load, masked_dump, parse
from pvopt.config.model import Config
from pvopt.config.mqtt import MqttConfig, TlsConfig
from pvopt.config.regulation import RegulationConfig
from pvopt.config.schedules import ScheduleConfig
from pvopt.config.sim import MeterSimConfig, SimConfig
from pvopt.config.site import SiteConfig
from pvopt.config.state import StateConfig
from pvopt.config.tic import TicConfig
from pvopt.config.web import WebConfig
from pvopt.kinds import MAX_POWER_W, BatteryConfig, BatterySimConfig, MeterConfig, MeterTopics

__all__ = [
    "ENV_KEYS",
    "MAX_POWER_W",
    "BatteryConfig",
    "BatterySimConfig",
    "Config",
    "ConfigError",
    "Equipment",
    "ForecastConfig",
    "HomeAssistantConfig",
    "InfluxConfig",
    "MeterConfig",
    "MeterSimConfig",
    "MeterTopics",
    "MqttConfig",
    "Problem",
    "RegulationConfig",
    "ScheduleConfig",
    "SimConfig",
    "SiteConfig",
    "StateConfig",
    "TicConfig",
    "TicEntities",
    "TlsConfig",
    "WebConfig",
    "apply_env",
    "default_path",
    "dotted",
    "load",
    "load_spec",
    "masked_dump",
    "parse",
]
