"""10,000+ invalid payloads on every topic a running `pvopt run` subscribes to: it stays up,
logs each one once without a traceback, changes no state, and regulates afterwards."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.meter_cache import MeterCache
from machines.wiring import CONTROL_TOPIC
from pvopt.kinds import meter_source
from pvsim.live import spawn_service, stop_service
from pvsim.servers.mosquitto import Mosquitto
from tests.mqtt_probe import Probe
from tests.test_service import make_config, publish_grid, statuses

PER_TOPIC = 1_200
CHUNK = 1_000  # published with QoS 0, then wait for the service to log them: no broker drops
SEED = 20_260_615
Gen = Callable[[random.Random], bytes]


def junk(rng: random.Random) -> bytes:
    """Text that no parser takes: starts with a letter, or bytes that are not UTF-8."""
    n = rng.choice([1, 5, 40, 300, 5000])
    if rng.random() < 0.5:
        return b"\xff\xfe" + rng.randbytes(n)
    return (rng.choice("qxzk") + "".join(rng.choices("azAZ09 .,;:-{}[]\"'", k=n))).encode()


def bad_number(rng: random.Random) -> bytes:
    choices: list[Callable[[], bytes]] = [
        lambda: junk(rng),
        lambda: rng.choice([b"nan", b"inf", b"-inf", b"NaN", b"", b"  ", b"1e400"]),
        lambda: json.dumps({"value": rng.random()}).encode(),
        lambda: f"{rng.uniform(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}".encode(),
    ]
    return rng.choice(choices)()


def bad_apparent(rng: random.Random) -> bytes:
    if rng.random() < 0.4:
        return str(rng.choice([-1, 1]) * rng.uniform(100_001, 1e12) * -1).encode()  # < 0 / huge
    return bad_number(rng)


def bad_index(rng: random.Random) -> bytes:
    return str(-rng.uniform(0.1, 1e9)).encode() if rng.random() < 0.4 else bad_number(rng)


def bad_temperature(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return str(rng.choice([85, -127, rng.uniform(151, 1e6), -rng.uniform(51, 1e6)])).encode()
    return bad_number(rng)


def bad_tariff(rng: random.Random) -> bytes:
    return rng.choice(
        [b"", b"   ", ("H" * rng.randint(41, 500)).encode(), b"HP\x00", b"\x01\x02", b"HC\tHP"]
    )


def bad_control_json(rng: random.Random) -> bytes:
    name = rng.choice(["water_heater", "towel_rail", 0, 1])
    choices: list[Callable[[], Any]] = [
        lambda: junk(rng),
        lambda: b"[1, 2]",
        lambda: b'"force"',
        lambda: {"command": "dance" + str(rng.randint(0, 99)), "name": name},
        lambda: {"command": "force"},
        lambda: {"command": "force", "name": rng.choice([None, True, "", [], {}])},
        lambda: {"command": "force", "name": name, "duration": rng.choice([-5, 0, 1e9, "x"])},
        lambda: {"command": "force", "name": name, "power": rng.choice(["x", None, [1]]) or "x"},
        lambda: {"command": "set", "name": name},
        lambda: {"command": "set", "name": name, "temp_min": "hot"},
        lambda: {"command": "set", "name": name, "colour": 3, "temp_min": 40},
        lambda: {"command": "off", "name": "nobody" + str(rng.randint(0, 99))},  # refused
        lambda: {"command": "force", "name": rng.randint(50, 10_000)},  # no such id: refused
        lambda: {"command": "set", "name": "towel_rail", "temp_min": 40},  # no thresholds
        lambda: {"command": "set", "name": "water_heater", "temp_min": 58},  # breaks the order
    ]
    body = rng.choice(choices)()
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def bad_seed_control(rng: random.Random) -> bytes:
    return rng.choice(
        [
            junk(rng),
            b"BOOST",
            b"ON;1",
            b"AUTO;x",
            f"MIN;{rng.choice(['abc', 'nan', ''])}".encode(),
            f"MAX;{rng.uniform(300, 1e6):.1f}".encode(),  # refused: outside the probe range
            b"MIN;70",  # refused: above temp_eco
        ]
    )


def logged_rejections(log: Path) -> int:
    text = log.read_text(encoding="utf-8", errors="replace")
    return len(re.findall(r"WARNING pvopt\S*: (ignored|refused command)", text))


def test_ten_thousand_invalid_payloads_change_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    """Guards the brief's fuzz run: every subscribed topic gets >1,000 payloads it must refuse
    (meter, temperatures, both control topics; refused-by-the-controller commands too); the
    service stays up, logs each once without a traceback, changes no load's state, mode,
    thresholds or power, and still regulates afterwards."""
    cfg = make_config(
        tmp_path, broker.port, regulation={"tick_s": 1, "settle_s": 0}, meter={"stale_after_s": 600}
    )
    generators: dict[str, Gen] = {
        t: bad_number for t in MeterCache(meter_source(cfg.meter), 0).topics
    }
    generators.update(
        {cfg.meter.topics.sinsts: bad_apparent, cfg.meter.topics.sinsti: bad_apparent}
    )
    generators.update({cfg.meter.topics.erqt: bad_index, cfg.meter.tariff_topic: bad_tariff})
    for w in cfg.wiring():
        if w.temperature_topic:
            generators[w.temperature_topic] = bad_temperature
        generators[w.control_topic] = bad_seed_control
    generators["scr/9/control"] = bad_seed_control  # no load has id 9
    generators[CONTROL_TOPIC] = bad_control_json
    rng = random.Random(SEED)
    payloads = [(t, gen(rng)) for t, gen in generators.items() for _ in range(PER_TOPIC)]
    rng.shuffle(payloads)
    assert len(payloads) >= 10_000

    log = tmp_path / "run.log"
    probe = Probe(broker.port)
    proc = spawn_service(tmp_path / "pvopt.yml")
    try:
        assert probe.wait(lambda: probe.last("regulation/online") == b"online", 20)
        probe.publish("scr/0/temperature", "50")
        publish_grid(probe, -1000)

        def loads(since: float) -> list[dict[str, Any]] | None:
            docs = statuses(probe, since)
            if not docs:
                return None
            keep = ("state", "mode", "reason", "power_w", "forced_until", "temperature_c",
                    "temp_min", "temp_eco", "temp_sol_min", "temp_max")  # fmt: skip
            return [{k: e[k] for k in keep} for e in docs[-1]["loads"]]

        assert probe.wait(lambda: (loads(0) or [{}])[0].get("power_w", 0) > 500, 10)
        settled = time.time()
        assert probe.wait(lambda: loads(settled) is not None, 10)
        before = loads(settled)
        base = logged_rejections(log)
        started = time.monotonic()
        for i in range(0, len(payloads), CHUNK):
            for topic, payload in payloads[i : i + CHUNK]:
                probe.client.publish(topic, payload, qos=0)
            target = base + min(i + CHUNK, len(payloads))
            assert probe.wait(lambda t=target: logged_rejections(log) >= t, 60), (
                f"{logged_rejections(log) - base} of {target - base} logged"
            )
        took = time.monotonic() - started
        assert proc.poll() is None, "pvopt run died"
        assert logged_rejections(log) - base == len(payloads)  # each once
        after_fuzz = time.time()
        assert probe.wait(lambda: loads(after_fuzz) is not None, 10)
        assert loads(after_fuzz) == before
        text = log.read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in text and " ERROR " not in text
        # still regulating: less surplus, less power
        since = time.time()
        publish_grid(probe, 300)
        assert probe.wait(
            lambda: (loads(since) or [{}])[0].get("power_w", 1e9) < before[0]["power_w"], 10
        )
        print(f"fuzz: {len(payloads)} payloads on {len(generators)} topics in {took:.1f} s")
    finally:
        probe.close()
        assert stop_service(proc) == 0
