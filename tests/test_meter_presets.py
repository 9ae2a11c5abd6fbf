"""Meter presets (`meter.preset`): each reads its device's payload with the device's own sign,
refuses what is malformed without touching the cached reading, and publishes what the device
would (the virtual house's side); config mistakes name the key; `config check` warns about a
ZLinky's slow reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from jobs.meter_cache import MeterCache
from pvopt import config
from pvopt.cli import main
from pvopt.kinds import METER_PRESETS, HouseReading, MeterSource, meter_source
from tests.conftest import ROOT, T0

LOAD = "equipment: [{type: ConstantPowerEquipment, name: pump, nominal_power: 400}]\n"
DIMMER = "equipment: [{type: VariablePowerEquipment, name: rail, max_power: 500}]\n"
REAL_TIC = ROOT.parent / "shared" / "real_tic"


def source(preset: str, topic: str = "dev", extra: str = "") -> MeterSource:
    text = f"meter: {{preset: {preset}, topic: {topic}{extra}}}\n" + LOAD
    return meter_source(config.parse(text, "house.yml", environ={}).meter)


def feed(src: MeterSource, topic: str, payload: object, at: float = T0) -> bool:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return src.feed(topic, raw, at)


def grid(src: MeterSource, at: float = T0) -> float | None:
    return src.snapshot(at).grid_w


# -- tasmota-teleinfo ----------------------------------------------------------------------------

TASMOTA = "tele/denky_D6C0C0/SENSOR"


def test_tasmota_teleinfo_reads_the_tic_object_never_energy_power() -> None:
    src = source("tasmota-teleinfo", "denky_D6C0C0")
    assert src.meter_topics() == {TASMOTA}
    # the teleperiod message of https://tasmota.github.io/docs/Teleinfo/ ("Default data"),
    # historic mode: PAPP is the only power, import only
    teleperiod = {
        "Time": "2021-10-26T17:28:45",
        "ENERGY": {"TotalStartTime": "2021-10-25T15:22:04", "Total": 9098.245, "Power": 170},
        "TIC": {"ADCO": "021528603314", "OPTARIF": "HC..", "ISOUSC": 15, "HCHC": 920750,
                "HCHP": 2275560, "PTEC": "HP..", "IINST": 1, "IMAX": 2, "PAPP": 170,
                "HHPHC": "A", "MOTDETAT": 0},
    }  # fmt: skip
    assert feed(src, TASMOTA, teleperiod) and grid(src) == 170.0
    # standard mode, exporting: ENERGY.Power is SINSTS (0), the export is only in TIC.SINSTI
    export = {"ENERGY": {"Power": 0}, "TIC": {"ADSC": "061961361253", "SINSTS": 0, "SINSTI": 1675}}
    assert feed(src, TASMOTA, export, T0 + 1) and grid(src, T0 + 1) == -1675.0
    snap = src.snapshot(T0 + 1)
    assert snap.apparent_va == -1675.0 and snap.sampled_at == T0 + 1


def test_tasmota_teleinfo_takes_zero_padded_strings_and_changed_mode() -> None:
    src = source("tasmota-teleinfo", "denky_D6C0C0")
    assert feed(src, TASMOTA, {"TIC": {"SINSTS": "00450", "SINSTI": "00000"}})
    assert grid(src) == 450.0
    # `EnergyConfig Changed` sends only what changed (the docs' {"TIC":{"PAPP":160}}): a label
    # alone pairs with the other by the linky kind's rule, other labels are no news
    assert feed(src, TASMOTA, {"TIC": {"SINSTI": 812}}, T0 + 2) and grid(src, T0 + 2) == -812.0
    assert not feed(src, TASMOTA, {"TIC": {"EAST": 2188831}}, T0 + 3)
    assert grid(src, T0 + 3) == -812.0
    with pytest.raises(ValueError, match="no TIC object"):
        feed(src, TASMOTA, {"Time": "2021-10-26T17:28:45", "ENERGY": {"Power": 170}})


# -- teleinfo2mqtt -------------------------------------------------------------------------------


def test_teleinfo2mqtt_reads_value_of_each_label() -> None:
    src = source("teleinfo2mqtt", "021528603314")
    topic = "teleinfo/021528603314"
    assert src.meter_topics() == {topic}
    # fmartinou/teleinfo2mqtt docs/mqtt/README.md, history mode (PAPP, import only)
    historic = {
        "ADCO": {"raw": "12345678901", "value": 12345678901},
        "OPTARIF": {"raw": "HC..", "value": "HC"},
        "PTEC": {"raw": "HP..", "value": "HP"},
        "PAPP": {"raw": "4110", "value": 4110},
    }
    assert feed(src, topic, historic) and grid(src) == 4110.0
    # standard mode on a producer's meter (values from the pr84 capture in shared/real_tic)
    standard = {
        "ADSC": {"raw": "021528603314", "value": 21528603314},
        "SINSTS": {"raw": "00000", "value": 0},
        "SMAXSN": {"raw": "02740", "value": 2740, "timestamp": {"date": "2022-06-09T06:05:31.000Z",
                                                                  "dst": "summer"}},
        "SINSTI": {"raw": "01675", "value": 1675},
    }  # fmt: skip
    assert feed(src, topic, standard, T0 + 1) and grid(src, T0 + 1) == -1675.0
    with pytest.raises(ValueError, match="SINSTS has no 'value'"):
        feed(src, topic, {"SINSTS": 394}, T0 + 2)
    with pytest.raises(ValueError, match="no SINSTS or PAPP"):
        feed(src, topic, {"ADSC": {"raw": "021528603314", "value": 21528603314}}, T0 + 2)
    assert grid(src, T0 + 2) == -1675.0


# -- zlinky --------------------------------------------------------------------------------------


def test_zlinky_reads_apparent_power_and_injected_va_never_active_power() -> None:
    src = source("zlinky", "zlinky")
    topic = "zigbee2mqtt/zlinky"
    assert src.meter_topics() == {topic}
    # keys of zigbee-herdsman-converters src/devices/lixee.ts; active_power is CCASN, a
    # load-curve point: a value far from the live power shows it is not read
    drawing = {"apparent_power": 394, "injected_v_a": 0, "active_power": 2500,
               "current_summ_delivered": 2188.83, "linkquality": 120}  # fmt: skip
    assert feed(src, topic, drawing) and grid(src) == 394.0
    exporting = drawing | {"apparent_power": 0, "injected_v_a": 1678}
    assert feed(src, topic, exporting, T0 + 60) and grid(src, T0 + 60) == -1678.0
    # three phase: apparent_power is SINSTS1, total_apparent_power is SINSTS
    three = {"apparent_power": 400, "apparent_power_ph_b": 300, "total_apparent_power": 1200}
    assert feed(src, topic, three, T0 + 120) and grid(src, T0 + 120) == 1200.0
    with pytest.raises(ValueError, match="no total_apparent_power or apparent_power"):
        feed(src, topic, {"active_power": 2500, "linkquality": 120}, T0 + 180)


# -- Shelly --------------------------------------------------------------------------------------

PRO3EM = "shellypro3em-c8f09e8a1b2c"


def test_shelly_pro3em_reads_total_act_power_and_its_sign() -> None:
    src = source("shelly-pro3em", PRO3EM)
    assert src.meter_topics() == {f"{PRO3EM}/status/em:0", f"{PRO3EM}/events/rpc"}
    # an EM.GetStatus as status_ntf publishes it (the Gen2 EM component's keys)
    status = {"id": 0, "a_current": 1.1, "a_voltage": 231.2, "a_act_power": 253.0,
              "a_aprt_power": 254.0, "a_pf": 0.99, "a_freq": 50.0, "b_act_power": 510.0,
              "c_act_power": 770.0, "n_current": None, "total_current": 6.6,
              "total_act_power": 1533.0, "total_aprt_power": 1536.0,
              "user_calibrated_phase": []}  # fmt: skip
    assert feed(src, f"{PRO3EM}/status/em:0", status) and grid(src) == 1533.0
    exporting = status | {"total_act_power": -2150.4}
    assert feed(src, f"{PRO3EM}/status/em:0", exporting, T0 + 1)
    assert grid(src, T0 + 1) == -2150.4  # negative: returned to the grid
    with pytest.raises(ValueError, match="no total_act_power"):
        feed(src, f"{PRO3EM}/status/em:0", {"id": 0, "a_act_power": 5.0}, T0 + 2)


def test_shelly_notify_status_partial_updates() -> None:
    src = source("shelly-pro3em", PRO3EM)
    rpc = f"{PRO3EM}/events/rpc"

    def notify(params: dict[str, object], method: str = "NotifyStatus") -> dict[str, object]:
        # https://shelly-api-docs.shelly.cloud/gen2/General/Notifications: only changed keys
        return {"src": PRO3EM, "dst": f"{PRO3EM}/events", "method": method,
                "params": {"ts": 1707930973.12, **params}}  # fmt: skip

    assert feed(src, rpc, notify({"em:0": {"id": 0, "total_act_power": -812.4}}))
    assert grid(src) == -812.4
    assert not feed(src, rpc, notify({"em:0": {"id": 0, "a_voltage": 230.1}}), T0 + 1)
    assert not feed(src, rpc, notify({"switch:0": {"id": 0, "output": True}}), T0 + 1)
    assert not feed(src, rpc, notify({"events": [{"event": "x"}]}, "NotifyEvent"), T0 + 1)
    assert grid(src, T0 + 1) == -812.4
    with pytest.raises(ValueError, match="not a number"):
        feed(src, rpc, notify({"em:0": {"total_act_power": None}}), T0 + 2)


def test_shelly_em_reads_act_power_of_its_channel() -> None:
    src = source("shelly-em", "shellyproem50-08f9e0e67204", ", channel: 1")
    topic = "shellyproem50-08f9e0e67204/status/em1:1"
    # em1:1 of a Pro EM-50's Shelly.GetStatus (evcc-io/evcc discussion #12385)
    status = {"id": 1, "current": 22.780, "voltage": 224.6, "act_power": 5080.3,
              "aprt_power": 5142.4, "pf": 0.99, "freq": 50.0, "calibration": "factory"}  # fmt: skip
    assert feed(src, topic, status) and grid(src) == 5080.3
    assert feed(src, topic, status | {"act_power": -301.0}, T0 + 1) and grid(src, T0 + 1) == -301.0
    rpc = "shellyproem50-08f9e0e67204/events/rpc"
    assert feed(src, rpc, {"method": "NotifyStatus", "params": {"em1:1": {"act_power": 12.5}}})
    assert not feed(src, rpc, {"method": "NotifyStatus", "params": {"em1:0": {"act_power": 9.0}}})


def test_shelly_em_gen1_reads_a_bare_signed_number() -> None:
    src = source("shelly-em-gen1", "shellyem-34945473e228")
    topic = "shellyem-34945473e228/emeter/0/power"
    assert src.meter_topics() == {f"shellies/{topic}"}
    assert feed(src, f"shellies/{topic}", b"-12.80") and grid(src) == -12.8


# -- every preset --------------------------------------------------------------------------------

PRESETS = sorted(METER_PRESETS.names())
BAD = [b"", b"not json", b"[1, 2]", b'"450"', b"NaN", b"1e999", b"true", b"null"]


@pytest.mark.parametrize("preset", PRESETS)
def test_malformed_payloads_are_rejected_and_keep_the_reading(preset: str) -> None:
    src = source(preset, "dev")
    cache = MeterCache(src, started_at=T0)
    good = src.publish(HouseReading(-600.0, 0.0, 0.0, 1.0))
    for topic, payload in good:
        assert cache.feed(topic, payload.encode(), T0)
    before = cache.snapshot(T0)
    assert before.grid_w == pytest.approx(-600.0, abs=0.2)
    topic = good[0][0]
    # the good payload with each number spoiled in turn
    spoiled = [
        payload.replace("600", spoil).encode()
        for _, payload in good
        for spoil in ('"six hundred"', "-600", "9e9", "true")
    ]
    for payload in BAD + spoiled:
        assert not cache.feed(topic, payload, T0 + 1), payload
    assert cache.rejected >= len(BAD)
    assert cache.snapshot(T0) == before


@pytest.mark.parametrize("preset", PRESETS)
@given(grid_w=st.floats(-20_000, 20_000))
def test_publish_then_feed_gives_back_the_reading(preset: str, grid_w: float) -> None:
    src = source(preset, "dev")
    published = src.publish(HouseReading(grid_w, 0.0, 0.0, 1.0))
    assert published and all(t in src.meter_topics() for t, _ in published)
    for topic, payload in published:
        assert src.feed(topic, payload.encode(), T0)
    # apparent power comes in whole VA, active power in tenths of a W
    assert grid(src) == pytest.approx(grid_w, abs=0.51)


def test_tasmota_publish_looks_like_the_device() -> None:
    ((topic, payload),) = source("tasmota-teleinfo", "denky").publish(
        HouseReading(-1234.4, 0.0, 0.0, 1.0)
    )
    doc = json.loads(payload)
    assert topic == "tele/denky/SENSOR" and {"Time", "ENERGY", "TIC"} <= doc.keys()
    assert doc["ENERGY"]["Power"] == 0 and doc["TIC"]["SINSTI"] == 1234  # Power is SINSTS


@pytest.mark.skipif(not REAL_TIC.is_dir(), reason="no ../shared/real_tic captures")
def test_real_producer_frames_through_teleinfo2mqtt_and_tasmota() -> None:
    """The frames of a real producer's Linky (a teleinfo2mqtt PR's capture), turned into each
    bridge's JSON the way its source does (TicMode.js parseFrameItem; Tasmota's
    ResponseAppendTInfo: all-digit values as numbers), read back as SINSTS − SINSTI."""
    text = (REAL_TIC / "standard_teleinfo2mqtt_pr84_producer.log").read_text("latin-1")
    frames: list[dict[str, str]] = []
    for line in text.replace("\r", "\n").split("\n"):
        items = line.strip("\x02\x03").split("\t")
        if len(items) < 3:
            continue
        if items[0] == "ADSC":
            frames.append({})
        if frames:
            frames[-1][items[0]] = items[2] if len(items) > 3 else items[1]
    checked = 0
    t2m, tasmota = source("teleinfo2mqtt", "meter"), source("tasmota-teleinfo", "denky")
    for n, frame in enumerate(frames):
        drawn, injected = frame.get("SINSTS", ""), frame.get("SINSTI", "")
        if not (drawn.isdigit() and injected.isdigit() and len(drawn) == len(injected) == 5):
            continue  # a group broken by line noise
        expected = float(int(drawn) - int(injected))
        doc = {k: {"raw": v, "value": int(v) if v.isdigit() else v} for k, v in frame.items()}
        assert feed(t2m, "teleinfo/meter", doc, T0 + n) and grid(t2m, T0 + n) == expected
        tic = {k: int(v) if v.isdigit() else v for k, v in frame.items()}
        assert feed(tasmota, "tele/denky/SENSOR", {"TIC": tic}, T0 + n)
        assert grid(tasmota, T0 + n) == expected
        checked += 1
    assert checked >= 5


# -- config --------------------------------------------------------------------------------------


def problems(meter: str) -> list[config.Problem]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(f"meter: {meter}\n" + LOAD, "house.yml", environ={})
    return info.value.problems


@pytest.mark.parametrize(
    ("meter", "key", "words"),
    [
        ("{preset: shely-pro3em, topic: x}", "meter.preset", "did you mean 'shelly-pro3em'"),
        ("{preset: zlinky, kind: linky, topic: x}", "meter", "meter.preset and meter.kind"),
        ("{preset: zlinky}", "meter", "needs meter.topic"),
        ("{preset: zlinky, topic: 'zigbee2mqtt/#'}", "meter.topic", "wildcard"),
        ("{preset: zlinky, topic: x, grid_topic: y}", "meter", "grid_topic: only for meter.kind"),
        ("{preset: zlinky, topic: x, channel: 1}", "meter", "no channel"),
        ("{preset: shelly-em, topic: x, channel: 9}", "meter.channel", "less than or equal"),
        ("{kind: grid, grid_topic: g, topic: x}", "meter", "topic: only with meter.preset"),
    ],
)
def test_meter_preset_config_errors_name_the_key(meter: str, key: str, words: str) -> None:
    found = problems(meter)
    assert len(found) == 1, found
    assert (found[0].line, found[0].key) == (1, key) and words in found[0].message


def test_a_preset_topic_is_one_role() -> None:
    text = (
        "meter: {preset: zlinky, topic: zlinky}\n"
        "equipment: [{type: ConstantPowerEquipment, name: pump, nominal_power: 400,\n"
        "             command_topic: zigbee2mqtt/zlinky}]\n"
    )
    with pytest.raises(config.ConfigError, match=r"zigbee2mqtt/zlinky.*one topic, one role"):
        config.parse(text, "house.yml", environ={})


def test_config_check_warns_that_a_zlinky_is_too_slow_for_a_dimmer(tmp_path: Path) -> None:
    path = tmp_path / "pvopt.yml"

    def warnings(meter: str, load: str = LOAD) -> list[str]:
        path.write_text(f"meter: {meter}\n" + load)
        out = CliRunner().invoke(main, ["config", "check", str(path)])
        assert out.exit_code == 0, out.output
        return [x for x in out.stderr.splitlines() if x.startswith("warning")]

    (line,) = warnings("{preset: zlinky, topic: zlinky}", DIMMER)
    assert "zlinky" in line and "dimmer" in line and "stale_after_s (30 s)" in line
    (line,) = warnings("{preset: zlinky, topic: zlinky, stale_after_s: 150}", DIMMER)
    assert "too slow to regulate a dimmer" in line and "stale_after_s" not in line
    (line,) = warnings("{preset: zlinky, topic: zlinky}")  # a relay only: no dimmer to lag
    assert "dimmer" not in line and "stale_after_s (30 s)" in line
    assert warnings("{preset: zlinky, topic: zlinky, stale_after_s: 150}") == []
    assert warnings(f"{{preset: shelly-pro3em, topic: {PRO3EM}}}", DIMMER) == []


@pytest.mark.parametrize("preset", ["tasmota-teleinfo", "shelly-pro3em"])
def test_a_preset_meter_runs_the_simulated_house(preset: str) -> None:
    """The simulator's meter speaks the preset (its `publish`) and the service's cache reads
    it: one sunny hour diverts the surplus as with the linky kind."""
    import numpy as np

    from pvsim.simulator import simulate
    from pvsim.traces import Trace

    text = (
        f"meter: {{preset: {preset}, topic: dev}}\n"
        "equipment: [{type: VariablePowerEquipment, name: rail, max_power: 1500}]\n"
    )
    cfg = config.parse(text, "house.yml", environ={})
    n = 3600
    k = simulate(Trace("sunny", T0, np.full(n, 2500.0), np.full(n, 300.0)), cfg).kpis
    assert k["loads"]["rail"]["energy_wh"] > 1300 and k["capture"] > 0.5
