"""`homeassistant:` — MQTT discovery for Home Assistant."""

from __future__ import annotations

from pydantic import Field

from pvopt.kinds import Strict


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
