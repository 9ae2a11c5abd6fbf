"""The scheduler's error listener: an exception in a job is logged with the job's name and
counted in the status, and the job runs again at its next time, so a bug or a full disk shows
instead of silently stopping the regulation."""

from __future__ import annotations

import logging
import threading
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger("pvopt.jobs")


class _ListenerReports(logging.Filter):
    """Drops APScheduler's own "Job … raised an exception" record: the listener logs each
    failure once, with the job's name, and says when the job recovers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and "raised an exception" in str(record.msg))


_FILTER = _ListenerReports()


class JobErrors:
    """Counts failed job runs; logs the first of a run of identical failures with its
    traceback (a tick failing every 5 s would flood the log otherwise) and the recovery."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the regulator's and the io worker both report
        self.errors = 0
        self.failing: dict[str, str] = {}  # job id -> its last error, while it keeps failing
        self._repeats: dict[str, int] = {}

    def install(self, scheduler: BaseScheduler, executors: tuple[str, ...]) -> None:
        """Listen to `scheduler`; silence its `executors`' duplicate of our error log."""
        scheduler.add_listener(self.on_event, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
        for alias in executors:
            logger = logging.getLogger(f"apscheduler.executors.{alias}")
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)

    def on_event(self, event: JobExecutionEvent) -> None:
        job = event.job_id
        if event.exception is None:
            with self._lock:
                error = self.failing.pop(job, None)
                repeats = self._repeats.pop(job, 0)
            if error is not None:
                log.info("job %s runs again after %d failure(s) (%s)", job, repeats, error)
            return
        error = f"{type(event.exception).__name__}: {str(event.exception)[:200]}"
        with self._lock:
            self.errors += 1
            first = self.failing.get(job) != error
            self.failing[job] = error
            self._repeats[job] = self._repeats.get(job, 0) + 1
        if first:
            exc = event.exception
            log.error(
                "job %s failed (%s); it runs again at its next time",
                job,
                error,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        else:
            log.debug("job %s failed again: %s", job, error)

    def status(self) -> dict[str, Any]:
        """`jobs` in the status document: failed runs since start, and the jobs failing now."""
        with self._lock:
            return {"errors": self.errors, "failing": dict(self.failing)}
