"""The MQTT edge (paho-mqtt 2.x): auth, optional TLS, Last Will, reconnect with backoff and
resubscribe on every connect; plus the short-lived client the CLI uses.

paho's own exceptions (`ValueError`, `RuntimeError`, socket and TLS `OSError`s) stop here: they
leave as `BrokerError`, or `BrokerUnavailable` when the broker cannot be reached, naming it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from machines.errors import BrokerError, BrokerUnavailable
from pvopt.config import MqttConfig

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30

Handler = Callable[[str, bytes], None]
PAHO_ERRORS = (ValueError, RuntimeError, OSError)  # what paho raises: bad arguments, no
# connection, a socket or TLS failure (ssl.SSLError and socket.gaierror are OSErrors)


def broker(cfg: MqttConfig) -> str:
    """How errors name the broker."""
    return f"MQTT broker {cfg.host}:{cfg.port}"


def make_client(cfg: MqttConfig, client_id: str) -> mqtt.Client:
    """A paho client with the config's credentials and TLS (secrets never logged)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        client.username_pw_set(cfg.username, password)
    tls = cfg.tls
    if tls.ca_file or tls.cert_file:
        try:
            client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)
        except PAHO_ERRORS as exc:
            raise BrokerError(
                f"{broker(cfg)}: cannot set up TLS with mqtt.tls (ca_file {tls.ca_file}, "
                f"cert_file {tls.cert_file}, key_file {tls.key_file}): {exc}"
            ) from exc
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client


class MqttBus:
    """One long-lived connection: `start()` returns at once and keeps (re)connecting in paho's
    network thread; every (re)connect resubscribes and calls `on_connect`."""

    def __init__(
        self,
        cfg: MqttConfig,
        topics: Iterable[str],
        on_message: Handler,
        *,
        will: tuple[str, str] | None = None,
        on_connect: Callable[[], None] | None = None,
        client_id: str | None = None,
    ):
        self.cfg = cfg
        self.topics = sorted(set(topics))
        self.handler = on_message
        self.connected = threading.Event()
        # set once the broker acknowledged our subscriptions: from then on nothing sent to
        # them is missed (`connected` alone races a publisher that starts at the same time)
        self.subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self.connects = 0
        self._on_connect_hook = on_connect
        self.client = make_client(cfg, client_id or cfg.client_id)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        """Start connecting; a client paho cannot start (its arguments, its thread) raises
        `BrokerError`. An unreachable broker does not: paho keeps retrying, and says so."""
        log.info("MQTT: connecting to %s:%d", self.cfg.host, self.cfg.port)
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
            self.client.loop_start()
        except PAHO_ERRORS as exc:
            raise BrokerError(f"{broker(self.cfg)}: cannot start the MQTT client: {exc}") from exc

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()
        self.subscribed.clear()

    def publish(self, topic: str, payload: str, *, retain: bool = False, qos: int = 0) -> None:
        """Queue a message; paho sends it now, or (qos ≥ 1) once reconnected. Never raises:
        a message paho cannot queue is dropped (the next command refresh sends it again)."""
        try:
            self.client.publish(topic, payload, qos=qos, retain=retain)
        except PAHO_ERRORS as exc:
            log.debug("MQTT: %s not queued: %s", topic, exc)

    def publish_wait(
        self, topic: str, payload: str, timeout_s: float, *, retain: bool = False, qos: int = 1
    ) -> None:
        """Send one message and wait until the broker has it (or `timeout_s` passes); raise
        `BrokerUnavailable` when it cannot be sent (no connection)."""
        try:
            self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(timeout_s)
        except PAHO_ERRORS as exc:  # paho: "The client is not currently connected."
            raise BrokerUnavailable(f"{broker(self.cfg)}: {topic} not sent: {exc}") from exc

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT: connection to %s:%d refused: %s", self.cfg.host, self.cfg.port, reason)
            return
        self.connects += 1
        log.info(
            "MQTT: connected to %s:%d%s",
            self.cfg.host,
            self.cfg.port,
            "" if self.connects == 1 else f" (reconnect #{self.connects - 1})",
        )
        if self.topics:
            _, self._subscribe_mid = client.subscribe([(t, 0) for t in self.topics])
        else:
            self.subscribed.set()
        self.connected.set()
        if self._on_connect_hook is not None:
            self._on_connect_hook()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        if mid == self._subscribe_mid:
            self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:  # said before the flag drops: whoever waits on it sees the line
            log.warning("MQTT: connection lost (%s); reconnecting with backoff", reason)
        self.connected.clear()
        self.subscribed.clear()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handler(msg.topic, bytes(msg.payload))
        except Exception:  # a bug in one message must not kill paho's network thread
            log.exception("MQTT: error handling %s", msg.topic)


class OneShot:
    """A short-lived client for the CLI: connect, subscribe, publish, wait for a condition."""

    def __init__(self, cfg: MqttConfig, topics: Iterable[str], timeout_s: float = 3.0):
        self.cfg = cfg
        self.messages: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self.client = make_client(cfg, f"{cfg.client_id}-cli-{time.time_ns() % 1_000_000}")
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        try:
            self.client.connect(cfg.host, cfg.port, keepalive=30)
        except PAHO_ERRORS as exc:
            raise BrokerUnavailable(f"{broker(cfg)}: {exc}") from exc
        self.client.loop_start()
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.timeout_s = timeout_s

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages[msg.topic] = bytes(msg.payload)
            self._cond.notify_all()

    def publish(self, topic: str, payload: str, qos: int = 1) -> None:
        """Send and wait up to `timeout_s`; `BrokerUnavailable` when it cannot be sent."""
        try:
            self.client.publish(topic, payload, qos=qos).wait_for_publish(self.timeout_s)
        except PAHO_ERRORS as exc:
            raise BrokerUnavailable(f"{broker(self.cfg)}: {topic} not sent: {exc}") from exc

    def wait_for(self, predicate: Callable[[dict[str, bytes]], bool], timeout_s: float) -> bool:
        """Block until `predicate(messages)` holds or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
