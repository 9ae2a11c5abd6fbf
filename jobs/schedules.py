"""The schedules' APScheduler job: wake the regulator exactly at every window boundary and daily
check (docs/schedules.md), in the site's time zone.

APScheduler's own CronTrigger fires a 02:05 start at 03:05 on the spring-forward night and twice
on the fall-back night; this trigger asks the planner's pure `next_events` instead, so the
service wakes when the planner's rules say, and `pvopt schedules` lists the same times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from machines.schedules import Schedule, next_events

SCHEDULES_JOB = "schedules"


class BoundaryTrigger(BaseTrigger):
    """Fires at the next open/close/check of any of `schedules`."""

    def __init__(self, schedules: Sequence[Schedule], tz: ZoneInfo):
        self.schedules = list(schedules)
        self.tz = tz

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = now.timestamp()
        if previous_fire_time is not None:
            after = max(after, previous_fire_time.timestamp())
        times = [t for s in self.schedules for t, _ in next_events(s, after, self.tz, 1)]
        return datetime.fromtimestamp(min(times), self.tz) if times else None

    def __str__(self) -> str:
        return f"boundaries of {len(self.schedules)} schedule(s)"


def add_schedule_job(
    scheduler: BaseScheduler, schedules: Sequence[Schedule], tz: ZoneInfo, wake: Callable[[], None]
) -> None:
    """`wake` (a regulator tick) at every boundary; the tick's planner does the rest."""
    if any(s.start is not None or s.at is not None for s in schedules):
        scheduler.add_job(
            wake, BoundaryTrigger(schedules, tz), id=SCHEDULES_JOB, misfire_grace_time=3600
        )
