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
from jobs.influx import add_influx_job
from jobs.regulation import add_regulation_jobs, make_scheduler
from jobs.schedules import add_schedule_job
from machines.controller import Controller, UnknownLoad
from machines.energy import Ledger, dump_ledger, restore_ledger
from machines.loads import CommandError, TransitionRecord
from machines.meter import MeterValueError, parse_number
from machines.schedules import Planner
from pvopt.adapters.homeassistant import DiscoveryLink
from pvopt.adapters.influx import InfluxSink, Outbox
from pvopt.adapters.mqtt import MqttBus
from pvopt.commands import Command, apply, parse_control_json, parse_seed_control
from pvopt.config import Config
from pvopt.meter_cache import MeterCache
from pvopt.status import build_status, event_json, local_iso
from pvopt.topics import CONTROL_TOPIC, ONLINE_TOPIC, STATUS_TOPIC, LoadWiring, wiring
from pvopt.totals import DurableTotals, annotate
from state.store import MemoryStore, SqliteStore, StateStore

log = logging.getLogger("pvopt")

SEED_CONTROL_TOPICS = "scr/+/control"  # one wildcard, so unknown ids are seen and refused
SEED_CONTROL = re.compile(r"scr/(\d+)/control")
DEFAULT_INTERVAL_S = 60  # energy history without InfluxDB
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
        self.store, saved, docs = _open_store(cfg.state.path, dry_run)
        now = clock()
        self.planner = Planner(
            cfg.schedule_list(),
            self.tz,
            seed_rule=self.policy == "legacy",
            tank_litres=cfg.tank_litres(),
            saved=docs["planner"],
        )
        self.interval_s = cfg.influxdb.interval_s if cfg.influxdb else DEFAULT_INTERVAL_S
        self.ledger = Ledger(self.interval_s, [s.name for s in cfg.specs()])
        self.ctl = Controller(
            cfg.specs(),
            self.tz,
            cfg.regulation.params(),
            now,
            saved,
            planner=self.planner,
            ledger=self.ledger,
        )
        # intervals drained from the ledger but not committed yet (a failed write keeps them)
        self.pending_intervals = restore_ledger(self.ledger, docs["ledger"], now)
        self.pending_records: list[TransitionRecord] = []
        # lifetime totals (Home Assistant's Energy dashboard), committed with the intervals
        self.totals = DurableTotals(docs["totals"], [*self.pending_intervals, *self.ledger.peek()])
        self.committed_until = 0
        self.last_prune = 0.0
        self.load_ids = {s.name: s.id for s in cfg.specs()}
        self.outbox: Outbox | None = None
        self.sink: InfluxSink | None = None
        if cfg.influxdb is not None and not dry_run:
            self.outbox = Outbox(cfg.influxdb, docs["outbox"], clock)
            self.sink = InfluxSink(cfg.influxdb)
            self.committed_until = max(
                (i["end"] for i in self.store.intervals(self.outbox.sent_until)), default=0
            )
        self._log_restored(saved)
        self.meter = MeterCache(cfg.meter, started_at=now)
        self.lock = threading.RLock()
        self.sent: dict[str, tuple[str, float]] = {}  # load -> (payload, when) last published
        self.ticks = 0
        self.stopping = threading.Event()
        self.routes: dict[str, Callable[[bytes, float], None]] = {}
        for topic in self.meter.topics:
            self.routes[topic] = lambda payload, now, t=topic: self._on_meter(t, payload, now)
        for w in self.wires.values():
            if w.temperature_topic:
                self.routes[w.temperature_topic] = lambda p, now, w=w: self._on_temp(w, p, now)
        self.routes[CONTROL_TOPIC] = self._on_control
        self.ha = DiscoveryLink(  # Home Assistant MQTT discovery, when the config enables it
            cfg, lambda t, p: self.bus.publish(t, p, retain=True, qos=1), dry_run=dry_run
        )
        self.bus = MqttBus(
            cfg.mqtt,
            [*self.routes, SEED_CONTROL_TOPICS, *self.ha.subscriptions()],
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
        if self.outbox is not None:
            add_influx_job(self.scheduler, self.flush)
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
            self.ctl.account(now)  # energy up to now, at the setpoints that were in force
            for m in self.ctl.machines.values():
                if not m.is_forced:
                    m.setpoint_w = 0.0
            self.send_commands(now, force=True)
            self.ctl.intervals.extend(self.ledger.peek())  # the open interval, so far
            self._persist(self.ctl.drain_records(), now, checkpoint=True)
        self.flush()  # best effort: what InfluxDB does not take now waits in the outbox
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
        if self.ha.on_message(topic, payload):
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
            self.ha.publish_all()
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
            self._persist(self.ctl.drain_records(), now, write=True)
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
            self._persist(result.records, now, write=bool(events))
            self.send_commands(now)
            self.publish_status(now)

    def checkpoint(self) -> None:
        """Energy counters, setpoints, temperatures and the intervals that ended, with the
        outbox's progress: one write per `checkpoint_s`."""
        with self.lock:
            now = self.clock()
            self.ctl.account(now)  # close the interval that just ended
            self._persist(self.ctl.drain_records(), now, checkpoint=True)

    def _persist(
        self, records: list[Any], now: float, *, write: bool = False, checkpoint: bool = False
    ) -> None:
        """Transitions, commands and schedule events commit at once; energy waits for a
        checkpoint (DESIGN §8)."""
        self.pending_records.extend(records)
        if checkpoint:
            self.pending_intervals.extend(self.ctl.drain_intervals())
        if self.dry_run or not (self.pending_records or write or checkpoint):
            return
        docs = {"planner": self.planner.dump()}
        totals = self.totals.add(self.pending_intervals)  # committed with the intervals
        docs["totals"] = totals.dump()
        if checkpoint:
            docs["ledger"] = dump_ledger(self.ledger)
            if self.outbox is not None:
                docs["outbox"] = self.outbox.doc()
        prune = None
        if checkpoint and now - self.last_prune >= 86400:
            prune = int(now - self.cfg.state.history_days * 86400)
        try:
            self.store.save(
                self.ctl.dump(), self.pending_records, docs, self.pending_intervals, prune
            )
        except Exception:  # a full disk must not stop the regulation
            log.exception("state store write failed; kept in memory, retried at the next one")
            return
        self.totals.commit(totals, self.ledger.peek() if checkpoint else None)
        if prune is not None:
            self.last_prune = now
        if self.pending_intervals:
            self.committed_until = self.pending_intervals[-1]["end"]
        self.pending_records, self.pending_intervals = [], []

    def flush(self) -> None:
        """Write committed intervals to InfluxDB (the `io` worker: never delays a tick)."""
        if self.outbox is None or self.sink is None:
            return
        if self.outbox.sent_until >= self.committed_until:
            return
        self.outbox.flush(self.store, self.sink, self.load_ids)

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
            self.ctl.last_snapshot,
            self.meter.age_s(now),
            now,
            policy=self.policy,
            dry_run=self.dry_run,
        )
        doc["store_writes"] = self.store.writes
        if self.outbox is not None:
            doc["influxdb"] = self.outbox.status()
        doc["meter"]["rejected"] = self.meter.rejected
        annotate(doc, self.totals.shown)
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


DOCUMENTS = ("planner", "ledger", "outbox", "totals")


def _open_store(
    path: str, dry_run: bool
) -> tuple[StateStore, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The store, its machines and documents; a dry run reads it (if any), never writes."""
    if not dry_run:
        store = SqliteStore(path)
        if store.migrated_from is not None:
            log.info("state store %s migrated from schema v%d", path, store.migrated_from)
        return store, store.load_machines(), {k: store.load_document(k) for k in DOCUMENTS}
    if not Path(path).exists():
        return MemoryStore(), {}, {key: {} for key in DOCUMENTS}
    reader = SqliteStore(path)
    saved = reader.load_machines()
    docs = {k: reader.load_document(k) for k in DOCUMENTS}
    reader.close()
    return MemoryStore(), saved, docs
