"""`pvopt run`: the imperative shell around the pure core (DESIGN §2–8).

paho's network thread feeds the meter cache and applies commands; APScheduler runs the
regulator tick (every `tick_s`, and at once when a fresh meter value arrives) and the state
checkpoint in one worker thread. One lock guards the controller, so the core stays
single-threaded and deterministic.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import regulation as jobs
from jobs.regulation import add_regulation_jobs, make_scheduler
from jobs.schedules import add_schedule_job
from machines.controller import Controller, UnknownLoad
from machines.loads import CommandError
from machines.meter import MeterValueError, parse_number
from machines.model import MeterSnapshot
from machines.schedules import Planner
from pvopt.bus import MqttBus
from pvopt.commands import Command, apply, parse_control_json, parse_seed_control
from pvopt.config import Config
from pvopt.meter_cache import MeterCache
from pvopt.status import build_status, event_json, local_iso
from pvopt.topics import CONTROL_TOPIC, ONLINE_TOPIC, STATUS_TOPIC, LoadWiring, wiring
from state.store import MemoryStore, SqliteStore, StateStore

log = logging.getLogger("pvopt")

SEED_CONTROL_TOPICS = "scr/+/control"  # one wildcard, so unknown ids are seen and refused
SEED_CONTROL = re.compile(r"scr/(\d+)/control")
KICK_DELAY_S = 0.1  # a Linky sends SINSTS and SINSTI a few ms apart: decide on the pair
Clock = Callable[[], float]


class Service:
    """One site: meter cache, controller, store, MQTT bus and the scheduler's jobs."""

    def __init__(self, cfg: Config, *, dry_run: bool = False, clock: Clock = time.time):
        self.cfg = cfg
        self.dry_run = dry_run
        self.clock = clock
        self.tz = cfg.site.tz
        self.policy = cfg.regulation.policy
        self.wires: dict[str, LoadWiring] = {w.spec.name: w for w in wiring(cfg)}
        self.store, saved, saved_planner = _open_store(cfg.state.path, dry_run)
        now = clock()
        self.planner = Planner(
            cfg.schedule_list(),
            self.tz,
            seed_rule=self.policy == "legacy",
            tank_litres=cfg.tank_litres(),
            saved=saved_planner,
        )
        self.ctl = Controller(
            cfg.specs(), self.tz, cfg.regulation.params(), now, saved, planner=self.planner
        )
        self._log_restored(saved)
        self.meter = MeterCache(cfg.meter, started_at=now)
        self.lock = threading.RLock()
        self.sent: dict[str, tuple[str, float]] = {}  # load -> (payload, when) last published
        self.last_snapshot: MeterSnapshot | None = None
        self.ticks = 0
        self.stopping = threading.Event()
        self.routes: dict[str, Callable[[bytes, float], None]] = {}
        for topic in self.meter.topics:
            self.routes[topic] = lambda payload, now, t=topic: self._on_meter(t, payload, now)
        for w in self.wires.values():
            if w.temperature_topic:
                self.routes[w.temperature_topic] = lambda p, now, w=w: self._on_temp(w, p, now)
        self.routes[CONTROL_TOPIC] = self._on_control
        self.bus = MqttBus(
            cfg.mqtt,
            [*self.routes, SEED_CONTROL_TOPICS],
            self.on_message,
            will=None if dry_run else (ONLINE_TOPIC, "offline"),
            on_connect=self._on_connect,
        )
        self.scheduler = make_scheduler(self.tz)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        add_regulation_jobs(
            self.scheduler,
            self.tick,
            self.checkpoint,
            self.cfg.regulation.tick_s,
            self.cfg.state.checkpoint_s,
        )
        add_schedule_job(self.scheduler, self.planner.schedules, self.tz, self.tick)
        self.scheduler.start()
        with self.lock:
            self.send_commands(self.clock(), force=True)  # re-send what was restored
        self.bus.start()

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT, then shut down cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.start()
        log.info(
            "pvopt running: %d load(s), policy %s, tick %gs%s",
            len(self.wires),
            self.policy,
            self.cfg.regulation.tick_s,
            ", DRY RUN (no command, no store write)" if self.dry_run else "",
        )
        self.stopping.wait()
        self.stop()

    def stop(self) -> None:
        """Loads on surplus go to 0 W; forced loads keep their command; state is kept."""
        log.info("pvopt stopping")
        self.scheduler.shutdown(wait=True)
        with self.lock:
            now = self.clock()
            for m in self.ctl.machines.values():
                if not m.is_forced:
                    m.setpoint_w = 0.0
            self.send_commands(now, force=True)
            self.checkpoint()
        if not self.dry_run:
            self.bus.client.publish(ONLINE_TOPIC, "offline", qos=1, retain=True).wait_for_publish(2)
        self.bus.stop()
        self.store.close()
        log.info("pvopt stopped")

    # -- inputs (paho's thread) ---------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        now = self.clock()
        route = self.routes.get(topic)
        if route is not None:
            route(payload, now)
            return
        match = SEED_CONTROL.fullmatch(topic)
        if match is None:
            return
        w = next((w for w in self.wires.values() if w.spec.id == int(match[1])), None)
        if w is None:  # the seed crashed here
            log.warning("ignored %s payload %r: no load has id %s", topic, payload[:40], match[1])
            return
        self._on_seed_control(w, payload, now)

    def _on_connect(self) -> None:
        if not self.dry_run:
            self.bus.publish(ONLINE_TOPIC, "online", retain=True, qos=1)
        with self.lock:
            self.sent.clear()  # a broker restart may have lost anything: re-send all
        self.kick(0.0)

    def _on_meter(self, topic: str, payload: bytes, now: float) -> None:
        if self.meter.feed(topic, payload, now):
            self.kick(KICK_DELAY_S if self.cfg.meter.kind == "linky" else 0.0)

    def _on_temp(self, w: LoadWiring, payload: bytes, now: float) -> None:
        try:
            value = parse_number(payload)
            with self.lock:
                self.ctl.machines[w.spec.name].set_temperature(value, now)
        except (MeterValueError, CommandError) as exc:
            log.warning("ignored %s payload %r: %s", w.temperature_topic, payload[:60], exc)

    def _on_seed_control(self, w: LoadWiring, payload: bytes, now: float) -> None:
        try:
            cmd = parse_seed_control(w.spec.id, payload)
        except CommandError as exc:
            log.warning("ignored %s payload %r: %s", w.control_topic, payload[:60], exc)
            return
        self.command(cmd, now, w.control_topic)

    def _on_control(self, payload: bytes, now: float) -> None:
        try:
            cmd = parse_control_json(payload)
        except CommandError as exc:
            log.warning("ignored %s payload %r: %s", CONTROL_TOPIC, payload[:80], exc)
            return
        self.command(cmd, now, CONTROL_TOPIC)

    def command(self, cmd: Command, now: float, source: str) -> None:
        """Apply a manual command; persist its transitions at once; decide at once."""
        with self.lock:
            stale = self.meter.snapshot(now).stale
            try:
                done = apply(self.ctl, cmd, now, meter_stale=stale)
            except (UnknownLoad, CommandError) as exc:
                log.warning("refused command from %s: %s", source, exc)
                return
            log.info("command from %s: %s", source, done)
            self._persist(self.ctl.drain_records(), now, always=True)
        self.kick(0.0)

    # -- jobs (the scheduler's worker thread) -------------------------------------------------
    def kick(self, delay_s: float) -> None:
        """Bring the next tick forward: fresh meter data or a command deserve a decision now."""
        if not self.stopping.is_set():
            jobs.kick(self.scheduler, self.tick, delay_s)

    def tick(self) -> None:
        """One decision: schedules, machines, policy; then commands, status and the store.
        Before the first meter value the surplus loads stay at 0 W; forced loads run."""
        with self.lock:
            now = self.clock()
            snap = self.meter.snapshot(now)
            self.last_snapshot = snap
            result = self.ctl.tick(now, snap, offpeak=self.meter.offpeak(now))
            self.ticks += 1
            events = self.planner.drain_events()
            for e in events:
                doc = event_json(e, self.tz)
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
            self._persist(result.records, now, always=bool(events))
            self.send_commands(now)
            self.publish_status(now)

    def checkpoint(self) -> None:
        """Energy counters, setpoints and temperatures: one write per `checkpoint_s`."""
        with self.lock:
            self._persist(self.ctl.drain_records(), self.clock(), always=True)

    def _persist(self, records: list[Any], now: float, *, always: bool = False) -> None:
        if self.dry_run or not (records or always):
            return
        try:
            self.store.save(self.ctl.dump(), records, self.planner.dump())
        except Exception:  # a full disk must not stop the regulation
            log.exception("state store write failed; will retry at the next checkpoint")

    # -- outputs ------------------------------------------------------------------------------
    def send_commands(self, now: float, *, force: bool = False) -> None:
        """Publish each load's command when it changed, or every `command_refresh_s`."""
        refresh = self.cfg.regulation.command_refresh_s
        for name, w in self.wires.items():
            payload = w.payload(self.ctl.machines[name].setpoint_w)
            last = self.sent.get(name)
            if not force and last is not None and last[0] == payload and now - last[1] < refresh:
                continue
            self.sent[name] = (payload, now)
            if not self.dry_run:
                self.bus.publish(w.command_topic, payload, retain=w.retain)

    def status(self, now: float) -> dict[str, Any]:
        doc = build_status(
            self.ctl,
            self.last_snapshot,
            self.meter.age_s(now),
            now,
            policy=self.policy,
            dry_run=self.dry_run,
        )
        doc["store_writes"] = getattr(self.store, "writes", 0)
        doc["meter"]["rejected"] = self.meter.rejected
        return doc

    def publish_status(self, now: float) -> None:
        self.bus.publish(STATUS_TOPIC, json.dumps(self.status(now)), retain=True)

    def _log_restored(self, saved: dict[str, dict[str, Any]]) -> None:
        if not saved:
            log.info("no saved state: every load starts fresh")
        for name, m in self.ctl.machines.items():
            if name in saved:
                log.info(
                    "restored %s: %s, %s, %.0f W, forced until %s, %.1f Wh today",
                    name,
                    m.state.value,
                    m.mode.value,
                    m.setpoint_w,
                    local_iso(m.forced_until, self.tz) or "-",
                    m.energy_today_wh,
                )


def _open_store(
    path: str, dry_run: bool
) -> tuple[StateStore, dict[str, dict[str, Any]], dict[str, Any]]:
    """The store, its machines and its planner; a dry run reads it (if any), never writes."""
    if not dry_run:
        store = SqliteStore(path)
        if store.migrated_from is not None:
            log.info("state store %s migrated from schema v%d", path, store.migrated_from)
        return store, store.load_machines(), store.load_planner()
    if not Path(path).exists():
        return MemoryStore(), {}, {}
    reader = SqliteStore(path)
    saved, planner = reader.load_machines(), reader.load_planner()
    reader.close()
    return MemoryStore(), saved, planner
