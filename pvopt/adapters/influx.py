"""The InfluxDB 1.x edge: the HTTP client that writes the outbox's points (the schema and the
outbox itself are job logic: `jobs/influx.py`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from jobs.ports import Point, SinkRejected, SinkUnavailable
from pvopt.config import InfluxConfig

log = logging.getLogger("pvopt.adapters.influx")


class InfluxUnavailable(SinkUnavailable):
    """Every client, server and network error of a write, in one domain error."""


class InfluxRejected(InfluxUnavailable, SinkRejected):
    """InfluxDB refused the points themselves (HTTP 400): the same write will fail forever."""


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

    def write(self, points: list[Point]) -> None:
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
            if isinstance(exc, InfluxDBClientError) and exc.code == 400:
                # the points themselves, not the server nor the user: no retry helps
                raise InfluxRejected(
                    f"InfluxDB at {cfg.host}:{cfg.port} refused the points: {str(exc)[:200]}"
                ) from None
            raise InfluxUnavailable(
                f"InfluxDB at {cfg.host}:{cfg.port} unreachable or refusing: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None

    def _write(self, points: list[Point]) -> None:
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
