"""The scheduler's error listener against a real APScheduler: one log per run of identical
failures, with the job's name; counted; the job keeps its schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

from jobs.errors import JobErrors
from jobs.scheduling import EXECUTORS, make_scheduler
from pvopt import config
from tests.clock import T0, FakeClock


class JobEvents:
    """Wakes the test at every job event (registered after the listener under test)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def __call__(self, _event: Any) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout_s)


def test_a_failing_job_is_logged_once_counted_and_its_recovery_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    errors = JobErrors()
    scheduler = make_scheduler(ZoneInfo("Europe/Paris"))
    errors.install(scheduler, EXECUTORS)
    events = JobEvents()
    scheduler.add_listener(events, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
    runs: list[str] = []

    def regulate() -> None:
        runs.append("run")
        if len(runs) <= 2:
            raise ZeroDivisionError("division by zero")

    scheduler.start()
    try:
        for n in (1, 2):  # the same failure twice: counted twice, logged once
            scheduler.add_job(regulate, id="tick")
            assert events.wait(lambda n=n: errors.status()["errors"] == n)
        assert errors.status() == {
            "errors": 2,
            "failing": {"tick": "ZeroDivisionError: division by zero"},
        }
        scheduler.add_job(regulate, id="tick")
        assert events.wait(lambda: not errors.status()["failing"])
    finally:
        scheduler.shutdown(wait=True)
    assert len(runs) == 3
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]  # APScheduler's own is muted
    assert "job tick failed (ZeroDivisionError: division by zero)" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # with the traceback
    assert "job tick runs again after 2 failure(s)" in caplog.text
    assert errors.status()["errors"] == 2  # a count since start, for the status


# -- the regulator's and the persister's bodies, on a virtual clock -------------------------


class Recorder:
    """A `Publisher` that keeps what was published, and when on the test's clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str, str]] = []

    def publish(self, topic: str, payload: str, *, retain: bool = False, qos: int = 0) -> None:
        self.sent.append((self.clock(), topic, payload))


def offline_service(tmp_path: Path, clock: FakeClock, **sections: Any) -> tuple[Any, Recorder]:
    from pvopt.service import Service
    from tests.test_service import make_config

    cfg = make_config(tmp_path, 9, **sections)
    svc = Service(cfg, clock=clock)
    rec = Recorder(clock)
    svc.regulator.publisher = rec
    return svc, rec


def test_an_unchanged_command_is_sent_again_every_command_refresh_s(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Guards a gap of item 9: an actuator that missed a command (or rebooted) gets it again
    within `command_refresh_s`, though the setpoint did not change; not more often."""
    svc, rec = offline_service(tmp_path, clock, regulation={"command_refresh_s": 60})
    t0 = clock()
    while clock() <= t0 + 130:
        svc.meter.feed("tic/SINSTS", b"0", clock())
        svc.meter.feed("tic/SINSTI", b"20", clock())  # nothing to take: setpoints stay 0
        svc.tick()
        clock.advance(5)
    sent = [at - t0 for at, topic, _ in rec.sent if topic == "scr/1/in"]
    assert sent == [0, 60, 120]
    svc.store.close()


def test_history_older_than_history_days_is_pruned_once_a_day(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Guards a gap of item 9: the local history keeps `history_days`, pruned at a checkpoint
    at most once a day, so the store does not grow without bound on the Pi's SD card."""
    svc, _ = offline_service(tmp_path, clock, state={"history_days": 2})
    t = int(clock())
    old = [{"end": t - 86400 * d, "grid": {}, "loads": {}} for d in (5, 3, 1)]
    svc.store.save({}, [], intervals=old)

    def kept() -> list[int]:  # the seeded ones (checkpoints add the hours they account)
        return [d["end"] for d in svc.store.intervals(0, until=t)]

    svc.regulator.checkpoint()
    assert kept() == [t - 86400]
    svc.store.save({}, [], intervals=[{"end": t - 86400 * 4, "grid": {}, "loads": {}}])
    clock.advance(3600)
    svc.regulator.checkpoint()  # within the day: no prune
    assert len(kept()) == 2
    clock.advance(86400)
    svc.regulator.checkpoint()
    assert kept() == []  # the one of t − 1 day is 2 days old now too
    svc.store.close()


def test_min_off_s_holds_across_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """Guards item 1: `stop()` set a running relay to 0 W without recording when, so after a
    restart its `min_off_s` counted from its last start and the pump could switch off and on
    again within one restart. Now the stop is a switch like any other."""
    from pvopt.service import Service
    from tests.test_service import make_config

    make_config(tmp_path, 9, regulation={"relay_on_delay_s": 0, "settle_s": 0})
    data = yaml.safe_load((tmp_path / "pvopt.yml").read_text())
    data["equipment"] = [
        {
            "type": "ConstantPowerEquipment",
            "name": "pump",
            "nominal_power": 1000,
            "min_on_s": 60,
            "min_off_s": 600,
        }
    ]
    (tmp_path / "pvopt.yml").write_text(yaml.safe_dump(data))
    cfg = config.load(tmp_path / "pvopt.yml", environ={})

    def run(svc: Service, seconds: float) -> None:
        end = clock() + seconds
        while clock() < end:
            clock.advance(5)
            svc.meter.feed("tic/SINSTS", b"0", clock())
            pump = svc.ctl.machines["pump"].setpoint_w
            svc.meter.feed("tic/SINSTI", str(3000 - pump).encode(), clock())
            svc.tick()

    svc = Service(cfg, clock=clock)
    run(svc, 700)
    assert svc.ctl.machines["pump"].setpoint_w == 1000  # on for longer than min_off_s
    svc.stop()  # 0 W: a switch off
    stopped = clock()
    clock.advance(10)
    svc = Service(cfg, clock=clock)
    run(svc, 300)
    assert svc.ctl.machines["pump"].setpoint_w == 0
    assert svc.ctl.reasons["pump"] == "min_off_hold"
    run(svc, stopped + 600 - clock() + 10)
    assert svc.ctl.machines["pump"].setpoint_w == 1000
    svc.stop()


@pytest.mark.parametrize("step_s", [3600.0, -3600.0])
def test_a_wall_clock_step_credits_no_energy_sheds_nothing_and_keeps_the_open_interval(
    tmp_path: Path, clock: FakeClock, step_s: float
) -> None:
    """Guards item 4: NTP stepping a Pi's clock by an hour credited an hour of energy at the
    loads' power (forward), shed the loads as `meter_stale` (forward) or dropped the open
    interval (backward). Durations and staleness follow the monotonic clock; the energy of a
    tick is what flowed; every Wh the machines count is in the history."""
    from pvopt.service import Service
    from tests.test_service import make_config

    cfg = make_config(tmp_path, 9, regulation={"settle_s": 0})
    clock.set(T0 + 30)
    svc = Service(cfg, clock=clock, monotonic=clock.monotonic)
    heater = svc.ctl.machines["water_heater"]
    intervals: list[dict[str, Any]] = []

    def tick(step: float = 0.0) -> None:
        clock.advance(5)
        clock.set(clock() + step)  # NTP moves the wall clock only
        svc.meter.feed("tic/SINSTS", b"0", clock())
        svc.meter.feed("tic/SINSTI", str(2000 - heater.setpoint_w + 100).encode(), clock())
        svc.tick()

    for _ in range(6):
        tick()
    assert heater.setpoint_w > 1500
    svc.regulator.checkpoint()
    intervals += svc.store.intervals(0)
    before_wh, records = heater.energy_total_wh, len(svc.store.transitions())
    power = heater.setpoint_w
    svc.meter.feed("tic/SINSTS", b"0", clock())  # the last sample before the step
    tick(step=step_s)  # NTP steps the clock between two ticks 5 s apart
    assert heater.energy_total_wh - before_wh == pytest.approx(power * 5 / 3600, rel=0.01)
    assert svc.ctl.reasons["water_heater"] == "surplus"  # not shed, not settling
    for _ in range(3):
        tick()
    svc.stop()
    assert len(svc.store.transitions()) == records  # no transition of its own
    stored = {d["end"]: d for d in svc.store.intervals(0)}
    history_wh = sum(d["loads"]["water_heater"]["energy_wh"] for d in stored.values())
    assert history_wh == pytest.approx(heater.energy_total_wh, abs=0.01)  # nothing lost


def test_realign_puts_the_jobs_back_on_the_wall_clock_after_a_step_back() -> None:
    """Guards item 4: APScheduler 3 waits for wall-clock run times, so after the clock stepped
    back an hour the heartbeat and the checkpoint would wait an hour. `realign` brings them
    back within one period of the new time."""
    from datetime import datetime, timedelta

    from jobs.scheduling import CHECKPOINT_JOB, TICK_JOB, add_regulation_jobs, realign

    tz = ZoneInfo("Europe/Paris")
    scheduler = make_scheduler(tz)
    add_regulation_jobs(scheduler, lambda: None, lambda: None, 5, 60)
    scheduler.start(paused=True)
    try:
        ahead = datetime.now(tz) + timedelta(hours=1)  # what a step back leaves
        for job_id in (TICK_JOB, CHECKPOINT_JOB):
            scheduler.modify_job(job_id, next_run_time=ahead)
        realign(scheduler, 5, 60)
        now = datetime.now(tz)
        tick = scheduler.get_job(TICK_JOB).next_run_time
        checkpoint = scheduler.get_job(CHECKPOINT_JOB).next_run_time
        assert now < tick <= now + timedelta(seconds=5.5)
        assert now < checkpoint <= now + timedelta(seconds=61.5)
        assert checkpoint.timestamp() % 60 == pytest.approx(1.0)  # UTC-aligned, plus the lag
    finally:
        scheduler.shutdown(wait=False)


def test_a_failing_job_on_the_io_worker_is_counted_too(caplog: pytest.LogCaptureFixture) -> None:
    """Guards item 8 for every executor: the InfluxDB flush runs on the `io` worker; its
    failure is logged once with the job's name and counted like the regulator's."""
    errors = JobErrors()
    scheduler = make_scheduler(ZoneInfo("Europe/Paris"))
    errors.install(scheduler, EXECUTORS)
    events = JobEvents()
    scheduler.add_listener(events, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)

    def flush() -> None:
        raise ConnectionError("influxd gone")

    scheduler.start()
    try:
        scheduler.add_job(flush, id="influx", executor="io")
        assert events.wait(lambda: errors.status()["errors"] == 1)
    finally:
        scheduler.shutdown(wait=True)
    assert errors.status()["failing"] == {"influx": "ConnectionError: influxd gone"}
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(" (")[0] for r in failures] == ["job influx failed"]
