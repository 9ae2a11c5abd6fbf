"""The MQTT listener's meter cache: the latest values with their arrival times, shared by the
paho network thread (writes) and the regulator job (reads)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from jobs.ports import MeterFeed
from machines.meter import MeterValueError
from machines.model import MeterSnapshot

log = logging.getLogger("pvopt.meter_cache")  # the name users filter on, as before the move


class MeterCache:
    """Validates each meter payload (docs/meter.md) and keeps the newest good value of each topic.

    The meter's own kind (`meter.kind`, a registered source the service builds) reads the
    payloads; this class adds the lock, the count of rejected payloads and the start-up grace.
    A rejected payload is logged and changes nothing. Until the first power value arrives the
    meter counts as fresh from `started_at`, so a restart does not shed loads before the meter
    had a chance to speak.
    """

    def __init__(
        self,
        source: MeterFeed,
        started_at: float,
        monotonic: Callable[[], float] | None = None,
    ):
        # With `monotonic`, arrival times live on it, so a wall-clock step (NTP on a Pi
        # without RTC) neither ages a fresh value into `stale` nor keeps a dead meter fresh;
        # snapshots still give `sampled_at` on the wall clock, as the policy compares it.
        self.monotonic = monotonic
        self.started_at = self._base(started_at)
        self._lock = threading.Lock()
        self.source = source
        self.rejected = 0
        self.topics = sorted(self.source.topics)

    @property
    def kick_delay_s(self) -> float:
        """How long to wait after a fresh power value before deciding (a Linky's pair)."""
        return self.source.kick_delay_s

    def feed(self, topic: str, payload: bytes, now: float) -> bool:
        """Take one message; True when it was a fresh power value (worth a tick now)."""
        try:
            at = now if self.monotonic is None else self.monotonic()  # as `_base`, inline
            with self._lock:
                return self.source.feed(topic, payload, at)
        except MeterValueError as exc:
            self.rejected += 1
            log.warning("ignored %s payload %r: %s", topic, payload[:60], exc)
            return False

    def _base(self, now: float) -> float:
        """`now` on the cache's own timeline: the monotonic clock when there is one."""
        return now if self.monotonic is None else self.monotonic()

    def snapshot(self, now: float) -> MeterSnapshot:
        base = self._base(now)
        with self._lock:
            snap = self.source.snapshot(base)
        if snap.sampled_at is None and base - self.started_at <= self.source.stale_after_s:
            # still waiting for the first value (the battery's readings may be in already)
            return MeterSnapshot(
                None, None, stale=False, battery_w=snap.battery_w, battery_soc=snap.battery_soc
            )
        if base != now:  # the arrival times on the wall clock
            shift = now - base
            if snap.sampled_at is not None:
                snap = replace(snap, sampled_at=snap.sampled_at + shift)
            if snap.pv_at is not None:
                snap = replace(snap, pv_at=snap.pv_at + shift)
        return snap

    def offpeak(self, now: float) -> bool | None:
        """Whether the meter's tariff (PTEC) says off-peak; None when unknown or stale."""
        with self._lock:
            return self.source.offpeak(self._base(now))

    def age_s(self, now: float) -> float | None:
        """Seconds since the newest power value, None before the first."""
        with self._lock:
            at = self.source.newest_at()
        return None if at is None else max(0.0, self._base(now) - at)
