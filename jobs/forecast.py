"""Keeping the solar forecast: one fetch per run, a bounded exponential back-off after a
failure, the last good forecast kept in the store, and whether it is fresh, stale or absent
for the planner (docs/forecast.md).

A run never sleeps: it sets `next_at`, and `tick(now)` (an APScheduler interval job of a
minute or so) fetches only once that time has come; so a source that is down holds no worker
while it backs off, and tests move a virtual clock. Only `fetch_now` (the CLI's `--fetch`)
waits between its few attempts, through the `sleep` it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from jobs.ports import Clock, ForecastSource
from machines.errors import ForecastError, ForecastRateLimited, StoreError
from machines.forecast import Forecast, ForecastStatus, assess
from machines.value import value
from state.store import StateStore

log = logging.getLogger("pvopt.jobs.forecast")


@value
class Backoff:
    """How long to wait after the n-th failure in a row: `first_s`, doubling, at most `max_s`
    (and never longer than the regular period: a retry is never later than the next fetch)."""

    first_s: float = 60.0
    factor: float = 2.0
    max_s: float = 900.0

    def delay_s(self, failures: int) -> float:
        return min(self.max_s, self.first_s * self.factor ** max(0, failures - 1))


class ForecastKeeper:
    """The forecast in use: the source's last good one, from the store at start, replaced by
    every good fetch. A failed or malformed fetch caches nothing and keeps the last good one,
    which ages until it is stale."""

    def __init__(
        self,
        source: ForecastSource,
        store: StateStore,
        *,
        every_s: float,
        max_age_s: float,
        backoff: Backoff | None = None,
    ):
        self.source = source
        self.store = store
        self.every_s = every_s
        self.max_age_s = max_age_s
        self.backoff = backoff or Backoff()
        kept = store.load_forecast(source.name)
        self.forecast: Forecast | None = kept[0] if kept else None
        self.fetched_at: float | None = kept[1] if kept else None
        self.failures = 0  # in a row, since the last good fetch
        self.last_error: str | None = None
        self.retryable = True  # whether the last failure may go away with a retry soon
        self.next_at: float | None = None  # None: fetch at once

    def due(self, now: float) -> bool:
        return self.next_at is None or now >= self.next_at

    def tick(self, now: float) -> ForecastStatus:
        """The scheduled job's body: fetch when due, else only say the status."""
        return self.run(now) if self.due(now) else self.status(now)

    def run(self, now: float) -> ForecastStatus:
        """One fetch; schedules the next one (`next_at`) and returns the status."""
        try:
            fresh = self.source.fetch(now)
        except ForecastRateLimited as exc:
            # asking again before the limit resets only extends it
            self._failed(now, exc, max(self.every_s, exc.retry_after_s or 0.0), retryable=False)
        except ForecastError as exc:
            # the source down, or a malformed answer (perhaps a glitch): back off, then retry
            delay = min(self.every_s, self.backoff.delay_s(self.failures + 1))
            self._failed(now, exc, delay, retryable=True)
        else:
            self._keep(fresh, now)
        return self.status(now)

    def _failed(self, now: float, exc: ForecastError, delay_s: float, *, retryable: bool) -> None:
        self.failures += 1
        self.last_error = str(exc)
        self.retryable = retryable
        self.next_at = now + delay_s
        log.warning("forecast fetch %d failed, next in %.0f s: %s", self.failures, delay_s, exc)

    def _keep(self, fresh: Forecast, now: float) -> None:
        self.failures = 0
        self.last_error = None
        self.retryable = True
        self.next_at = now + self.every_s
        if self.forecast is not None and fresh.issued_at < self.forecast.issued_at:
            log.warning(
                "forecast from %s issued before the one kept: the kept one stays", fresh.source
            )
            return
        self.forecast, self.fetched_at = fresh, now
        try:
            self.store.save_forecast(fresh, now)
        except StoreError as exc:  # used from memory; the next good fetch tries the store again
            log.warning("forecast not stored: %s", exc)

    def status(self, now: float) -> ForecastStatus:
        """Fresh, stale or absent, with the reason (the planner falls back unless fresh)."""
        return assess(self.forecast, now, self.max_age_s, self.last_error)

    def fetch_now(
        self, clock: Clock, sleep: Callable[[float], None], attempts: int = 3
    ) -> ForecastStatus:
        """Fetch at once, retrying up to `attempts` times after the back-off: for a command
        that waits for the answer (`pvopt forecast --fetch`), never for the service."""
        status = self.run(clock())
        for _ in range(attempts - 1):
            if self.failures == 0 or not self.retryable or self.next_at is None:
                break
            sleep(max(0.0, self.next_at - clock()))
            status = self.run(clock())
        return status
