"""The MQTT listener's meter cache: the latest values with their arrival times, shared by the
paho network thread (writes) and the regulator job (reads)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from machines.meter import (
    GridState,
    LinkyState,
    MeterValueError,
    check_apparent,
    parse_grid_payload,
    parse_number,
    track_reactive,
)
from machines.model import MeterSnapshot
from pvopt.config import MeterConfig

log = logging.getLogger(__name__)


class MeterCache:
    """Validates each meter payload (DESIGN §2) and keeps the newest good value of each topic.

    A rejected payload is logged and changes nothing. Until the first power value arrives the
    meter counts as fresh from `started_at`, so a restart does not shed loads before the meter
    had a chance to speak.
    """

    def __init__(self, cfg: MeterConfig, started_at: float):
        self.cfg = cfg
        self.started_at = started_at
        self._lock = threading.Lock()
        self._linky = LinkyState()
        self._grid = GridState()
        self.pv_w: float | None = None
        self.pv_at: float | None = None
        self.tariff: str | None = None
        self.tariff_at: float | None = None
        self.rejected = 0
        if cfg.kind == "linky":
            t = cfg.topics
            self.power_topics = frozenset({t.sinsts, t.sinsti})
            extra = [t.erqt]
        else:
            assert cfg.grid_topic is not None
            self.power_topics = frozenset({cfg.grid_topic})
            extra = []
        extra += [x for x in (cfg.pv_topic, cfg.tariff_topic) if x]
        self.topics = sorted(self.power_topics | set(extra))

    def feed(self, topic: str, payload: bytes, now: float) -> bool:
        """Take one message; True when it was a fresh power value (worth a tick now)."""
        try:
            return self._feed(topic, payload, now)
        except MeterValueError as exc:
            self.rejected += 1
            log.warning("ignored %s payload %r: %s", topic, payload[:60], exc)
            return False

    def _feed(self, topic: str, payload: bytes, now: float) -> bool:
        cfg = self.cfg
        with self._lock:
            if cfg.kind == "grid" and topic == cfg.grid_topic:
                value = parse_grid_payload(payload, cfg.json_key, cfg.invert)
                self._grid = GridState(value, now)
                return True
            if cfg.kind == "linky" and topic == cfg.topics.sinsts:
                value = check_apparent(parse_number(payload), topic)
                self._linky = replace(self._linky, sinsts=value, sinsts_at=now)
                return True
            if cfg.kind == "linky" and topic == cfg.topics.sinsti:
                value = check_apparent(parse_number(payload), topic)
                self._linky = replace(self._linky, sinsti=value, sinsti_at=now)
                return True
            if cfg.kind == "linky" and topic == cfg.topics.erqt:
                tracker = track_reactive(self._linky.reactive, parse_number(payload), now)
                self._linky = replace(self._linky, reactive=tracker)
                return False
            if topic == cfg.pv_topic:
                self.pv_w = abs(parse_grid_payload(payload, None, False))
                self.pv_at = now
                return False
            if topic == cfg.tariff_topic:
                text = payload.decode("utf-8", "replace").strip()
                if not text or len(text) > 40 or not text.isprintable():
                    raise MeterValueError(f"not a tariff name: {text[:40]!r}")
                self.tariff, self.tariff_at = text, now
                return False
        raise MeterValueError(f"not a meter topic: {topic}")

    def snapshot(self, now: float) -> MeterSnapshot:
        with self._lock:
            state = self._linky if self.cfg.kind == "linky" else self._grid
            snap = state.snapshot(now, self.cfg.stale_after_s)
        if snap.sampled_at is None and now - self.started_at <= self.cfg.stale_after_s:
            return MeterSnapshot(None, None, stale=False)  # still waiting for the first value
        if self.pv_at is not None and now - self.pv_at <= self.cfg.stale_after_s:
            snap = replace(snap, pv_w=self.pv_w)
        return snap

    def offpeak(self, now: float) -> bool | None:
        """Whether the meter's tariff (PTEC) says off-peak; None when unknown or stale."""
        with self._lock:
            tariff, at = self.tariff, self.tariff_at
        if tariff is None or at is None or now - at > self.cfg.stale_after_s:
            return None
        return tariff in self.cfg.offpeak_values

    def age_s(self, now: float) -> float | None:
        """Seconds since the newest power value, None before the first."""
        with self._lock:
            at = self._linky.newest_at() if self.cfg.kind == "linky" else self._grid.at
        return None if at is None else max(0.0, now - at)
