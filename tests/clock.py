"""A virtual clock for the code that takes one (`jobs.ports.Clock`), which only the test
moves; and the one way tests wait on the real clock, a poll with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

T0 = 1_781_510_400.0  # 2026-06-15 10:00 Paris (08:00 UTC)


class FakeClock:
    """Wall and monotonic time that stand still until the test moves them.

    Call it for the wall clock (epoch seconds, what `Service(clock=...)` and `Outbox` take);
    `monotonic` is its twin for the code that measures durations (`Service(monotonic=...)`,
    the web `Guard`). `advance` is time passing, both move; `set` is the wall clock being set
    (a start time, or an NTP step), the monotonic one does not move, as on a real machine.
    """

    def __init__(self, start: float = T0, monotonic: float = 1000.0) -> None:
        self.now = start
        self.mono = monotonic

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> float:
        """Let `seconds` pass on both clocks; the new wall time."""
        if seconds < 0:  # time passing never goes back: a step back is `set`
            raise ValueError(f"advance by {seconds} s: use set() to step the wall clock back")
        self.now += seconds
        self.mono += seconds
        return self.now

    def set(self, t: float) -> float:
        """Set the wall clock to `t` (epoch seconds); the monotonic clock keeps its reading."""
        self.now = t
        return self.now


def wait_until(predicate: Callable[[], object], timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll `predicate` on the real clock until it holds or `timeout_s` passed; whether it
    held. For threads and servers the test does not drive: never a bare sleep that hopes."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)  # a poll interval, not a wait standing in for the condition
    return True
