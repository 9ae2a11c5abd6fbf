"""The InfluxDB 1.x edge: the documented schema, the sink, and the outbox that loses nothing.

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

from pvopt.config import InfluxConfig
from state.store import StateStore

log = logging.getLogger("pvopt.adapters.influx")

BATCH_INTERVALS = 500  # intervals per write (a day of minutes is ~3 batches)
BACKOFF_MIN_S = 5.0
BACKOFF_MAX_S = 300.0
NEAR_FULL = 0.8  # warn when the unsent backlog reaches this share of outbox_max_days


def to_points(doc: dict[str, Any], load_ids: dict[str, int]) -> list[dict[str, Any]]:
    """The points of one stored interval document."""
    at = int(doc["end"])
    points = [{"measurement": "pvopt_grid", "time": at, "fields": dict(doc["grid"])}]
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


class InfluxUnavailable(RuntimeError):
    pass


class InfluxSink:
    """Writes points. When the database or the retention policy is missing it creates it, if
    the user may, and says clearly what to do when it may not. A write-only user is enough once
    both exist."""

    def __init__(self, cfg: InfluxConfig):
        from influxdb import InfluxDBClient

        self.cfg = cfg
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        self.client = InfluxDBClient(
            host=cfg.host,
            port=cfg.port,
            username=cfg.username,
            password=password,
            database=cfg.database,
            timeout=5,
            retries=1,
        )

    def write(self, points: list[dict[str, Any]]) -> None:
        from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError
        from requests.exceptions import RequestException

        cfg = self.cfg
        try:
            for attempt in range(3):  # a new server lacks both the database and the policy
                try:
                    self._write(points)
                    return
                except (InfluxDBClientError, InfluxDBServerError) as exc:
                    missing = str(exc)  # 1.x says "not found" with a 404 or a 500
                    if attempt == 2:
                        raise
                    if "database not found" in missing:
                        self._create(lambda: self.client.create_database(cfg.database), "database")
                    elif "retention policy not found" in missing:
                        self._create(self._create_rp, "retention policy")
                    else:
                        raise
        except InfluxUnavailable:
            raise
        except (RequestException, InfluxDBClientError, InfluxDBServerError, OSError) as exc:
            raise InfluxUnavailable(
                f"InfluxDB at {cfg.host}:{cfg.port} unreachable or refusing: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def _write(self, points: list[dict[str, Any]]) -> None:
        self.client.write_points(
            points, time_precision="s", retention_policy=self.cfg.retention_policy, batch_size=5000
        )

    def _create_rp(self) -> None:
        cfg = self.cfg
        assert cfg.retention_policy is not None
        self.client.create_retention_policy(
            cfg.retention_policy, cfg.retention, 1, cfg.database, default=False
        )

    def _create(self, create: Callable[[], None], what: str) -> None:
        from influxdb.exceptions import InfluxDBClientError

        cfg = self.cfg
        try:
            create()
        except InfluxDBClientError as exc:
            if exc.code not in (401, 403):
                raise
            raise InfluxUnavailable(
                f"InfluxDB user {cfg.username or '(none)'} may not create the {what} "
                f"({cfg.database!r}, retention policy {cfg.retention_policy!r}): as an admin, "
                f"run CREATE DATABASE {cfg.database} and CREATE RETENTION POLICY "
                f"{cfg.retention_policy} ON {cfg.database} DURATION {cfg.retention} "
                "REPLICATION 1, or set influxdb.retention_policy: null to write to the "
                "database's default policy; points wait in the outbox meanwhile"
            ) from None
        log.info(
            "InfluxDB: created %s %s (the database's default retention policy is unchanged)",
            what,
            cfg.retention_policy if what == "retention policy" else cfg.database,
        )


class Outbox:
    """Which stored intervals InfluxDB already has, and the retry rhythm.

    `sent_until` (the end of the last interval written) is saved with the next checkpoint, not
    on its own: after a crash a few intervals are written again, with the same timestamps.
    """

    def __init__(self, cfg: InfluxConfig, saved: dict[str, Any], clock: Callable[[], float]):
        self.cfg = cfg
        self.clock = clock
        self.lock = threading.Lock()
        self.sent_until = int(saved.get("sent_until", 0))
        self.dropped = int(saved.get("dropped", 0))
        self.backoff_s = 0.0
        self.next_attempt = 0.0
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.written = 0
        self.near_full_warned_at = 0.0

    def doc(self) -> dict[str, Any]:
        with self.lock:
            return {"sent_until": self.sent_until, "dropped": self.dropped}

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "sent_until": self.sent_until,
                "dropped": self.dropped,
                "written": self.written,
                "error": self.last_error,
            }

    def flush(self, store: StateStore, sink: InfluxSink, load_ids: dict[str, int]) -> int:
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
            batch = store.intervals(after, limit=BATCH_INTERVALS)
            if not batch:
                break
            points = [p for doc in batch for p in to_points(doc, load_ids)]
            try:
                sink.write(points)
            except InfluxUnavailable as exc:
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
        limit_s = self.cfg.outbox_max_days * 86400.0
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
                self.cfg.outbox_max_days,
                lost,
                self.dropped,
            )
        elif age >= NEAR_FULL * limit_s and now - self.near_full_warned_at >= 3600:
            self.near_full_warned_at = now
            log.warning(
                "InfluxDB outbox %.1f days behind (%g at most): intervals older than that "
                "will be dropped",
                age / 86400.0,
                self.cfg.outbox_max_days,
            )
