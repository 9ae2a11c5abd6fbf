"""Home Assistant MQTT discovery: pure payloads from the config, and the small link that
republishes them whenever Home Assistant comes online and clears the ones a config edit removed.

There is one command path by construction: every control entity publishes pvopt's own JSON
command on `regulation/control` (a `command_template`), and every state is read from the
retained `regulation/status` (a `value_template`). A refused command changes nothing in pvopt,
so the next status brings Home Assistant's entity back to pvopt's real value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, get_args

from machines.battery import MODES as BATTERY_MODES
from machines.commands import MAX_DURATION_S
from machines.model import State
from machines.wiring import CONTROL_TOPIC, ONLINE_TOPIC, STATUS_TOPIC
from pvopt.config import Config, HomeAssistantConfig
from pvopt.kinds.base import Celsius

log = logging.getLogger(__name__)

# the mode select's options and the `regulation/control` command each one sends
MODE_COMMANDS = {"auto": "auto", "off": "off", "boost": "force"}
STATE_OPTIONS = [s.value for s in State]
TEMPO_OPTIONS = ["blue", "white", "red"]
THRESHOLD_NAMES = {
    "temp_min": "Minimum temperature",
    "temp_eco": "Eco temperature",
    "temp_sol_min": "Solar restart temperature",
    "temp_max": "Maximum temperature",
}
THRESHOLD_STEP = 0.5
BOOST_MINUTES = {"min": 5, "max": 1440, "step": 5, "default": 60}
assert BOOST_MINUTES["max"] * 60 <= MAX_DURATION_S
# A load's entities that show what its device does, or act through it: unavailable while the
# device says it is offline. The others stay: the diagnostics say why (Reason, Device online),
# the probe is not the device, and the settings are pvopt's own.
DEVICE_BOUND = frozenset({"state", "power", "measured_power", "energy", "mode", "boost"})

Message = tuple[str, dict[str, Any]]
Publish = Callable[[str, str], None]  # retained, QoS 1


def _celsius_bounds() -> tuple[float, float]:
    """The config's own bounds for a temperature, so Home Assistant offers what pvopt takes."""
    lo = hi = None
    for rule in get_args(Celsius)[1].metadata:
        lo = getattr(rule, "ge", lo)
        hi = getattr(rule, "le", hi)
    assert lo is not None and hi is not None
    return float(lo), float(hi)


def site_identifier(ha: HomeAssistantConfig) -> str:
    return f"pvopt_{ha.node_id}"


def _load_value(load_id: int, key: str) -> str:
    """A Jinja expression for one load's field in the status (by id: names may change)."""
    return f"(value_json.loads | selectattr('id', 'eq', {load_id}) | first)[{key!r}]"


def _device_availability(load_id: int) -> dict[str, str]:
    """The load's device as an availability source, read from the status: `offline` only when
    the device said so (`online` false); a device that never said (null) is not unavailable."""
    online = _load_value(load_id, "online")
    return {
        "topic": STATUS_TOPIC,
        "value_template": f"{{{{ 'offline' if {online} is false else 'online' }}}}",
        "payload_available": "online",
        "payload_not_available": "offline",
    }


def _force_template(load_id: int, boost_entity: str) -> str:
    """pvopt's `force` command for this load, lasting what the boost duration number holds
    (its entity id is fixed by its `object_id`; 60 min while it is unknown)."""
    minutes = f"states({boost_entity!r}) | float({BOOST_MINUTES['default']})"
    return (
        f'{{"command": "force", "name": {load_id}, '
        f'"duration": {{{{ (({minutes}) * 60) | round(0) | int }}}}}}'
    )


def boost_minutes_topic(ha: HomeAssistantConfig, load_id: int) -> str:
    """Where the boost duration lives: Home Assistant's own setting, kept retained on the
    broker (pvopt's commands take a duration, so pvopt need not store it)."""
    return f"pvopt/{ha.node_id}/load{load_id}/boost_minutes"


def discovery(cfg: Config) -> list[Message]:
    """Every discovery config for this site, as (topic, payload) pairs, in a stable order."""
    ha = cfg.homeassistant
    node = ha.node_id
    site_id = site_identifier(ha)
    origin = {"name": "pvopt"}  # Home Assistant logs which application announced an entity
    availability = [
        {"topic": ONLINE_TOPIC, "payload_available": "online", "payload_not_available": "offline"}
    ]
    site_device = {
        "identifiers": [site_id],
        "name": ha.name,
        "manufacturer": "pvopt",
        "model": "PV surplus router",
    }
    out: list[Message] = []

    def add(component: str, key: str, device: dict[str, Any], **config: Any) -> None:
        payload = {
            "unique_id": f"{site_id}_{key}",
            "object_id": config.pop("object_id", f"{node}_{key}"),
            "device": device,
            "availability": availability,
            "origin": origin,
            **config,
        }
        out.append((f"{ha.prefix}/{component}/{node}/{key}/config", payload))

    def status_sensor(key: str, name: str, template: str, **config: Any) -> None:
        add(
            "sensor",
            key,
            site_device,
            name=name,
            state_topic=STATUS_TOPIC,
            value_template=template,
            **config,
        )

    power: dict[str, Any] = {
        "unit_of_measurement": "W",
        "device_class": "power",
        "state_class": "measurement",
    }
    energy: dict[str, Any] = {
        "unit_of_measurement": "Wh",
        "device_class": "energy",
        "state_class": "total_increasing",
    }
    status_sensor("grid_power", "Grid power", "{{ value_json.grid_w }}", **power)
    status_sensor("surplus_power", "Surplus power", "{{ value_json.surplus_w }}", **power)
    status_sensor("diverted_power", "Diverted power", "{{ value_json.diverted_w }}", **power)
    for key, name in (("import", "imported"), ("export", "exported"), ("diverted", "diverted")):
        template = f"{{{{ value_json.energy_total.{key}_wh }}}}"
        status_sensor(f"{key}_energy", f"Energy {name}", template, **energy)
    add(
        "binary_sensor",
        "meter_stale",
        site_device,
        name="Meter stale",
        device_class="problem",
        state_topic=STATUS_TOPIC,
        value_template="{{ 'ON' if value_json.meter.stale else 'OFF' }}",
    )
    status_sensor(
        "meter_rejected",
        "Rejected meter payloads",
        "{{ value_json.meter.rejected }}",
        entity_category="diagnostic",
        icon="mdi:alert-circle-outline",
    )
    if cfg.influxdb is not None:
        status_sensor(
            "influxdb_backlog",
            "InfluxDB backlog",
            # age of the newest interval InfluxDB holds: grows while it is unreachable
            "{% set s = value_json.influxdb.sent_until %}"
            "{{ (value_json.date - s) | round(0) if s else None }}",
            unit_of_measurement="s",
            device_class="duration",
            entity_category="diagnostic",
        )
    if cfg.tariff is not None:  # today's figures, reset at local midnight (`money.since`)
        money: dict[str, Any] = {
            "unit_of_measurement": "EUR",
            "device_class": "monetary",
            "state_class": "total",
            "last_reset_value_template": "{{ value_json.money.since }}",
        }
        status_sensor("cost_today", "Grid cost today", "{{ value_json.money.cost_eur }}", **money)
        status_sensor(
            "solar_savings_today",
            "Solar savings today",
            "{{ value_json.money.saved_eur }}",
            icon="mdi:piggy-bank-outline",
            **money,
        )
    if cfg.battery is not None:  # as pvopt reads it (+ charging), and who fills first
        status_sensor("battery_power", "Battery power", "{{ value_json.battery.power_w }}", **power)
        status_sensor(
            "battery_soc",
            "Battery state of charge",
            "{{ value_json.battery.soc }}",
            unit_of_measurement="%",
            device_class="battery",
            state_class="measurement",
        )
        add(
            "select",
            "battery_mode",
            site_device,
            name="Battery mode",
            icon="mdi:home-battery-outline",
            options=sorted(BATTERY_MODES),
            state_topic=STATUS_TOPIC,
            value_template="{{ value_json.battery.mode }}",
            command_topic=CONTROL_TOPIC,
            command_template='{"command": "battery_mode", "mode": "{{ value }}"}',
        )
    if ha.tic is not None:
        _tic_entities(ha, add, site_device, energy)

    c_lo, c_hi = _celsius_bounds()
    reads_back = {eq.name: eq.device.model().reads_back() for eq in cfg.equipment}
    for spec in cfg.specs():
        lid = spec.id
        key = f"load{lid}"
        reports = reads_back[spec.name]
        # with a device that reports availability, its entities need pvopt AND the device
        bound: dict[str, Any] = {}
        if "availability" in reports:
            bound = {
                "availability": [*availability, _device_availability(lid)],
                "availability_mode": "all",
            }
        device = {
            "identifiers": [f"{site_id}_{key}"],
            "name": spec.name,
            "manufacturer": "pvopt",
            "model": f"{spec.kind.value} load",
            "via_device": site_id,
        }

        def load_add(
            component: str,
            sub: str,
            dev: dict[str, Any] = device,
            bound: dict[str, Any] = bound,
            key: str = key,
            **c: Any,
        ) -> None:
            add(component, f"{key}_{sub}", dev, **(bound if sub in DEVICE_BOUND else {}), **c)

        def sensor(sub: str, name: str, field: str, lid: int = lid, **c: Any) -> None:
            load_add(
                "sensor",
                sub,
                name=name,
                state_topic=STATUS_TOPIC,
                value_template=f"{{{{ {_load_value(lid, field)} }}}}",
                **c,
            )

        sensor("state", "State", "state", device_class="enum", options=STATE_OPTIONS)
        # free text: the reasons are an open set (the policy's, the machine's, the device's)
        sensor("reason", "Reason", "reason", entity_category="diagnostic", icon="mdi:information")
        sensor("power", "Power", "power_w", **power)
        if "power" in reports:
            # null (no fresh reading) renders None: Home Assistant shows unknown
            sensor("measured_power", "Measured power", "measured_w", **power)
        sensor("energy", "Energy", "energy_total_wh", **energy)
        if "availability" in reports:
            online = _load_value(lid, "online")
            load_add(
                "binary_sensor",
                "device_online",
                name="Device online",
                device_class="connectivity",
                entity_category="diagnostic",
                state_topic=STATUS_TOPIC,
                # null: the device has not said yet, unknown rather than a guess
                value_template=(
                    f"{{% set o = {online} %}}"
                    "{{ 'ON' if o is true else ('OFF' if o is false else None) }}"
                ),
            )
        if spec.thresholds is not None:
            sensor(
                "temperature",
                "Water temperature",
                "temperature_c",
                unit_of_measurement="°C",
                device_class="temperature",
                state_class="measurement",
            )
        if spec.thresholds is not None and cfg.forecast is not None:  # the heating plan
            plan = f"{_load_value(lid, 'plan')}"
            load_add(
                "sensor",
                "plan_goal",
                name="Planned temperature",
                state_topic=STATUS_TOPIC,
                # null: today's rule, no goal: Home Assistant shows unknown
                value_template=f"{{% set p = {plan} %}}{{{{ p.goal_c if p else None }}}}",
                unit_of_measurement="°C",
                device_class="temperature",
                icon="mdi:calendar-clock",
            )
            load_add(
                "sensor",
                "plan_reason",
                name="Plan",
                state_topic=STATUS_TOPIC,
                value_template=(
                    f"{{% set p = {plan} %}}{{{{ (p.reason or '')[:255] if p else '' }}}}"
                ),
                entity_category="diagnostic",
                icon="mdi:information",
            )
        load_add(
            "binary_sensor",
            "enabled",
            name="Enabled",
            entity_category="diagnostic",
            state_topic=STATUS_TOPIC,
            value_template=f"{{{{ 'ON' if {_load_value(lid, 'enabled')} else 'OFF' }}}}",
        )
        boost_object = f"{node}_{key}_boost_duration"
        boost_entity = f"number.{boost_object}"
        force = _force_template(lid, boost_entity)
        l_mode, l_state = _load_value(lid, "mode"), _load_value(lid, "state")
        load_add(
            "select",
            "mode",
            name="Mode",
            icon="mdi:tune-variant",
            options=list(MODE_COMMANDS),
            state_topic=STATUS_TOPIC,
            # pvopt's mode is auto or manual; manual is a boost (forced) or off
            value_template=(
                f"{{{{ 'auto' if {l_mode} == 'auto' else "
                f"('boost' if {l_state} in ['boost', 'eco'] else 'off') }}}}"
            ),
            command_topic=CONTROL_TOPIC,
            command_template=(
                f"{{% if value == 'boost' %}}{force}{{% else %}}"
                f'{{"command": "{{{{ value }}}}", "name": {lid}}}{{% endif %}}'
            ),
        )
        minutes_topic = boost_minutes_topic(ha, lid)
        load_add(
            "number",
            "boost_duration",
            object_id=boost_object,
            name="Boost duration",
            icon="mdi:timer-outline",
            unit_of_measurement="min",
            min=BOOST_MINUTES["min"],
            max=BOOST_MINUTES["max"],
            step=BOOST_MINUTES["step"],
            mode="box",
            command_topic=minutes_topic,
            state_topic=minutes_topic,
            retain=True,
        )
        load_add(
            "button",
            "boost",
            name="Boost",
            icon="mdi:rocket-launch",
            command_topic=CONTROL_TOPIC,
            command_template=force,
        )
        if spec.thresholds is not None:
            for th, name in THRESHOLD_NAMES.items():
                load_add(
                    "number",
                    th,
                    name=name,
                    entity_category="config",
                    device_class="temperature",
                    unit_of_measurement="°C",
                    min=c_lo,
                    max=c_hi,
                    step=THRESHOLD_STEP,
                    mode="box",
                    state_topic=STATUS_TOPIC,
                    value_template=f"{{{{ {_load_value(lid, th)} }}}}",
                    command_topic=CONTROL_TOPIC,
                    command_template=(
                        f'{{"command": "set", "name": {lid}, "{th}": {{{{ value }}}}}}'
                    ),
                )
    return out


def _tic_entities(
    ha: HomeAssistantConfig,
    add: Callable[..., None],
    device: dict[str, Any],
    energy: dict[str, Any],
) -> None:
    """The meter's own values as `pvopt tic` publishes them."""
    assert ha.tic is not None
    p = ha.tic.topic_prefix
    for label, name in (("EAST", "Linky energy imported"), ("EAIT", "Linky energy exported")):
        add(
            "sensor",
            f"tic_{label.lower()}",
            device,
            name=name,
            state_topic=f"{p}/{label}",
            # an index of 0 is a reader that lost the meter: unknown, never a reset
            value_template="{{ value | int(0) if value | int(0) > 0 else None }}",
            **energy,
        )
    for label, name in (("SINSTS", "Linky apparent power drawn"), ("SINSTI", "Linky injected")):
        add(
            "sensor",
            f"tic_{label.lower()}",
            device,
            name=name,
            state_topic=f"{p}/{label}",
            unit_of_measurement="VA",
            device_class="apparent_power",
            state_class="measurement",
            expire_after=120,
        )
    add("sensor", "tic_ltarf", device, name="Tariff", state_topic=f"{p}/LTARF", icon="mdi:cash")
    # `pvopt tic` says blue/white/red; other bridges the Linky's own BLEU/BLANC/ROUGE
    colours = (
        "{'BLEU': 'blue', 'BLUE': 'blue', 'BLAN': 'white', 'WHIT': 'white', "
        "'ROUG': 'red', 'RED': 'red'}"
    )
    for day, json_key in (
        ("today", ha.tic.tempo_today_key),
        ("tomorrow", ha.tic.tempo_tomorrow_key),
    ):
        add(
            "sensor",
            f"tic_tempo_{day}",
            device,
            name=f"Tempo colour {day}",
            icon="mdi:palette",
            device_class="enum",
            options=TEMPO_OPTIONS,
            state_topic=ha.tic.summary_topic,
            value_template=(
                f"{{{{ {colours}.get(((value_json[{json_key!r}] | default('')) "
                f"| string | upper)[:4]) }}}}"
            ),
        )


class DiscoveryLink:
    """Publishes the discovery configs on connect and whenever Home Assistant announces itself
    on `<prefix>/status`; a retained config of this node that the config no longer has (a
    removed load) is cleared with an empty retained payload as the broker hands it over."""

    def __init__(self, cfg: Config, publish: Publish, *, dry_run: bool = False):
        ha = cfg.homeassistant
        self.enabled = ha.discovery and not dry_run  # a dry run is never `online`
        self.messages = discovery(cfg) if self.enabled else []
        self.topics = {t for t, _ in self.messages}
        self.status_topic = f"{ha.prefix}/status"
        self.own_prefix = f"{ha.prefix}/"
        self.own_node = f"/{ha.node_id}/"
        self.publish = publish

    def subscriptions(self) -> list[str]:
        if not self.enabled:
            return []
        return [self.status_topic, f"{self.own_prefix}+{self.own_node}+/config"]

    def publish_all(self) -> None:
        for topic, payload in self.messages:
            self.publish(topic, json.dumps(payload))
        if self.messages:
            log.info("Home Assistant: published %d discovery configs", len(self.messages))

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Handle a message if it is ours; True when it was."""
        if not self.enabled:
            return False
        if topic == self.status_topic:
            if payload.strip() == b"online":
                self.publish_all()
            return True
        if self.is_own_config(topic):
            if payload and topic not in self.topics:
                log.info("Home Assistant: removing %s (no longer configured)", topic)
                self.publish(topic, "")
            return True
        return False

    def is_own_config(self, topic: str) -> bool:
        parts = topic.split("/")
        node = self.own_node.strip("/")
        return (
            topic.startswith(self.own_prefix)
            and len(parts) >= 4
            and parts[-1] == "config"
            and parts[-3] == node
        )
