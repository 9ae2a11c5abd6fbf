"""`pvopt run`: wiring of the imperative shell around the pure core (docs/, meter to topics).

paho's network thread only validates: meter values go to the meter cache, temperatures and
commands to the regulator's inbox. APScheduler runs the jobs of `jobs/` — the regulator tick
(every `tick_s`, and at once on a fresh meter value or a command), the state checkpoint, the
schedules' wake-ups — in one worker thread, and the InfluxDB flush in another.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobs import scheduling as jobs
from jobs.errors import JobErrors
from jobs.influx import FlushJob, Outbox, add_influx_job
from jobs.meter_cache import MeterCache
from jobs.persist import Persister
from jobs.ports import Clock
from jobs.regulator import (
    Control,
    DeviceInput,
    Reconnected,
    Regulator,
    Temperature,
    TempoColours,
)
from jobs.schedules import add_schedule_job
from jobs.scheduling import EXECUTORS, add_regulation_jobs, make_scheduler
from machines.battery import chosen_mode
from machines.commands import AnyCommand, Outcome, parse_control_json, parse_seed_control
from machines.controller import Controller
from machines.energy import Ledger, restore_ledger
from machines.errors import BrokerError, BrokerUnavailable, StoreMissing
from machines.loads import CommandError, check_temperature
from machines.meter import MeterValueError, parse_number
from machines.policy import get_policy
from machines.schedules import Planner
from machines.status import local_iso
from machines.tariff import colours_from, tempo_day
from machines.totals import DurableTotals
from machines.wiring import CONTROL_TOPIC, LoadWiring, online_topic
from pvopt.adapters.homeassistant import DiscoveryLink
from pvopt.adapters.influx import InfluxSink
from pvopt.adapters.mqtt import MqttBus
from pvopt.config import Config
from pvopt.kinds import meter_source
from state.store import MemoryStore, SqliteStore, StateStore

if TYPE_CHECKING:
    from pvopt.adapters.web import WebServer

log = logging.getLogger("pvopt")

SEED_CONTROL_TOPICS = "scr/+/control"  # one wildcard, so unknown ids are seen and refused
SEED_CONTROL = re.compile(r"scr/(\d+)/control")
SUBMIT_TIMEOUT_S = 5.0  # a page waiting for the regulator's verdict on its command
DEFAULT_INTERVAL_S = 60  # energy history without InfluxDB
CLOCK_WATCH_S = 1.0  # how often the wall clock is checked against the monotonic one
FORECAST_READ_S = 900.0  # the heating plan re-reads the stored forecast this often


class Service:
    """One site: builds the meter cache, controller, store, MQTT bus and the scheduler's jobs,
    and starts and stops them."""

    def __init__(
        self,
        cfg: Config,
        *,
        dry_run: bool = False,
        clock: Clock = time.time,
        monotonic: Clock | None = None,
    ):
        self.cfg = cfg
        self.dry_run = dry_run
        self.clock = clock
        if monotonic is None and clock is time.time:
            monotonic = time.monotonic  # a test's virtual wall clock has no monotonic twin
        self.monotonic = monotonic
        self.tz = cfg.site.tz
        self.policy = cfg.regulation.policy
        self.wires: dict[str, LoadWiring] = {w.spec.name: w for w in cfg.wiring()}
        # the core, as the store left it
        self.store, saved, docs = _open_store(cfg.state.path, dry_run)
        now = clock()
        self.planner = self._planner(docs["planner"])
        self._read_forecast()
        self.interval_s = cfg.influxdb.interval_s if cfg.influxdb else DEFAULT_INTERVAL_S
        self.ledger = Ledger(self.interval_s, [s.name for s in cfg.specs()])
        params = cfg.regulation.params()
        self.ctl = Controller(
            cfg.specs(),
            self.tz,
            params,
            now,
            saved,
            planner=self.planner,
            ledger=self.ledger,
            plant=cfg.plant(),
            battery=cfg.battery.plan() if cfg.battery is not None else None,
        )
        if self.ctl.battery is not None:  # the mode chosen at run time, unless the file changed
            self.ctl.battery = chosen_mode(self.ctl.battery, docs["battery"])
        # what leaves it: the store's writes, InfluxDB's outbox
        self.outbox = self._outbox(docs["outbox"])
        self.persister = self._persister(docs, now)
        self.flush_job = self._flush_job()
        self._log_restored(saved)
        # the inputs, the bus and the regulator's worker
        source = meter_source(cfg.meter, cfg.battery)
        self.battery = source.battery  # `battery:`: its keep-alive is sent from here
        self.meter = MeterCache(source, started_at=now, monotonic=monotonic)
        self.stopping = threading.Event()
        self.routes = self._routes()
        self.ha = DiscoveryLink(  # Home Assistant MQTT discovery, when the config enables it
            cfg, lambda t, p: self.bus.publish(t, p, retain=True, qos=1), dry_run=dry_run
        )
        self.bus = self._bus()
        self.errors = JobErrors()
        self.regulator = self._regulator()
        self.lock = self.regulator.lock
        self.scheduler = make_scheduler(self.tz)
        self.errors.install(self.scheduler, EXECUTORS)
        self.web: WebServer | None = None  # the local page, started with the service

    # -- wiring (each builder runs once, from __init__, in this order) -------------------------
    def _planner(self, saved: dict[str, Any]) -> Planner:
        """The schedules, with the heating plan when the config has a `forecast:`."""
        heat = self.cfg.heat_planner() if self.cfg.forecast is not None else None
        return Planner(
            self.cfg.schedule_list(),
            self.tz,
            seed_rule=get_policy(self.policy).seed_rule,
            tank_litres=self.cfg.tank_litres(),
            saved=saved,
            heat=heat,
        )

    def _read_forecast(self) -> None:
        """Hand the heating plan the forecast the store keeps (`pvopt forecast --fetch` from
        cron writes it); runs on the regulator's worker, beside the other store reads."""
        heat = self.planner.heat
        if heat is None or self.cfg.forecast is None:
            return
        kept = self.store.load_forecast(self.cfg.forecast.source)
        heat.forecast = kept[0] if kept else None

    def _outbox(self, saved: dict[str, Any]) -> Outbox | None:
        """InfluxDB's outbox, with InfluxDB and outside a dry run (which sends nothing)."""
        influx = self.cfg.influxdb
        if influx is None or self.dry_run:
            return None
        return Outbox(influx.outbox_max_days, saved, self.clock)

    def _persister(self, docs: dict[str, dict[str, Any]], now: float) -> Persister:
        """The one writer of the store, holding what it has not committed yet: the ledger's
        restored intervals and the lifetime totals (Home Assistant's Energy dashboard)."""
        pending_intervals = restore_ledger(self.ledger, docs["ledger"], now)
        totals = DurableTotals(docs["totals"], [*pending_intervals, *self.ledger.peek()])
        return Persister(
            self.store,
            self.ctl,
            self.planner,
            self.ledger,
            history_days=self.cfg.state.history_days,
            dry_run=self.dry_run,
            pending_intervals=pending_intervals,
            committed_until=self._committed_until(),
            outbox_doc=None if self.outbox is None else self.outbox.doc,
            totals=totals,
        )

    def _committed_until(self) -> int:
        """The end of the newest closed interval the store holds beyond the outbox's progress."""
        if self.outbox is None:
            return 0
        intervals = self.store.intervals(self.outbox.sent_until)
        return max((i["end"] for i in intervals if not i.get("open")), default=0)

    def _flush_job(self) -> FlushJob | None:
        influx = self.cfg.influxdb
        if influx is None or self.outbox is None:
            return None
        load_ids = {s.name: s.id for s in self.cfg.specs()}
        return FlushJob(
            self.outbox,
            self.store,
            InfluxSink(influx),
            load_ids,
            lambda: self.persister.committed_until,
        )

    def _routes(self) -> dict[str, Callable[[bytes, float], None]]:
        """Topic -> handler for the meter, the temperatures and `regulation/control`."""
        routes: dict[str, Callable[[bytes, float], None]] = {}
        for topic in self.meter.topics:
            routes[topic] = functools.partial(self._on_meter, topic)
        for w in self.wires.values():
            if w.temperature_topic:
                routes[w.temperature_topic] = functools.partial(self._on_temp, w)
        reporting: dict[str, list[LoadWiring]] = {}  # a topic may report several channels
        for w in self.wires.values():
            for topic in w.topics.reports:
                reporting.setdefault(topic, []).append(w)
        for topic, wires in reporting.items():
            routes[topic] = functools.partial(self._on_device, topic, tuple(wires))
        routes[CONTROL_TOPIC] = self._on_control
        tariff = self.cfg.tariff
        if tariff is not None and tariff.kind == "tempo" and self.planner.heat is not None:
            routes[tariff.colour_topic] = self._on_tempo
        return routes

    def _on_tempo(self, payload: bytes, now: float) -> None:
        """Today's and tomorrow's Tempo colours, from the meter's decoded status register."""
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            log.warning("ignored Tempo colours %r: not a JSON object", payload[:60])
            return
        days = colours_from(doc, tempo_day(datetime.fromtimestamp(now, self.tz)))
        if days:
            self.regulator.post(TempoColours(days))

    def _bus(self) -> MqttBus:
        return MqttBus(
            self.cfg.mqtt,
            [*self.routes, SEED_CONTROL_TOPICS, *self.ha.subscriptions()],
            self.on_message,
            will=(online_topic(self.dry_run), "offline"),
            on_connect=self._on_connect,
        )

    def _regulator(self) -> Regulator:
        return Regulator(
            self.ctl,
            self.meter,
            list(self.wires.values()),
            self.persister,
            self.bus,
            self.clock,
            policy=self.policy,
            dry_run=self.dry_run,
            command_refresh_s=self.cfg.regulation.command_refresh_s,
            errors=self.errors,
            outbox=self.outbox,
            monotonic=self.monotonic,
            connected=self.bus.connected.is_set,
            tariff=self.cfg.tariff.tariff() if self.cfg.tariff is not None else None,
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        add_regulation_jobs(
            self.scheduler,
            self.regulator.tick,
            self.regulator.checkpoint,
            self.cfg.regulation.tick_s,
            self.cfg.state.checkpoint_s,
        )
        add_schedule_job(self.scheduler, self.planner.schedules, self.tz, self.regulator.tick)
        if self.planner.heat is not None:
            self.scheduler.add_job(
                self._read_forecast, "interval", seconds=FORECAST_READ_S, id="forecast"
            )
        if self.flush_job is not None:
            add_influx_job(self.scheduler, self.flush_job)
        if self.battery is not None and self.battery.keepalive(first=False):
            self.scheduler.add_job(
                self._battery_keepalive,
                "interval",
                seconds=self.battery.cfg.keepalive_s,
                id="battery-keepalive",
            )
        self.scheduler.start()
        self.regulator.resend()  # what was restored
        self.bus.start()
        if self.cfg.web is not None:  # imported here: a service without the page never loads it
            from pvopt.adapters.web import WebServer

            self.web = WebServer(self.cfg, self, self.clock)
            self.web.start()
            self.regulator.status_listeners.append(self.web.push)  # never waits for a client
        if self.monotonic is not None:
            threading.Thread(target=self._watch_clock, name="clock-watch", daemon=True).start()

    def _watch_clock(self) -> None:
        """Every second, compare the wall clock with the monotonic one: a step (NTP on a Pi
        without RTC) moves the core's duration anchors and the scheduler's run times."""
        while not self.stopping.wait(CLOCK_WATCH_S):
            try:
                if self.regulator.check_clock():
                    jobs.realign(
                        self.scheduler, self.cfg.regulation.tick_s, self.cfg.state.checkpoint_s
                    )
            except Exception:  # never let the watch die silently; it tries again in a second
                log.exception("clock watch failed")

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT, then shut down cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            self.start()
        except BrokerError:  # the MQTT client cannot start: save and close what started
            self.stop()
            raise
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
        """Loads on surplus go to 0 W; forced loads keep their command; state is kept.

        Every step runs even when one before failed (a dead broker, a full disk): the store is
        saved and closed whatever happens, and what could not be done is said in one line.
        """
        log.info("pvopt stopping")
        self.stopping.set()  # the clock watch, kicks and commands end here
        connected = self.bus.connected.is_set()
        problems: list[str] = []
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.web is not None:
            steps.append(("web page", self.web.stop))
        steps += [
            ("scheduler", self._stop_scheduler),
            ("state", self.regulator.shutdown),
        ]
        if self.flush_job is not None:
            # best effort: what InfluxDB does not take now waits in the outbox
            steps.append(("InfluxDB", self.flush_job))
        if connected:
            steps.append(("offline status", self._publish_offline))
        steps += [("MQTT", self.bus.stop), ("store", self.store.close)]
        for what, step in steps:
            try:
                step()
            except BrokerUnavailable:  # lost between the check above and the publish
                connected = False
            except Exception as exc:  # the next steps must still run: the store above all
                problems.append(f"{what}: {type(exc).__name__}: {str(exc)[:120]}")
        if not connected:
            problems.insert(
                0,
                "MQTT broker unreachable: the offline status is not sent"
                + ("" if self.dry_run else ", the loads keep their last command until it is back"),
            )
        if problems:
            log.warning("pvopt stopped, but %s", "; ".join(problems))
        else:
            log.info("pvopt stopped")

    def _stop_scheduler(self) -> None:
        """Pause, drop every job, then shut down: APScheduler 3 raises `JobLookupError` in its
        own thread when `shutdown()` races a one-off (`kick`) job it is removing."""
        if not self.scheduler.running:
            return
        self.scheduler.pause()
        self.scheduler.remove_all_jobs()  # waits for the scheduler's loop to leave its jobs
        self.scheduler.shutdown(wait=True)

    def _publish_offline(self) -> None:
        self.bus.publish_wait(online_topic(self.dry_run), "offline", 2.0, qos=1, retain=True)

    # -- inputs (paho's thread: validate and queue, never the controller nor the store) -------
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

    def _battery_keepalive(self, first: bool = False) -> None:
        """Venus OS publishes only while someone asks (docs/battery.md): the first request of
        a connection has every value sent at once, the next ones only keep it awake. A read
        request changes nothing, so a dry run sends it too."""
        if self.battery is None:
            return
        for topic, payload in self.battery.keepalive(first):
            self.bus.publish(topic, payload)

    def _on_connect(self) -> None:
        self._battery_keepalive(first=True)
        self.bus.publish(online_topic(self.dry_run), "online", retain=True, qos=1)
        if not self.dry_run:
            self.ha.publish_all()
        self.regulator.post(Reconnected())
        self.kick(0.0)

    def _on_meter(self, topic: str, payload: bytes, now: float) -> None:
        if self.meter.feed(topic, payload, now):
            self.kick(self.meter.kick_delay_s)

    def _on_temp(self, w: LoadWiring, payload: bytes, now: float) -> None:
        try:
            value = check_temperature(parse_number(payload))
        except (MeterValueError, CommandError) as exc:
            log.warning("ignored %s payload %r: %s", w.temperature_topic, payload[:60], exc)
            return
        self.regulator.post(Temperature(w.spec.name, value, now))

    def _on_device(
        self, topic: str, wires: tuple[LoadWiring, ...], payload: bytes, now: float
    ) -> None:
        """A device's state, power or availability (docs/devices.md); an offline device is
        shed at once, not at the next tick."""
        text = payload.decode("utf-8", errors="replace")
        for w in wires:
            report = w.read(topic, text)
            if report.is_empty():
                log.debug("nothing for %s in %s payload %r", w.spec.name, topic, payload[:60])
                continue
            self.regulator.post(DeviceInput(w.spec.name, report, now))
            if report.online is not None:
                self.kick(0.0)

    def _on_seed_control(self, w: LoadWiring, payload: bytes, now: float) -> None:
        try:
            cmd = parse_seed_control(w.spec.id, payload)
        except CommandError as exc:
            log.warning("ignored %s payload %r: %s", w.control_topic, payload[:60], exc)
            return
        self.command(cmd, w.control_topic)

    def _on_control(self, payload: bytes, now: float) -> None:
        try:
            cmd = parse_control_json(payload)
        except CommandError as exc:
            log.warning("ignored %s payload %r: %s", CONTROL_TOPIC, payload[:80], exc)
            return
        self.command(cmd, CONTROL_TOPIC)

    def command(self, cmd: AnyCommand, source: str) -> None:
        """Hand a well-formed manual command to the regulator and decide at once: the CLI waits
        for the status to show it."""
        self.regulator.post(Control(cmd, source))
        if not self.stopping.is_set():
            jobs.run_inputs(self.scheduler, self.regulator.apply_inputs)

    def submit(self, cmd: AnyCommand, source: str) -> Outcome:
        """A command from the page (pvopt/adapters/web.Site): the same queue and checks as
        `regulation/control`, and the regulator's verdict once its worker has applied it."""
        reply: Future[Outcome] = Future()
        self.regulator.post(Control(cmd, source, reply))
        if self.stopping.is_set():
            return Outcome(False, "pvopt is stopping")
        jobs.run_inputs(self.scheduler, self.regulator.apply_inputs)
        try:
            return reply.result(timeout=SUBMIT_TIMEOUT_S)
        except TimeoutError:
            return Outcome(False, f"no answer from the regulator within {SUBMIT_TIMEOUT_S:g} s")

    # -- the regulator's worker ---------------------------------------------------------------
    def kick(self, delay_s: float) -> None:
        """Bring the next tick forward: fresh meter data or a command deserve a decision now."""
        if not self.stopping.is_set():
            jobs.kick(self.scheduler, self.regulator.tick, delay_s)

    def tick(self) -> None:
        """One regulator tick, here and now (tests drive it on a virtual clock)."""
        self.regulator.tick()

    @property
    def ticks(self) -> int:
        return self.regulator.ticks

    @property
    def committed_until(self) -> int:
        """The end of the newest interval in the store (what the InfluxDB job may write)."""
        return self.persister.committed_until

    def status(self, now: float) -> dict[str, Any]:
        return self.regulator.status(now)

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


DOCUMENTS = ("planner", "ledger", "outbox", "totals", "battery")


def _open_store(
    path: str, dry_run: bool
) -> tuple[StateStore, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The store, its machines and documents; a dry run reads it (if any), never writes."""
    if not dry_run:
        store = SqliteStore(path)
        if store.migrated_from is not None:
            log.info("state store %s migrated from schema v%d", path, store.migrated_from)
        return store, store.load_machines(), {k: store.load_document(k) for k in DOCUMENTS}
    try:
        reader = SqliteStore(path, read_only=True)
    except StoreMissing:
        return MemoryStore(), {}, {key: {} for key in DOCUMENTS}
    saved = reader.load_machines()
    docs = {k: reader.load_document(k) for k in DOCUMENTS}
    reader.close()
    return MemoryStore(), saved, docs
