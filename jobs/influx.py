"""The InfluxDB job: flush the outbox on its own worker thread, so a slow or absent InfluxDB
never delays a regulator tick."""

from __future__ import annotations

from collections.abc import Callable

from apscheduler.schedulers.base import BaseScheduler

from pvopt.adapters.influx import BACKOFF_MIN_S

INFLUX_JOB = "influx"


def add_influx_job(scheduler: BaseScheduler, flush: Callable[[], None]) -> None:
    """`flush` every few seconds on the `io` executor: it returns at once when nothing new
    was committed, or while it backs off after a failure."""
    scheduler.add_job(
        flush, "interval", seconds=BACKOFF_MIN_S, id=INFLUX_JOB, executor="io", coalesce=True
    )
