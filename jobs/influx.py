"""The InfluxDB job: the outbox that loses nothing, flushed on its own worker thread so a slow
or absent InfluxDB never delays a regulator tick.

Schema (one point per measurement and interval, timestamped at the interval's end, UTC-aligned):
- `pvopt_grid` — no tags; fields `import_wh`, `export_wh`, `diverted_wh`, `loads_wh`,
  `covered_s`, `meter_s`, and when known `active_w`, `reactive_var` (means), `pv_wh`.
- `pvopt_load` — tags `load` (name), `id`; fields `energy_wh`, `power_w` (mean), `off_s`,
  `eco_s`, `solar_s`, `boost_s` (time in each state), and when known `temperature_c` (mean).
A retry writes the same timestamps and tags, so InfluxDB keeps one point per interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.base import BaseScheduler

from jobs.ports import Clock, Point, Sink, SinkRejected, SinkUnavailable
from state.store import StateStore

log = logging.getLogger("pvopt.jobs.influx")

INFLUX_JOB = "influx"
BATCH_INTERVALS = 500  # intervals per write (a day of minutes is ~3 batches)
BACKOFF_MIN_S = 5.0
BACKOFF_MAX_S = 300.0
NEAR_FULL = 0.8  # warn when the unsent backlog reaches this share of outbox_max_days


def to_points(doc: dict[str, Any], load_ids: dict[str, int]) -> list[Point]:
    """The points of one stored interval document."""
    at = int(doc["end"])
    points: list[Point] = [{"measurement": "pvopt_grid", "time": at, "fields": dict(doc["grid"])}]
    for name, fields in doc["loads"].items():
        points.append(
            {
                "measurement": "pvopt_load",
                "tags": {"load": name, "id": str(load_ids.get(name, ""))},
                "time": at,
                "fields": dict(fields),
            }
        )
    return points


def closed_prefix(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The intervals before the first open one: an interval saved at shutdown is partial,
    and sending it would move `sent_until` past the complete one a restart writes later."""
    for i, doc in enumerate(docs):
        if doc.get("open"):
            return docs[:i]
    return docs


class Outbox:
    """Which stored intervals the sink already has, and the retry rhythm.

    `sent_until` (the end of the last interval written) is saved with the next checkpoint, not
    on its own: after a crash a few intervals are written again, with the same timestamps.
    """

    def __init__(self, max_days: float, saved: dict[str, Any], clock: Clock):
        self.max_days = max_days
        self.clock = clock
        self.lock = threading.Lock()  # the io worker writes, the regulator's checkpoint reads
        self.sent_until = int(saved.get("sent_until", 0))
        self.dropped = int(saved.get("dropped", 0))
        self.rejected = int(saved.get("rejected", 0))  # intervals set aside after a 4xx
        self.backoff_s = 0.0
        self.next_attempt = 0.0
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.written = 0
        self.near_full_warned_at = 0.0

    def doc(self) -> dict[str, Any]:
        with self.lock:
            return {
                "sent_until": self.sent_until,
                "dropped": self.dropped,
                "rejected": self.rejected,
            }

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "sent_until": self.sent_until,
                "dropped": self.dropped,
                "rejected": self.rejected,
                "written": self.written,
                "error": self.last_error,
            }

    def flush(self, store: StateStore, sink: Sink, load_ids: dict[str, int]) -> int:
        """Write every committed, unsent interval, oldest first, in batches; on failure keep
        them and back off (5 s doubling to 5 min). Returns how many intervals were written."""
        now = self.clock()
        if now < self.next_attempt:
            return 0
        self._bound(store, now)
        done = 0
        while True:
            with self.lock:
                after = self.sent_until
            batch = closed_prefix(store.intervals(after, limit=BATCH_INTERVALS))
            if not batch:
                break
            points = [p for doc in batch for p in to_points(doc, load_ids)]
            try:
                sink.write(points)
            except SinkRejected as exc:
                self._set_aside(batch, str(exc))
                continue
            except SinkUnavailable as exc:
                self._failed(str(exc), now)
                return done
            with self.lock:
                self.sent_until = int(batch[-1]["end"])
                self.written += len(batch)
            done += len(batch)
        if self.failing_since is not None:
            log.info(
                "InfluxDB back after %.0f s: %d interval(s) written",
                now - self.failing_since,
                done,
            )
        self.failing_since = None
        self.last_error = None
        self.backoff_s = 0.0
        return done

    def _set_aside(self, batch: list[dict[str, Any]], error: str) -> None:
        """Skip a batch the sink will never take, so it does not block the outbox forever;
        its intervals stay in the local history (`pvopt energy`)."""
        with self.lock:
            self.sent_until = int(batch[-1]["end"])
            self.rejected += len(batch)
        log.error(
            "%s; set aside %d interval(s) up to %d (%d in all), they stay in the local history",
            error,
            len(batch),
            batch[-1]["end"],
            self.rejected,
        )

    def _failed(self, error: str, now: float) -> None:
        self.backoff_s = min(max(self.backoff_s * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
        self.next_attempt = now + self.backoff_s
        if self.failing_since is None or error != self.last_error:
            log.warning("%s; intervals wait in the outbox, retry in %.0f s", error, self.backoff_s)
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = error

    def _bound(self, store: StateStore, now: float) -> None:
        """Beyond `outbox_max_days` the oldest unsent intervals are given up, loudly."""
        limit_s = self.max_days * 86400.0
        cutoff = int(now - limit_s)
        with self.lock:
            after = self.sent_until
        oldest = store.intervals(after, limit=1)
        if not oldest:
            return
        age = now - oldest[0]["end"]
        if oldest[0]["end"] <= cutoff:
            lost = len(store.intervals(after, until=cutoff))
            with self.lock:
                self.sent_until = cutoff
                self.dropped += lost
            log.error(
                "InfluxDB outbox over %g days: dropped its %d oldest interval(s) (%d in all); "
                "they stay in the local history (`pvopt energy`)",
                self.max_days,
                lost,
                self.dropped,
            )
        elif age >= NEAR_FULL * limit_s and now - self.near_full_warned_at >= 3600:
            self.near_full_warned_at = now
            log.warning(
                "InfluxDB outbox %.1f days behind (%g at most): intervals older than that "
                "will be dropped",
                age / 86400.0,
                self.max_days,
            )


class FlushJob:
    """The `io` worker's body: hand what the store committed since the last write to the sink."""

    def __init__(
        self,
        outbox: Outbox,
        store: StateStore,
        sink: Sink,
        load_ids: dict[str, int],
        committed_until: Callable[[], int],
    ):
        self.outbox = outbox
        self.store = store
        self.sink = sink
        self.load_ids = load_ids
        self.committed_until = committed_until

    def __call__(self) -> None:
        """Return at once when nothing new was committed (most runs) or while backing off."""
        if self.outbox.sent_until >= self.committed_until():
            return
        self.outbox.flush(self.store, self.sink, self.load_ids)


def add_influx_job(scheduler: BaseScheduler, flush: Callable[[], None]) -> None:
    """`flush` every few seconds on the `io` executor: it returns at once when nothing new
    was committed, or while it backs off after a failure."""
    scheduler.add_job(
        flush, "interval", seconds=BACKOFF_MIN_S, id=INFLUX_JOB, executor="io", coalesce=True
    )
