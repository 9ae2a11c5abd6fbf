"""What a load's device said about itself (docs/devices.md): whether it is online, whether it
follows its commands, and what it measures. Pure: reports and `now` come in, verdicts go out.

The machine reads the verdicts in its `TICK` rows (`device_offline`, `device_not_following`);
the regulator asks `resend_due()` before it publishes; energy is counted on `drawn_w()`.
Nothing here is persisted: devices re-announce themselves (retained LWT, online, status) after
a restart, and until they do pvopt drives them on its commands, as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass

from machines.model import DeviceReport

MEASURED_FRESH_S = 60.0  # a power report older than this no longer says what the load draws
OBEY_S = 10.0  # a state report may lag a command by this much before it counts as disobeying
MAX_RESENDS = 3  # resends before the load is left out as `device_not_following`
RETRY_S = 900.0  # a load left out for not following is tried again after this


@dataclass(slots=True)
class DeviceHealth:
    online: bool | None = None  # None: the device never said (or cannot)
    measured_w: float | None = None
    measured_at: float | None = None
    reported_on: bool | None = None
    disagree_since: float | None = None
    resends: int = 0
    not_following_since: float | None = None

    def observe(self, report: DeviceReport, now: float) -> None:
        """Take in one report; a device that comes back online gets a clean slate."""
        if report.online is not None:
            if report.online and self.online is False:
                self.not_following_since = None
                self.disagree_since, self.resends = None, 0
            self.online = report.online
            if not report.online:
                self.measured_w = self.measured_at = None
        if report.power_w is not None:
            self.measured_w, self.measured_at = report.power_w, now
        if report.on is not None:
            self.reported_on = report.on

    @property
    def offline(self) -> bool:
        return self.online is False

    def not_following(self, now: float) -> bool:
        """Left out for not obeying, until `RETRY_S` passed (then it is tried again)."""
        since = self.not_following_since
        if since is not None and now - since >= RETRY_S:
            self.not_following_since = None
            self.disagree_since, self.resends = None, 0
            self.reported_on = None  # its next report says whether it follows now
        return self.not_following_since is not None

    def measured(self, now: float) -> float | None:
        """The device's own power reading, while fresh."""
        at = self.measured_at
        return self.measured_w if at is not None and now - at <= MEASURED_FRESH_S else None

    def energy_from(self, now: float) -> str:
        """What `drawn_w` counts on now: `offline` (nothing), `measured` or `commanded`."""
        if self.online is False:
            return "offline"
        return "commanded" if self.measured(now) is None else "measured"

    def drawn_w(self, setpoint_w: float, now: float) -> float:
        """What the load draws as far as pvopt knows: nothing offline, else the device's
        fresh measurement, else its command."""
        if self.online is False:
            return 0.0
        measured = self.measured(now)
        return setpoint_w if measured is None else measured

    def resend_due(self, commanded_on: bool, now: float) -> bool:
        """True once per `OBEY_S` while the device's state disagrees with its command; after
        `MAX_RESENDS` it is marked not following instead."""
        if self.reported_on is None or self.online is False or self.not_following_since:
            self.disagree_since = None
            return False
        if self.reported_on == commanded_on:
            self.disagree_since, self.resends = None, 0
            return False
        if self.disagree_since is None:
            self.disagree_since = now
            return False
        if now - self.disagree_since < OBEY_S * (self.resends + 1):
            return False
        if self.resends >= MAX_RESENDS:
            self.not_following_since = now
            return False
        self.resends += 1
        return True
