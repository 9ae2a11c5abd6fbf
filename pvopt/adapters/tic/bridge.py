"""`pvopt tic`'s MQTT side: every frame's topics through `MqttBus`, the retained bridge
summary, and the historic-mode check that `pvopt run` and `pvopt config check` make."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from machines.errors import BrokerError
from pvopt.adapters.mqtt import MqttBus, OneShot
from pvopt.adapters.tic.frames import Counters, Frame
from pvopt.adapters.tic.labels import TopicMap, decode_stge, frame_topics, identity
from pvopt.config import Config
from pvopt.kinds.meters import METER_SOURCES

log = logging.getLogger(__name__)

# After a broker outage only the newest frame is sent, and only if it is this fresh: an old
# SINSTS would look like a live meter to `pvopt run`, whose staleness rule needs the truth.
FRESH_S = 10.0


def topic_map(cfg: Config) -> TopicMap:
    """Labels under `tic.topic_prefix`; the scalars where `meter:` says pvopt reads them."""
    t = cfg.meter.topics
    return TopicMap(cfg.tic.topic_prefix, t.sinsts, t.sinsti, t.erqt, cfg.meter.tariff_topic)


def online_topic(prefix: str) -> str:
    return prefix + "online"


class TicBridge:
    """Publishes each frame at once while the broker is up (every frame, so a silent topic
    means a dead meter); while it is down, keeps only the newest frame."""

    def __init__(
        self,
        cfg: Config,
        counters: Counters,
        *,
        port: str,
        reader_state: Callable[[], str] = lambda: "reading",
        clock: Callable[[], float] = time.time,
    ):
        self.cfg = cfg
        self.topics = topic_map(cfg)
        self.counters = counters
        self.port = port
        self.reader_state = reader_state
        self.clock = clock
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self.latest: dict[str, str] = {}
        self.latest_at: float | None = None
        self.mode: str | None = None
        self.meter_id: str | None = None
        self.stge: dict[str, Any] | None = None
        self.published_frames = 0
        self.skipped_frames = 0  # read while the broker was down
        self.summary_at = 0.0
        self.online = online_topic(cfg.tic.topic_prefix)
        self.bus = MqttBus(
            cfg.mqtt,
            [],
            lambda _t, _p: None,
            will=(self.online, "offline"),
            on_connect=self._on_connect,
            client_id=f"{cfg.mqtt.client_id}-tic",
        )

    def start(self) -> None:
        self.bus.start()
        threading.Thread(target=self._summaries, name="tic-summary", daemon=True).start()

    def _summaries(self) -> None:
        """The summary also goes out while no frame arrives: a dead meter still says so."""
        every = self.cfg.tic.summary_every_s
        while not self._stopping.wait(every / 2):
            now = self.clock()
            if self.bus.connected.is_set() and now - self.summary_at >= every:
                self.publish_summary(now)

    def stop(self) -> None:
        self._stopping.set()
        if self.bus.connected.is_set():
            self.bus.publish(self.online, "offline", retain=True, qos=1)
            self.publish_summary(self.clock())
        self.bus.stop()

    def on_frame(self, frame: Frame) -> None:
        """The reader's sink: map, remember, publish if connected."""
        now = self.clock()
        topics = frame_topics(frame, self.topics)
        meter_id = identity(frame)
        with self.lock:
            changed = frame.mode != self.mode or meter_id not in (None, self.meter_id)
            self.latest, self.latest_at, self.mode = topics, now, frame.mode
            self.meter_id = meter_id or self.meter_id
            stge = frame.get("STGE")
            if stge is not None:
                with contextlib.suppress(ValueError):
                    self.stge = decode_stge(stge.strip())
            if not self.bus.connected.is_set():
                self.skipped_frames += 1
                return
            self._send(topics)
        if changed or now - self.summary_at >= self.cfg.tic.summary_every_s:
            self.publish_summary(now)

    def _send(self, topics: dict[str, str]) -> None:
        for topic, payload in topics.items():
            self.bus.publish(topic, payload)
        self.published_frames += 1

    def _on_connect(self) -> None:
        now = self.clock()
        self.bus.publish(self.online, "online", retain=True, qos=1)
        with self.lock:
            if self.latest_at is not None and now - self.latest_at <= FRESH_S:
                self._send(self.latest)
        self.publish_summary(now)

    def summary(self, now: float) -> dict[str, Any]:
        """The retained JSON summary: who the meter is, which mode, how the line is doing."""
        with self.lock:
            return {
                "meter_id": self.meter_id,
                "mode": self.mode,
                "port": self.port,
                "reader": self.reader_state(),
                "last_frame_age_s": None
                if self.latest_at is None
                else round(now - self.latest_at, 1),
                "published_frames": self.published_frames,
                "frames_while_broker_down": self.skipped_frames,
                **self.counters.as_dict(),
                "stge": self.stge,
                "time": round(now, 1),
            }

    def publish_summary(self, now: float) -> None:
        self.summary_at = now
        self.bus.publish(self.topics.summary, json.dumps(self.summary(now)), retain=True, qos=1)


def reads_tic(cfg: Config) -> bool:
    """Whether the configured meter is fed by the TIC (so a historic-mode bridge matters); a
    meter preset is its own bridge, never `pvopt tic`."""
    return cfg.meter.preset is None and METER_SOURCES.get(cfg.meter.kind).reads_tic


def historic_warning(cfg: Config, summary: dict[str, Any] | None) -> str | None:
    """One line when the config needs SINSTI (a Linky meter) but the bridge reads a
    historic-mode TIC, which carries no export at all."""
    if not reads_tic(cfg) or not summary or summary.get("mode") != "historic":
        return None
    who = f" {summary['meter_id']}" if summary.get("meter_id") else ""
    return (
        f"the TIC bridge reads the Linky{who} in historic mode, which has no SINSTI: pvopt "
        "cannot see export, so it diverts nothing; ask your supplier for the TIC in standard "
        "mode (docs/tic.md)"
    )


def read_summary(cfg: Config, timeout_s: float = 1.5) -> dict[str, Any] | None:
    """The bridge's retained summary, or None (no broker, no bridge, unreadable)."""
    topic = topic_map(cfg).summary
    try:
        shot = OneShot(cfg.mqtt, [topic], timeout_s=timeout_s)
    except BrokerError:  # no broker, or a client paho cannot set up
        return None
    try:
        if not shot.wait_for(lambda m: topic in m, timeout_s):
            return None
        doc = json.loads(shot.messages[topic])
        return doc if isinstance(doc, dict) else None
    except ValueError:
        return None
    finally:
        shot.close()


class HistoricWatch:
    """For `pvopt run`: listens to the bridge summary and says it once if the mode is
    historic (the bridge may start after the service)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.said = False
        self.topic = topic_map(cfg).summary
        self.bus = MqttBus(
            cfg.mqtt, [self.topic], self._on_message, client_id=f"{cfg.mqtt.client_id}-ticwatch"
        )

    def start(self) -> None:
        if reads_tic(self.cfg):
            self.bus.start()

    def _on_message(self, _topic: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        line = historic_warning(self.cfg, doc if isinstance(doc, dict) else None)
        if line is not None and not self.said:
            log.warning("%s", line)
            self.said = True
        elif line is None:
            self.said = False
