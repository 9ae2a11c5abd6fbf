"""The scheduler's error listener against a real APScheduler: one log per run of identical
failures, with the job's name; counted; the job keeps its schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

from jobs.errors import JobErrors
from jobs.regulation import EXECUTORS, make_scheduler


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
