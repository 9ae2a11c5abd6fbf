"""`pvopt house`: a trace played in real time as a house on MQTT, the counterpart of real
hardware for the demo and the end-to-end tests.

It publishes what the meter (as the `meter.kind` source says) and the probes would, obeys
the load command topics with the simulator's physics (`House`), and each load's device answers
as its preset says a real one does (pvsim/devices.py): availability, state, measured power.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from machines.wiring import STATUS_TOPIC
from pvopt.adapters.mqtt import MqttBus
from pvopt.config import Config
from pvopt.devices.link import DeviceLink
from pvopt.kinds import meter_source
from pvsim.devices import Message, VirtualDevice
from pvsim.physics import PROBE_PERIOD_S, House, SimResult
from pvsim.traces import Trace

log = logging.getLogger(__name__)


ON_CHANGE_HEARTBEAT_S = 60.0  # what TIC→MQTT bridges that publish on change resend anyway
VENUS_KEEPALIVE_S = 60.0  # dbus-flashmq's keep-alive timeout


class VirtualHouse:
    def __init__(
        self,
        cfg: Config,
        trace: Trace,
        *,
        clock: Callable[[], float] = time.time,
        on_change: bool = False,
    ):
        self.cfg = cfg
        self.clock = clock
        # like many TIC→MQTT bridges: a meter label only when its value changed, or once a
        # heartbeat (SINSTI then stays silent at 0 for minutes while the house imports)
        self.on_change = on_change
        self.last_sent: dict[str, tuple[str, float]] = {}
        self.house = House(cfg, trace)
        self.wires = cfg.wiring()
        self.index = {w.command_topic: k for k, w in enumerate(self.wires)}
        self.lock = threading.Lock()
        self.meter = meter_source(cfg.meter, cfg.battery)  # only its `publish`: what it sends
        # a home battery's bridge (`battery:`); Venus OS speaks only while kept alive
        self.battery = self.meter.battery
        self.keepalive = None if self.battery is None else self.battery.where.keepalive
        self.awake_until = -1.0 if self.keepalive else float("inf")
        self.stopping = threading.Event()
        self.forced = [False] * len(self.wires)  # from the status: eco/boost draw is forced
        # the devices that report back (not the seed's firmware), by load
        self.devices = {
            k: VirtualDevice(w.codec)
            for k, w in enumerate(self.wires)
            if isinstance(w.codec, DeviceLink) and w.codec.report_topics()
        }
        self.bus = MqttBus(
            cfg.mqtt,
            [*self.index, STATUS_TOPIC, *([self.keepalive] if self.keepalive else [])],
            self._on_message,
            client_id=f"{cfg.mqtt.client_id}-house",
        )

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.keepalive:
            self._on_keepalive(payload)
        elif topic == STATUS_TOPIC:
            self._on_status(payload)
        else:
            self._on_command(topic, payload)

    def _on_keepalive(self, payload: bytes) -> None:
        """Venus OS (dbus-flashmq): awake for 60 s after each keep-alive; one without
        `suppress-republish` has every value published at once."""
        with self.lock:
            self.awake_until = time.monotonic() + VENUS_KEEPALIVE_S
            if b"suppress-republish" not in payload:
                self._publish_battery()

    def _publish_battery(self) -> None:
        """The battery's readings as its bridge sends them, in the config's sign; under the
        lock."""
        if self.battery is None or time.monotonic() > self.awake_until:
            return
        b = self.house.battery
        if b is None:
            return
        for topic, payload in self.battery.publish(self.house.battery_w, b.soc):
            self.bus.publish(topic, payload)

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
            if not self.house.online[k]:
                return  # off the network: it hears nothing
            self.house.actuate(k, power, self.forced[k], self.clock())
            device = self.devices.get(k)
            said = (
                []
                if device is None
                else device.obeyed(payload.decode(), power, self.house.drawn_w(k), time.monotonic())
            )
        self._say(said)

    def _say(self, messages: list[Message]) -> None:
        for m in messages:
            self.bus.publish(m.topic, m.payload, retain=m.retain, qos=1 if m.retain else 0)

    def _devices_speak(self) -> list[Message]:
        """Availability changes (the broker's Last Will, a device's birth) and the measured
        power of each device on the network; under the lock."""
        said: list[Message] = []
        for k, online in self.house.availability_changes:
            if k in self.devices:
                said += self.devices[k].availability(online)
        self.house.availability_changes.clear()
        now = time.monotonic()
        for k, device in self.devices.items():
            if self.house.online[k]:
                said += device.measured(self.house.drawn_w(k), now)
        return said

    def _publish_meter(self) -> None:
        meter = self.cfg.meter
        if meter.pv_topic:
            self.bus.publish(meter.pv_topic, f"{self.house.pv:.0f}")
        now = time.monotonic()
        for topic, payload in self.meter.publish(self.house.reading()):
            last = self.last_sent.get(topic)
            if (
                self.on_change
                and last is not None
                and last[0] == payload
                and now - last[1] < ON_CHANGE_HEARTBEAT_S
            ):
                continue
            self.last_sent[topic] = (payload, now)
            self.bus.publish(topic, payload)

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Play every second of the trace in real time; returns the KPIs measured here."""
        self.bus.start()
        if not self.bus.connected.wait(30):
            mqtt = self.cfg.mqtt
            raise RuntimeError(f"house: no MQTT broker answers at {mqtt.host}:{mqtt.port}")
        with self.lock:
            self._say([m for d in self.devices.values() for m in d.availability(True)])
        period = max(1, round(self.cfg.sim.meter.period_s))
        total = self.house.trace.seconds
        t0 = time.monotonic()
        for i in range(total):
            if self.stopping.wait(max(0.0, t0 + i - time.monotonic())):
                break
            with self.lock:
                self.house.step(i)
                probes = self.house.probe() if i % PROBE_PERIOD_S == 0 else []
                if i % period == 0:
                    self._publish_meter()
                    self._publish_battery()
                said = self._devices_speak()
            self._say(said)
            for k, temp in probes:
                topic = self.wires[k].temperature_topic
                if topic:
                    self.bus.publish(topic, f"{temp:.1f}")
            if progress is not None:
                progress(i + 1, total)
        # the house goes away: the broker would publish each device's Last Will
        self._say([m for d in self.devices.values() for m in d.availability(False)])
        self.bus.stop()
        with self.lock:
            return self.house.result(self.cfg.regulation.policy)
