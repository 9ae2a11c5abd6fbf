"""A test's own MQTT client: publishes like a meter, records what pvopt publishes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Probe:
    def __init__(self, port: int, topics: tuple[str, ...] = ("#",)):
        self.messages: list[tuple[float, str, bytes]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{time.time_ns()}")
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        for t in topics:
            self.client.subscribe(t, qos=1)
        self.sync()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((time.time(), msg.topic, msg.payload))
            self.cond.notify_all()

    def sync(self) -> None:
        """Round trip through the broker: everything published before is delivered after."""
        marker = f"probe/sync/{time.time_ns()}"
        self.client.subscribe(marker, qos=1)
        self.publish(marker, "x")
        assert self.wait(lambda: any(t == marker for _, t, _ in self.messages), 5)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Poll `predicate` until it holds or the deadline passes (no fixed sleeps)."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.05))
            return True

    def last(self, topic: str, since: float = 0.0) -> bytes | None:
        with self.cond:
            for at, t, payload in reversed(self.messages):
                if t == topic and at >= since:
                    return payload
        return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
