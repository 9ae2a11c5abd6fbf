"""A load whose own thermostat (or timer) cut it while pvopt still commands it (docs/devices.md):
the heater without a probe that pvopt held at full command, counting energy it never drew, while
the surplus it could not take went out and a closing thermostat drew full power from the grid.

The evidence is the device's own power reading (near zero while commanded, `CONFIRM_S` long), or,
for a dimmer with neither a reading nor a probe, the grid: a step of the command it does not answer
once settled, or a fall of the grid by about the load's command while the commands held (a
thermostat that opens; a dimmer's moves below `QUIET_W` in all do not hide it); steps within the
grid's noise say nothing. A cut load is OFF with reason `thermostat_cut`: command 0, no energy
counted, its share to the loads behind. The fall of its command is judged too: a load cut by mistake
(the grid answers the fall) is back at the next sample, and one the grid confirmed is probed a first
time soon (clouds fool both tests). Then it is probed at a bounded rate: back in the running for
`PROBE_S`, and a probe that draws (a reading, or a step the grid answers) brings it back. Pure:
commands, readings, meter samples and `now` come in; nothing is persisted (a restart finds a cut
again in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from machines.value import value

LOW_W = 50.0  # a reading below this (or LOW_SHARE of the command) is "draws nothing"
LOW_SHARE = 0.1
COMMAND_MIN_W = 200.0  # a smaller command says too little to judge the reading by
CONFIRM_S = 30.0  # a reading stays low this long before the load counts as cut
STEP_MIN_W = 300.0  # steps smaller than this drown in the household's own noise
NOISE_FACTOR = 4.0  # ... and steps within this many times the grid's noise (clouds, appliances)
SETTLE_S = 1.5  # the first meter sample this long after a step judges it (the policy's settle)
ANSWERED = 0.5  # the grid moved by at least this share of the step: the load draws
MISSED = 0.25  # ... by less than this: a miss
MISSES = 1  # misses before a load counts as cut: the fall of its command then confirms it
DROP_MATCH = 0.3  # a fall of the grid within this share of a load's command is its cut
QUIET_W = DROP_MATCH * STEP_MIN_W  # commands moving less than this in all leave a fall readable
PROBE_S = 60.0  # a probe: long enough to raise the command and read the answer
FIRST_PROBE_S = 120.0  # after a cut the grid confirmed: clouds may have fooled both tests
PROBES_PER_HOUR = 4.0  # the default rate (`thermostat_probes_per_hour`, 0: never judged)


@dataclass(slots=True)
class ThermostatWatch:
    """One load's evidence that it draws what it is told, and its cut / probe cycle."""

    probes_per_hour: float = PROBES_PER_HOUR
    cut_since: float | None = None
    verifying: bool = False  # cut on the grid's word: the fall of its command must confirm it
    low_since: float | None = None  # a low reading while commanded, since
    misses: int = 0  # rises the grid did not answer, in a row
    probe_until: float | None = None
    next_probe_at: float = 0.0
    probes: int = 0  # probes started (the simulator's KPI)

    @property
    def enabled(self) -> bool:
        return self.probes_per_hour > 0

    @property
    def is_cut(self) -> bool:
        return self.cut_since is not None

    def _cut(self, now: float, verify: bool = False) -> None:
        self.cut_since, self.probe_until, self.verifying = now, None, verify
        self.next_probe_at = now + 3600.0 / self.probes_per_hour
        self.low_since, self.misses = None, 0

    def _draws(self) -> None:
        self.cut_since = self.probe_until = self.low_since = None
        self.verifying = False
        self.misses = 0

    def clear(self) -> None:
        """Start over (a boost was asked for): not cut, no evidence held."""
        self._draws()

    def reading(self, setpoint_w: float, measured_w: float | None, now: float) -> None:
        """The device's fresh power reading (None: none) against the command it runs on."""
        if not self.enabled or measured_w is None or setpoint_w < COMMAND_MIN_W:
            self.low_since = None
            return
        if measured_w >= max(LOW_W, LOW_SHARE * setpoint_w):
            if self.cut_since is not None:
                self._draws()
            self.low_since, self.misses = None, 0
            return
        if self.low_since is None:
            self.low_since = now
        elif self.cut_since is None and now - self.low_since >= CONFIRM_S:
            self._cut(now)

    def answered(self) -> None:
        """The grid answered a step of its command: it draws."""
        if self.cut_since is not None:
            self._draws()
        self.misses = 0

    def missed(self, now: float) -> None:
        """The grid did not answer a step of its command (on a probe: the probe is over; the
        fall of a cut being verified: confirmed)."""
        self.misses += 1
        if self.verifying:
            self.verifying = False
            self.next_probe_at = min(self.next_probe_at, now + FIRST_PROBE_S)
        elif self.probe_until is not None:
            self._cut(now)
        elif self.cut_since is None and self.misses >= MISSES:
            self._cut(now, verify=True)

    def dropped(self, now: float) -> None:
        """The grid fell by about this load's command while the commands held: cut it (the
        fall of its command then says whether it was drawing)."""
        if self.enabled and self.cut_since is None:
            self._cut(now, verify=True)

    def holds(self, now: float) -> bool:
        """Whether the load stays out as cut at `now`: False on a probe (which starts when one
        is due and ends after `PROBE_S` without the load drawing)."""
        if self.cut_since is None:
            return False
        if self.probe_until is not None:
            if now < self.probe_until:
                return False
            self._cut(now)  # the probe drew nothing: the next one in an interval
            return True
        if now >= self.next_probe_at:
            self.probe_until = now + PROBE_S
            self.probes += 1
            return False
        return True


@value
class Steps:
    """The commands that moved in one decision (by at least `STEP_MIN_W`, loads without a
    reading), with the grid then: the first settled sample after `at` judges them."""

    at: float
    grid_w: float
    steps: dict[str, float]  # every load's step, the small ones too (they move the grid)
    judged: tuple[str, ...]  # the loads it may judge: watched, without a reading, a big step

    def judge(self, grid_w: float) -> tuple[list[str], str | None]:
        """(the loads the grid answered, the one it did not): all answered when the grid moved
        by about the sum of the steps; else the one load whose step left out explains it."""
        observed = grid_w - self.grid_w
        expected = sum(self.steps.values())
        judged = self.judged
        smallest = min(abs(self.steps[name]) for name in judged)
        if abs(observed - expected) <= (1.0 - ANSWERED) * smallest:
            return list(judged), None
        best = min(judged, key=lambda name: abs(observed - expected + self.steps[name]))
        if abs(observed - expected + self.steps[best]) < MISSED * abs(self.steps[best]):
            return [], best
        return [], None  # the household moved too: no verdict
