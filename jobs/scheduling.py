"""When the regulator's jobs run: the heartbeat tick, its kick on fresh data, the `inputs` run a
command asks for, the checkpoint (the bodies are `jobs/regulator.py`'s).

One worker thread runs every job, so ticks never overlap and the core stays single-threaded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

TICK_JOB = "tick"
KICK_JOB = "kick"
INPUTS_JOB = "inputs"
CHECKPOINT_JOB = "checkpoint"
CHECKPOINT_LAG_S = 1.0
REGULATOR_THREAD = "regulator"  # the `default` executor's one worker: ticks, checkpoints
IO_THREAD = "influx"
EXECUTORS = ("default", "io")


def make_scheduler(tz: ZoneInfo) -> BackgroundScheduler:
    """A scheduler in the site's time zone: one worker for the regulator and the store, one
    (`io`) for InfluxDB, named so logs and tests can tell them; late runs coalesce."""
    return BackgroundScheduler(
        timezone=tz,
        executors={
            "default": ThreadPoolExecutor(1, pool_kwargs={"thread_name_prefix": REGULATOR_THREAD}),
            "io": ThreadPoolExecutor(1, pool_kwargs={"thread_name_prefix": IO_THREAD}),
        },
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
    )


def add_regulation_jobs(
    scheduler: BackgroundScheduler,
    tick: Callable[[], None],
    checkpoint: Callable[[], None],
    tick_s: float,
    checkpoint_s: float,
) -> None:
    """The heartbeat tick and the checkpoint, on the regulator's worker."""
    scheduler.add_job(tick, "interval", seconds=tick_s, id=TICK_JOB)
    # checkpoints just after UTC multiples of checkpoint_s: the interval that ended is complete
    first = (math.floor(time.time() / checkpoint_s) + 1) * checkpoint_s + CHECKPOINT_LAG_S
    scheduler.add_job(
        checkpoint,
        "interval",
        seconds=checkpoint_s,
        start_date=datetime.fromtimestamp(first, scheduler.timezone),
        id=CHECKPOINT_JOB,
    )


def realign(scheduler: BackgroundScheduler, tick_s: float, checkpoint_s: float) -> None:
    """After a wall-clock step, put the heartbeat, the checkpoint and the schedules' wake-up
    back on the new time: APScheduler 3 waits for wall-clock run times, so a step back would
    hold them for as long as the step, and a step forward would fire them all at once."""
    if not scheduler.running:
        return
    now = datetime.now(scheduler.timezone)
    scheduler.reschedule_job(TICK_JOB, trigger="interval", seconds=tick_s)
    first = (math.floor(now.timestamp() / checkpoint_s) + 1) * checkpoint_s + CHECKPOINT_LAG_S
    scheduler.reschedule_job(
        CHECKPOINT_JOB,
        trigger="interval",
        seconds=checkpoint_s,
        start_date=datetime.fromtimestamp(first, scheduler.timezone),
    )
    for job in scheduler.get_jobs():
        if job.id not in (TICK_JOB, CHECKPOINT_JOB) and not isinstance(job.trigger, DateTrigger):
            job.modify(next_run_time=job.trigger.get_next_fire_time(None, now))


def run_inputs(scheduler: BackgroundScheduler, apply_inputs: Callable[[], None]) -> None:
    """Run `apply_inputs` on the regulator's worker now. Up to two instances: one running, one
    waiting in the single worker's queue, which takes whatever arrives meanwhile."""
    if not scheduler.running:
        return
    run_at = datetime.now(scheduler.timezone)
    scheduler.add_job(
        apply_inputs,
        "date",
        run_date=run_at,
        id=INPUTS_JOB,
        replace_existing=True,
        max_instances=2,
    )


def kick(scheduler: BackgroundScheduler, tick: Callable[[], None], delay_s: float) -> None:
    """Run `tick` once, `delay_s` from now, besides the heartbeat; kicks that come faster than
    that replace each other (a Linky's SINSTS and SINSTI give one decision)."""
    if not scheduler.running:
        return
    run_at = datetime.now(scheduler.timezone) + timedelta(seconds=delay_s)
    scheduler.add_job(tick, "date", run_date=run_at, id=KICK_JOB, replace_existing=True)
