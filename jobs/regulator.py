"""The regulator's worker: every job that touches the controller or the store runs here, on
APScheduler's single `default` thread, so the core stays single-threaded and deterministic.

paho's thread only validates: meter values go to the thread-safe `MeterCache`, temperatures and
manual commands to this worker's inbox, drained at the start of every tick and checkpoint, and
at once by the `inputs` job a command schedules.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import date, datetime
from typing import Any

from jobs.errors import JobErrors
from jobs.influx import Outbox
from jobs.meter_cache import MeterCache
from jobs.persist import Persister
from jobs.ports import Clock, Publisher
from machines.commands import AnyCommand, Outcome, apply
from machines.controller import Controller, UnknownLoad
from machines.device import MAX_RESENDS, RETRY_S
from machines.loads import CommandError
from machines.model import DeviceReport
from machines.status import build_status, event_json, local_iso
from machines.tariff import Tariff, day_bounds, money
from machines.totals import annotate
from machines.value import value
from machines.wiring import LoadWiring, plan_topic, status_topic

log = logging.getLogger("pvopt.regulator")

CLOCK_STEP_S = 2.0  # wall minus monotonic drift beyond this between two looks is a step


@value
class TempoColours:
    """Tempo days and their colours, as the meter announced them."""

    days: dict[date, str]


@value
class Temperature:
    """A validated probe reading, with its arrival time (its age counts from then)."""

    load: str
    value_c: float
    at: float


@value
class DeviceInput:
    """What a load's device reported (state, power, availability), with its arrival time."""

    load: str
    report: DeviceReport
    at: float


@value
class Control:
    """A well-formed manual command; whether the load exists or accepts it is the
    controller's to say, on the worker."""

    cmd: AnyCommand
    source: str  # the topic it came on, for the log
    reply: Future[Outcome] | None = None  # who waits for the verdict (the page), if anyone


@value
class Reconnected:
    """The broker may have lost the actuators' retained commands: send every one again."""


Input = Temperature | DeviceInput | TempoColours | Control | Reconnected


class Regulator:
    """The job bodies of the regulation: tick, checkpoint and the last word at shutdown."""

    def __init__(
        self,
        ctl: Controller,
        meter: MeterCache,
        wires: Sequence[LoadWiring],
        persister: Persister,
        publisher: Publisher,
        clock: Clock,
        *,
        policy: str,
        dry_run: bool,
        command_refresh_s: float,
        errors: JobErrors,
        outbox: Outbox | None = None,
        monotonic: Clock | None = None,
        connected: Callable[[], bool] = lambda: True,
        tariff: Tariff | None = None,
    ):
        self.ctl = ctl
        self.meter = meter
        self.wires = {w.spec.name: w for w in wires}
        self.persister = persister
        self.publisher = publisher
        self.clock = clock
        self.monotonic = monotonic
        self._clocks: tuple[float, float] | None = None  # (wall, monotonic) at the last look
        self.clock_steps = 0
        self.policy = policy
        self.dry_run = dry_run
        self.command_refresh_s = command_refresh_s
        self.errors = errors
        self.outbox = outbox
        self.connected = connected  # the broker link, for the status
        self.tariff = tariff  # prices the day in the status (docs/tariff.md)
        self.colours: dict[date, str] = {}  # Tempo colours the meter announced
        self._money: tuple[tuple[date, int, int], dict[str, Any]] | None = None
        self.sign_told: str | None = None  # the battery sign's verdict last logged
        # who else wants each status document (the local page); called on the worker, must not block
        self.status_listeners: list[Callable[[dict[str, Any]], None]] = []
        # held by every job body: start/stop run on the main thread, tests read under it
        self.lock = threading.RLock()
        self.inbox: queue.SimpleQueue[Input] = queue.SimpleQueue()
        self.sent: dict[str, tuple[str, float]] = {}  # load -> (payload, when) last published
        self.plan_sent = 0  # the planner's plan_version last published
        self.ticks = 0
        self.not_following: set[str] = set()  # loads whose device was logged as not following
        # a dry run's energy is what it would have drawn: kept apart from the stored counters
        self.dry_baseline = (
            {n: (m.day_index, m.energy_today_wh) for n, m in ctl.machines.items()}
            if dry_run
            else None
        )

    # -- inputs (any thread) ------------------------------------------------------------------
    def post(self, item: Input) -> None:
        """Queue `item` for the next tick (the caller kicks one when it should not wait)."""
        self.inbox.put(item)

    # -- jobs (the worker thread) -------------------------------------------------------------
    def tick(self) -> None:
        """One decision: inputs, schedules, machines, policy; then commands, status and the
        store. Before the first meter value the surplus loads stay at 0 W; forced loads run."""
        with self.lock:
            now = self.now()
            self._drain(now)
            self._decide(now)

    def apply_inputs(self) -> None:
        """What paho queued, now; a command the controller took brings a decision at once
        (the CLI waits for the status to show it), a refused one changes nothing."""
        with self.lock:
            now = self.now()
            if self._drain(now):
                self._decide(now)

    def _decide(self, now: float) -> None:
        """Decide on the meter at `now`; publish and commit (the caller holds the lock)."""
        snap = self.meter.snapshot(now)
        result = self.ctl.tick(now, snap, offpeak=self.meter.offpeak(now))
        self.ticks += 1
        events = self.persister.planner.drain_events()
        for e in events:
            doc = event_json(e, self.ctl.tz)
            extra = {k: v for k, v in doc.items() if k not in ("name", "load", "event", "at")}
            log.info("schedule %s (%s): %s at %s %s", e.name, e.load, e.event, doc["at"], extra)
        for r in result.records:
            log.info("%s: %s → %s (%s, %s)", r.load, r.source, r.dest, r.trigger, r.reason)
        if result.changed:
            log.info(
                "grid %s W: %s",
                "?" if snap.grid_w is None else f"{snap.grid_w:+.0f}",
                ", ".join(
                    f"{n} {p:.0f} W ({result.reasons[n]})" for n, p in result.power_w.items()
                ),
            )
        self._tell_battery_sign()
        self.persister.persist(result.records, now, write=bool(events))
        self.send_commands(now)
        self.publish_status(now)
        planner = self.persister.planner
        if planner.plan_version != self.plan_sent:
            self.plan_sent = planner.plan_version
            doc = planner.plan_doc(self.ctl.tz)
            self.publisher.publish(plan_topic(self.dry_run), json.dumps(doc), retain=True)

    def checkpoint(self) -> None:
        """Energy counters, setpoints, temperatures and the intervals that ended, with the
        outbox's progress: one write per `checkpoint_s`."""
        with self.lock:
            now = self.now()
            if self._drain(now):  # the interval's temperatures as they arrived
                self._decide(now)  # a command taken here: its `inputs` run finds nothing
            self.persister.checkpoint(now)

    def resend(self) -> None:
        """Send every load's command: after a restore the machines' `on_enter_*` did not fire."""
        with self.lock:
            self.send_commands(self.now(), force=True)

    def shutdown(self) -> None:
        """Loads on surplus go to 0 W; forced loads keep their command; state is kept.
        Runs after the scheduler stopped, so no job runs meanwhile."""
        with self.lock:
            now = self.now()
            try:
                self._drain(now)
                self.ctl.account(now)  # energy up to now, at the setpoints that were in force
                self.ctl.stop_surplus_loads(now)
                self.send_commands(now, force=True)
            finally:  # whatever failed above, the state is saved
                # the open interval so far, for the local history; marked open, the outbox
                # keeps it until a restart completes it (the same `end` then replaces it)
                self.ctl.intervals.extend({**d, "open": True} for d in self.persister.ledger.peek())
                self.persister.persist(self.ctl.drain_records(), now, checkpoint=True)

    def now(self) -> float:
        """The wall clock, after moving the core's duration anchors by any step it made since
        the last look (the monotonic clock tells); the caller holds the lock."""
        wall = self.clock()
        if self.monotonic is None:
            return wall
        mono = self.monotonic()
        if self._clocks is not None:
            step = (wall - self._clocks[0]) - (mono - self._clocks[1])
            if abs(step) > CLOCK_STEP_S:
                self.clock_steps += 1
                log.warning(
                    "the wall clock stepped %+.0f s (NTP?): durations, staleness and energy "
                    "follow the monotonic clock, schedules and days the new time",
                    step,
                )
                self.ctl.clock_stepped(step)
        self._clocks = (wall, mono)
        return wall

    def check_clock(self) -> bool:
        """Look for a wall-clock step now (the clock watch's body); True when there was one."""
        with self.lock:
            steps = self.clock_steps
            self.now()
            return self.clock_steps != steps

    def _drain(self, now: float) -> bool:
        """Apply what paho's thread queued, in arrival order; commit applied commands at once.
        True when a command was applied."""
        commanded = False
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Temperature):
                self.ctl.machines[item.load].set_temperature(item.value_c, item.at)
            elif isinstance(item, DeviceInput):
                self.ctl.machines[item.load].device.observe(item.report, item.at)
            elif isinstance(item, TempoColours):
                self.colours.update(item.days)
                heat = self.persister.planner.heat
                if heat is not None:
                    heat.learn_colours(item.days)
            elif isinstance(item, Control):
                commanded |= self._command(item, now)
            else:
                self.sent.clear()
        if commanded:
            self.persister.persist(self.ctl.drain_records(), now, write=True)
        return commanded

    def _command(self, item: Control, now: float) -> bool:
        stale = self.meter.snapshot(now).stale
        try:
            done = apply(self.ctl, item.cmd, now, meter_stale=stale)
        except (UnknownLoad, CommandError) as exc:
            log.warning("refused command from %s: %s", item.source, exc)
            if item.reply is not None:
                item.reply.set_result(Outcome(False, str(exc)))
            return False
        log.info("command from %s: %s", item.source, done)
        if item.reply is not None:
            item.reply.set_result(Outcome(True, done))
        return True

    # -- outputs ------------------------------------------------------------------------------
    def send_commands(self, now: float, *, force: bool = False) -> None:
        """Publish each load's command when it changed, every `command_refresh_s`, or when its
        device's state disagrees with it (machines/device.py)."""
        for name, w in self.wires.items():
            m = self.ctl.machines[name]
            payload = w.payload(m.setpoint_w)
            last = self.sent.get(name)
            fresh = last is not None and now - last[1] < self.command_refresh_s
            disobeys = m.device.resend_due(m.setpoint_w > 0, now)
            self._tell_not_following(name, m.device.not_following_since is not None)
            if disobeys:
                log.info("%s: its device reports otherwise, command sent again", name)
            elif not force and last is not None and last[0] == payload and fresh:
                continue
            self.sent[name] = (payload, now)
            if not self.dry_run:
                self.publisher.publish(w.command_topic, payload, retain=w.retain)

    def _tell_not_following(self, name: str, now_not_following: bool) -> None:
        """Log once when a load is left out for not following, once when it is back."""
        if now_not_following and name not in self.not_following:
            self.not_following.add(name)
            log.warning(
                "%s: its device does not follow its commands after %d resends: left out "
                "(tried again in %.0f min; docs/devices.md)",
                name,
                MAX_RESENDS,
                RETRY_S / 60,
            )
        elif not now_not_following and name in self.not_following:
            self.not_following.discard(name)
            log.info("%s: its device is tried again", name)

    def status(self, now: float) -> dict[str, Any]:
        """The document of docs/topics.md plus the store, outbox, meter and job counters."""
        doc = build_status(
            self.ctl,
            self.ctl.last_snapshot,
            self.meter.age_s(now),
            now,
            policy=self.policy,
            dry_run=self.dry_run,
            dry_run_baseline=self.dry_baseline,
        )
        doc["store_writes"] = self.persister.store.writes
        doc["store"] = self.persister.status()
        if self.outbox is not None:
            doc["influxdb"] = self.outbox.status()
            backlog = self.persister.committed_until - self.outbox.sent_until
            doc["influxdb"]["backlog_s"] = max(0, backlog)
        doc["meter"]["rejected"] = self.meter.rejected
        snap = self.ctl.last_snapshot
        doc["meter"]["pv_w"] = None if snap is None or snap.pv_w is None else round(snap.pv_w)
        if self.ctl.battery is not None:  # as pvopt reads it (+ charging), and its mode
            power = None if snap is None else snap.battery_w
            soc = None if snap is None else snap.battery_soc
            doc["battery"] = {
                "power_w": None if power is None else round(power),
                "soc": None if soc is None else round(soc, 1),
                "mode": self.ctl.battery.mode.value,
                # pvopt's steps against the reading's sign: ok, inverted, null (not yet judged)
                "sign": self.ctl.battery_sign.verdict,
            }
        if self.tariff is not None:
            doc["money"] = self.money_today(now)
        doc["mqtt"] = {"connected": self.connected()}
        doc["jobs"] = self.errors.status()
        annotate(doc, self.persister.totals.shown)
        return doc

    def _tell_battery_sign(self) -> None:
        """Say once what pvopt's own steps tell of the battery reading's sign."""
        verdict = self.ctl.battery_sign.verdict
        if verdict is None or verdict == self.sign_told:
            return
        self.sign_told = verdict
        if verdict == "ok":
            log.info("battery: its reading answers pvopt's steps with the configured sign")
            return
        log.warning(
            "battery: its reading rises when pvopt's loads start (%d of %d steps): its sign looks "
            "inverted; flip `battery.charge_positive` (docs/battery.md#signs), else pvopt takes "
            "a discharge for a charge",
            self.ctl.battery_sign.disagree,
            self.ctl.battery_sign.disagree + self.ctl.battery_sign.agree,
        )

    def money_today(self, now: float) -> dict[str, Any]:
        """Today's bill and what the loads' solar saved, priced over the intervals committed
        since local midnight (docs/tariff.md); read again from the store only when one more
        interval was committed, not at every status."""
        assert self.tariff is not None
        tz = self.ctl.tz
        day = datetime.fromtimestamp(now, tz).date()
        key = (day, self.persister.committed_until, len(self.colours))
        if self._money is None or self._money[0] != key:
            start, end = day_bounds(day, tz)
            names = list(self.ctl.machines)  # priority order: the first loads take the surplus
            found = self.persister.store.intervals(start, until=end)
            priced = money(found, names, self.tariff, tz, colour_of=self.colours.get)
            loads = priced["loads"]
            self._money = (
                key,
                {
                    "day": day.isoformat(),
                    "since": local_iso(start, tz),  # the figures' last reset, for Home Assistant
                    "cost_eur": priced["cost_eur"],
                    "import_eur": priced["import_eur"],
                    "export_eur": priced["export_eur"],
                    "saved_eur": round(sum(v["solar_eur"] for v in loads.values()), 3),
                    "loads": {n: {"saved_eur": v["solar_eur"]} for n, v in loads.items()},
                },
            )
        return self._money[1]

    def publish_status(self, now: float) -> None:
        doc = self.status(now)
        self.publisher.publish(status_topic(self.dry_run), json.dumps(doc), retain=True)
        for listener in self.status_listeners:
            listener(doc)
