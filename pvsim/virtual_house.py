"""`pvopt house`: a trace played in real time as a house on MQTT, the counterpart of real
hardware for the demo and the end-to-end tests.

It publishes what a meter and probes would (SINSTS/SINSTI/ERQT or signed grid power, water
temperatures) and obeys the load command topics, with the simulator's physics (`House`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from machines.meter import LinkyState
from pvopt.adapters.mqtt import MqttBus
from pvopt.config import Config
from pvopt.topics import STATUS_TOPIC, wiring
from pvsim.physics import PROBE_PERIOD_S, House, SimResult
from pvsim.traces import Trace

log = logging.getLogger(__name__)


class VirtualHouse:
    def __init__(self, cfg: Config, trace: Trace, *, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self.house = House(cfg, trace)
        self.wires = wiring(cfg)
        self.index = {w.command_topic: k for k, w in enumerate(self.wires)}
        self.lock = threading.Lock()
        self.linky = LinkyState()
        self.commands = 0
        self.stopping = threading.Event()
        self.forced = [False] * len(self.wires)  # from the status: eco/boost draw is forced
        self.bus = MqttBus(
            cfg.mqtt,
            [*self.index, STATUS_TOPIC],
            self._on_message,
            client_id=f"{cfg.mqtt.client_id}-house",
        )

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == STATUS_TOPIC:
            self._on_status(payload)
        else:
            self._on_command(topic, payload)

    def _on_status(self, payload: bytes) -> None:
        try:
            states = {e["name"]: e["state"] for e in json.loads(payload)["loads"]}
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            for k, w in enumerate(self.wires):
                self.forced[k] = states.get(w.spec.name) in ("eco", "boost")
                self.house.forced[k] = self.forced[k]

    def _on_command(self, topic: str, payload: bytes) -> None:
        k = self.index[topic]
        try:
            power = self.wires[k].power_of(payload.decode())
        except ValueError:
            log.warning("house: ignored %s payload %r", topic, payload[:40])
            return
        with self.lock:
            self.house.actuate(k, power, self.forced[k], self.clock())
            self.commands += 1

    def _publish_meter(self, now: float) -> None:
        meter = self.cfg.meter
        if meter.pv_topic:
            self.bus.publish(meter.pv_topic, f"{self.house.pv:.0f}")
        if meter.kind == "linky":
            self.linky = self.house.linky_sample(self.linky, now)
            t = meter.topics
            self.bus.publish(t.sinsts, f"{self.linky.sinsts:.0f}")
            self.bus.publish(t.sinsti, f"{self.linky.sinsti:.0f}")
            self.bus.publish(t.erqt, f"{int(self.house.erqt)}")
            return
        assert meter.grid_topic is not None
        grid = round(-self.house.grid if meter.invert else self.house.grid, 1)
        payload: object = grid
        for part in reversed((meter.json_key or "").split(".") if meter.json_key else []):
            payload = {part: payload}
        self.bus.publish(meter.grid_topic, json.dumps(payload))

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Play every second of the trace in real time; returns the KPIs measured here."""
        self.bus.start()
        if not self.bus.connected.wait(30):
            mqtt = self.cfg.mqtt
            raise RuntimeError(f"house: no MQTT broker answers at {mqtt.host}:{mqtt.port}")
        period = max(1, round(self.cfg.sim.meter.period_s))
        total = self.house.trace.seconds
        t0 = time.monotonic()
        for i in range(total):
            if self.stopping.wait(max(0.0, t0 + i - time.monotonic())):
                break
            now = self.clock()
            with self.lock:
                self.house.step(i)
                probes = self.house.probe() if i % PROBE_PERIOD_S == 0 else []
                if i % period == 0:
                    self._publish_meter(now)
            for k, temp in probes:
                topic = self.wires[k].temperature_topic
                if topic:
                    self.bus.publish(topic, f"{temp:.1f}")
            if progress is not None:
                progress(i + 1, total)
        self.bus.stop()
        with self.lock:
            return self.house.result(self.cfg.regulation.policy)
