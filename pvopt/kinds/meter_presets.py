"""Meter presets (`meter.preset`): shipped meters whose topics follow from the device's name.

Two shapes cover them, so each preset is a row of data, not a class:

- `ApparentPreset`: a Linky's TIC relayed as JSON, SINSTS (drawn) and SINSTI (injected)
  apparent power in VA, read like the `linky` kind (docs/meter.md): net S = SINSTS − SINSTI
  with the same pairing rule (`LinkyState`); there is no ERQT, so Q is 0 and P is taken as S.
- `SignedPreset`: a meter that measures signed active power in W itself (Shelly EM).

Each row says where its vendor documents the payload and the sign; `publish` is what the real
device sends, for the virtual house.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from machines.meter import (
    GridState,
    LinkyState,
    MeterValueError,
    check_active,
    check_apparent,
    json_number,
    json_object,
    parse_number,
)
from machines.model import MeterSnapshot
from pvopt.kinds.meters import HouseReading, MeterConfig, MeterPreset, MeterSource

Published = list[tuple[str, str]]


def apparent_pair(reading: HouseReading) -> tuple[int, int]:
    """(SINSTS, SINSTI) in VA a Linky shows for `reading`: |S| quantised, on one side."""
    g, q = reading.grid_w, reading.reactive_var
    s_va = int(round(math.hypot(g, q) / reading.quantum_va) * reading.quantum_va)
    return (s_va, 0) if g >= 0 else (0, s_va)


# -- the TIC relayed as JSON ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApparentPreset(MeterPreset):
    topic_template: str  # `{topic}` is `meter.topic`
    labels_at: str | None  # the key of the object holding the labels; None: the payload itself
    drawn_keys: tuple[str, ...]  # SINSTS's key, or a stand-in (PAPP), the first present wins
    injected_key: str  # SINSTI's key
    unwrap: str | None  # a label is {unwrap: value, ...} rather than the bare value
    partial: bool  # a message may carry only changed labels: no power label is no news
    render: Callable[[str, int, int], dict[str, object]]  # (topic, SINSTS, SINSTI) → payload

    def source(self, cfg: MeterConfig) -> MeterSource:
        return ApparentSource(cfg, self)


class ApparentSource(MeterSource):
    """One JSON topic carrying SINSTS and SINSTI (or historic PAPP) as apparent power."""

    kind = "preset"

    def __init__(self, cfg: MeterConfig, preset: ApparentPreset):
        super().__init__(cfg)
        self.preset = preset
        self.topic = preset.topic_template.format(topic=cfg.topic)
        self._topics = frozenset({self.topic})
        self.state = LinkyState()

    def meter_topics(self) -> frozenset[str]:
        return self._topics

    def _label(self, labels: dict[str, object], keys: tuple[str, ...]) -> float | None:
        key = next((k for k in keys if k in labels), None)
        if key is None:
            return None
        node = labels[key]
        unwrap = self.preset.unwrap
        if unwrap is not None:
            if not isinstance(node, dict) or unwrap not in node:
                raise MeterValueError(f"{key} has no {unwrap!r}: {str(node)[:40]!r}")
            node = node[unwrap]
        return check_apparent(json_number(node, key), f"{self.topic} {key}")

    def feed_meter(self, topic: str, payload: bytes, now: float) -> bool:
        p = self.preset
        doc = json_object(payload)
        labels = doc if p.labels_at is None else doc.get(p.labels_at)
        if not isinstance(labels, dict):
            raise MeterValueError(f"no {p.labels_at} object in {topic}")
        drawn = self._label(labels, p.drawn_keys)
        injected = self._label(labels, (p.injected_key,))
        st = self.state
        if drawn is not None and injected is not None:
            self.state = LinkyState(drawn, now, injected, now, st.reactive)
        elif drawn is not None:
            self.state = st.drawn(drawn, now)
        elif injected is not None:
            self.state = st.injected(injected, now)
        elif p.partial:
            return False  # only other labels changed
        else:
            raise MeterValueError(f"no {' or '.join(p.drawn_keys)} in {topic}")
        return True

    def meter_snapshot(self, now: float) -> MeterSnapshot:
        return self.state.snapshot(now, self.cfg.stale_after_s)

    def newest_at(self) -> float | None:
        return self.state.newest_at()

    def publish(self, reading: HouseReading) -> Published:
        assert self.cfg.topic is not None  # MeterConfig saw to it
        drawn, injected = apparent_pair(reading)
        return [(self.topic, json.dumps(self.preset.render(self.cfg.topic, drawn, injected)))]


def _tasmota_sensor(topic: str, drawn: int, injected: int) -> dict[str, object]:
    # The teleperiod message of https://tasmota.github.io/docs/Teleinfo/ ("Default data"),
    # in standard mode: ENERGY.Power is SINSTS, never negative; the TIC object has the labels
    # (all-digit values as numbers, as xnrg_15_teleinfo.ino's ResponseAppendTInfo writes them).
    return {
        "Time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "ENERGY": {"TotalStartTime": "2024-01-01T00:00:00", "Total": 9098.245, "Power": drawn},
        "TIC": {
            "ADSC": "061961361253",
            "NGTF": "BASE",
            "EAST": 2188830,
            "SINSTS": drawn,
            "SINSTI": injected,
        },
    }


def _teleinfo2mqtt_frame(topic: str, drawn: int, injected: int) -> dict[str, object]:
    # app/teleinfo/TicMode.js parseFrameItem: {"raw": the TIC's text, "value": parseInt(raw)}
    def label(raw: str) -> dict[str, object]:
        return {"raw": raw, "value": int(raw) if raw.isdigit() else raw}

    return {
        "ADSC": label(topic),
        "NGTF": label("BASE"),
        "EAST": label("002188830"),
        "SINSTS": label(f"{drawn:05d}"),
        "SINSTI": label(f"{injected:05d}"),
    }


def _zlinky_state(topic: str, drawn: int, injected: int) -> dict[str, object]:
    # zigbee2mqtt's state of a ZLinky_TIC in standard mode, producer, single phase
    # (zigbee-herdsman-converters src/devices/lixee.ts)
    return {
        "apparent_power": drawn,
        "injected_v_a": injected,
        "current_summ_delivered": 2188.83,
        "linkquality": 120,
    }


TASMOTA_TELEINFO = ApparentPreset(
    name="tasmota-teleinfo",
    devices="Tasmota with the Teleinfo driver (Denky, WifInfo, T-InfoDIN) on a Linky",
    # https://tasmota.github.io/docs/Teleinfo/ and arendst/Tasmota
    # tasmota/tasmota_xnrg_energy/xnrg_15_teleinfo.ino: the raw frame goes to tele/<topic>/SENSOR
    # as {"TIC": {...}} with `EnergyConfig Full` (only what changed with `EnergyConfig
    # Changed`), the teleperiod message has it too. ENERGY.Power is SINSTS (or PAPP), never
    # negative: injection is only in TIC.SINSTI (standard mode).
    docs=(
        "https://tasmota.github.io/docs/Teleinfo/",
        "https://github.com/arendst/Tasmota/blob/development/tasmota/tasmota_xnrg_energy/xnrg_15_teleinfo.ino",
    ),
    topic_hint="its Tasmota Topic, read on tele/<topic>/SENSOR",
    topic_template="tele/{topic}/SENSOR",
    labels_at="TIC",
    drawn_keys=("SINSTS", "PAPP"),
    injected_key="SINSTI",
    unwrap=None,
    partial=True,
    render=_tasmota_sensor,
)

TELEINFO2MQTT = ApparentPreset(
    name="teleinfo2mqtt",
    devices="fmartinou/teleinfo2mqtt (Docker or Home Assistant add-on) on a Linky",
    # https://github.com/fmartinou/teleinfo2mqtt docs/mqtt/README.md: one JSON frame on
    # $MQTT_BASE_TOPIC/<ADCO or ADSC> (base `teleinfo` by default, app/config/index.js), each
    # label {"raw": "00394", "value": 394} (app/teleinfo/TicMode.js); SINSTS/SINSTI in
    # standard mode (SINSTI only on a producer's meter), PAPP in historic mode (import only).
    docs=(
        "https://github.com/fmartinou/teleinfo2mqtt/blob/master/docs/mqtt/README.md",
        "https://github.com/fmartinou/teleinfo2mqtt/blob/master/app/teleinfo/TicMode.js",
    ),
    topic_hint="the meter's ADSC (standard) or ADCO (historic), read on teleinfo/<topic>",
    topic_template="teleinfo/{topic}",
    labels_at=None,
    drawn_keys=("SINSTS", "PAPP"),
    injected_key="SINSTI",
    unwrap="value",
    partial=False,
    render=_teleinfo2mqtt_frame,
)

ZLINKY = ApparentPreset(
    name="zlinky",
    devices="LiXee ZLinky_TIC on zigbee2mqtt",
    # Koenkk/zigbee-herdsman-converters src/devices/lixee.ts: SINSTS is `apparent_power`
    # (single phase) or `total_apparent_power` (three phase, where `apparent_power` is SINSTS1),
    # PAPP is `apparent_power` in historic mode, SINSTI is `injected_v_a` (producer only).
    # `active_power` is CCASN, a point of the load curve, not live power: never read. Reports
    # are configured at most once a minute (repInterval.MINUTE).
    docs=(
        "https://github.com/Koenkk/zigbee-herdsman-converters/blob/master/src/devices/lixee.ts",
        "https://www.zigbee2mqtt.io/devices/ZLinky_TIC.html",
    ),
    topic_hint="its zigbee2mqtt friendly name, read on zigbee2mqtt/<topic>",
    topic_template="zigbee2mqtt/{topic}",
    labels_at=None,
    drawn_keys=("total_apparent_power", "apparent_power"),
    injected_key="injected_v_a",
    unwrap=None,
    partial=False,
    render=_zlinky_state,
    reports_every_s=60.0,
)


# -- signed active power -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedPreset(MeterPreset):
    status_template: str  # `{topic}`, `{channel}`: the topic with the power
    key: str | None  # the power's key in the status JSON; None: a bare number
    component: str | None  # the Gen2 component (`em:0`), for NotifyStatus on <topic>/events/rpc
    render: Callable[[float, int], object]  # (grid W, channel) → the status object or number

    def source(self, cfg: MeterConfig) -> MeterSource:
        return SignedSource(cfg, self)


NOTIFY = ("NotifyStatus", "NotifyFullStatus")


class SignedSource(MeterSource):
    """A meter that reports signed active power (+ import) itself."""

    kind = "preset"

    def __init__(self, cfg: MeterConfig, preset: SignedPreset):
        super().__init__(cfg)
        self.preset = preset
        names = {"topic": cfg.topic, "channel": cfg.channel}
        self.topic = preset.status_template.format(**names)
        self.component = None if preset.component is None else preset.component.format(**names)
        self.rpc_topic = None if self.component is None else f"{cfg.topic}/events/rpc"
        self._topics = frozenset(t for t in (self.topic, self.rpc_topic) if t)
        self.state = GridState()

    def meter_topics(self) -> frozenset[str]:
        return self._topics

    def feed_meter(self, topic: str, payload: bytes, now: float) -> bool:
        key = self.preset.key
        if key is None:
            value = parse_number(payload)
        elif topic == self.rpc_topic:
            # a notification carries only what changed: no power in it is no news
            doc = json_object(payload)
            params = doc.get("params")
            status = params.get(self.component or "") if isinstance(params, dict) else None
            if doc.get("method") not in NOTIFY or not isinstance(status, dict) or key not in status:
                return False
            value = json_number(status[key], key)
        else:
            doc = json_object(payload)
            if key not in doc:
                raise MeterValueError(f"no {key} in {topic}")
            value = json_number(doc[key], key)
        self.state = GridState(check_active(value, topic), now)
        return True

    def meter_snapshot(self, now: float) -> MeterSnapshot:
        return self.state.snapshot(now, self.cfg.stale_after_s)

    def newest_at(self) -> float | None:
        return self.state.at

    def publish(self, reading: HouseReading) -> Published:
        body = self.preset.render(reading.grid_w, self.cfg.channel)
        text = f"{body:.2f}" if isinstance(body, float) else json.dumps(body)
        return [(self.topic, text)]


def _em_status(grid_w: float, channel: int) -> object:
    # EM.GetStatus of https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM,
    # the whole status as status_ntf publishes it; the power split evenly over the phases
    a = b = round(grid_w / 3, 1)
    c = round(grid_w - a - b, 1)
    phases: dict[str, object] = {}
    for ph, w in (("a", a), ("b", b), ("c", c)):
        phases |= {
            f"{ph}_current": round(abs(w) / 230.0, 3),
            f"{ph}_voltage": 230.0,
            f"{ph}_act_power": w,
            f"{ph}_aprt_power": round(abs(w), 1),
            f"{ph}_pf": 1.0,
            f"{ph}_freq": 50.0,
        }
    return {
        "id": 0,
        **phases,
        "n_current": None,
        "total_current": round(abs(grid_w) / 230.0, 3),
        "total_act_power": round(a + b + c, 1),
        "total_aprt_power": round(abs(a) + abs(b) + abs(c), 1),
        "user_calibrated_phase": [],
    }


def _em1_status(grid_w: float, channel: int) -> object:
    # EM1.GetStatus of https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM1
    w = round(grid_w, 1)
    return {
        "id": channel,
        "current": round(abs(w) / 230.0, 3),
        "voltage": 230.0,
        "act_power": w,
        "aprt_power": round(abs(w), 1),
        "pf": 1.0,
        "freq": 50.0,
        "calibration": "factory",
    }


def _gen1_power(grid_w: float, channel: int) -> object:
    return round(grid_w, 2)


# Shelly Gen2+: status_ntf ("Generic status update over MQTT") publishes a component's whole
# status on <topic>/status/<component>, https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Mqtt;
# rpc_ntf sends NotifyStatus with only the changed keys on <topic>/events/rpc,
# https://shelly-api-docs.shelly.cloud/gen2/General/Notifications. The sign: active power is
# positive drawn from the grid (with the CTs the way the device's wiring diagram puts them)
# and negative when returned, which the device counts apart as *_act_ret_energy (EMData /
# EM1Data).
SHELLY_PRO3EM = SignedPreset(
    name="shelly-pro3em",
    devices="Shelly Pro 3EM, 3EM Gen3 (triphase profile, the default)",
    docs=(
        "https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM",
        "https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EMData",
        "https://shelly-api-docs.shelly.cloud/gen2/General/Notifications",
    ),
    topic_hint="its MQTT prefix, by default its id such as shellypro3em-c8f09e8a1b2c",
    status_template="{topic}/status/em:0",
    key="total_act_power",
    component="em:0",
    render=_em_status,
)

SHELLY_EM = SignedPreset(
    name="shelly-em",
    devices="Shelly Pro EM, EM Gen3, Pro 3EM / 3EM Gen3 in the monophase profile (one channel)",
    docs=(
        "https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM1",
        "https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM1Data",
        "https://shelly-api-docs.shelly.cloud/gen2/General/Notifications",
    ),
    topic_hint="its MQTT prefix, by default its id such as shellyproem50-08f9e0e67204",
    status_template="{topic}/status/em1:{channel}",
    key="act_power",
    component="em1:{channel}",
    render=_em1_status,
    uses_channel=True,
)

SHELLY_EM_GEN1 = SignedPreset(
    name="shelly-em-gen1",
    devices="Shelly EM (Gen1), one of its two channels",
    # https://shelly-api-docs.shelly.cloud/gen1/#shelly-em-mqtt: shellies/<id>/emeter/<i>/power,
    # instantaneous power in W, negative when returned (counted in emeter/<i>/returned_energy)
    docs=("https://shelly-api-docs.shelly.cloud/gen1/#shelly-em-mqtt",),
    topic_hint="its id such as shellyem-34945473e228, read on shellies/<topic>/emeter/<n>/power",
    status_template="shellies/{topic}/emeter/{channel}/power",
    key=None,
    component=None,
    render=_gen1_power,
    uses_channel=True,
)

PRESETS: tuple[MeterPreset, ...] = (
    TASMOTA_TELEINFO,
    TELEINFO2MQTT,
    ZLINKY,
    SHELLY_PRO3EM,
    SHELLY_EM,
    SHELLY_EM_GEN1,
)
