"""The service's subcommands: `run`, and `status`, `history`, `force`, `auto`, `off` that work
beside it (docs/cli.md)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from machines.commands import Action, Command, parse_duration
from machines.controller import Controller, UnknownLoad
from machines.errors import BrokerError, StoreError, StoreMissing
from machines.loads import CommandError
from machines.status import build_status
from machines.wiring import (
    CONTROL_TOPIC,
    DRY_RUN_ONLINE_TOPIC,
    DRY_RUN_STATUS_TOPIC,
    ONLINE_TOPIC,
    STATUS_TOPIC,
)
from pvopt import config as cfgmod
from pvopt.adapters.mqtt import OneShot
from pvopt.cli.common import (
    config_option,
    console,
    fail,
    load_config,
    require_sim,
)
from pvopt.tables import dry_run_table, energy_table, fmt_age, status_table

if TYPE_CHECKING:
    from state.store import SqliteStore

COMMAND_WAIT_S = 10.0
LIVE_STATUS_WAIT_S = 2.0


def _open_store(cfg: cfgmod.Config) -> SqliteStore | None:
    """The store, read-only (these commands never create, migrate nor write it), or None when
    there is none yet; exit 1 saying why when it cannot be read (an older schema among them).
    SQLAlchemy is imported here: the simulator's commands, `config check` and `--help` skip it."""
    from state.store import SqliteStore

    try:
        return SqliteStore(cfg.state.path, read_only=True)
    except StoreMissing:
        return None
    except StoreError as exc:
        fail(str(exc))
    return None


class SiteTimeFormatter(logging.Formatter):
    """Log lines stamped in the site's time zone with its offset, like `status` and `history`:
    `2026-06-15 11:45:03.120+02:00 INFO pvopt: …`."""

    def __init__(self, tz: tzinfo):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.tz).isoformat(" ", "milliseconds")


@click.command()
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Decide and report; publish no command, write nothing."
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    show_default=True,
)
def run(config_path: str | None, dry_run: bool, log_level: str) -> None:
    """Run the regulator: read the meter over MQTT, steer the loads, until SIGTERM/SIGINT."""
    from pvopt.service import Service

    cfg = load_config(config_path)
    handler = logging.StreamHandler()
    handler.setFormatter(SiteTimeFormatter(cfg.site.tz))
    logging.basicConfig(level=log_level, handlers=[handler], force=True)
    quiet = max(logging.WARNING, logging.getLevelName(log_level))
    for noisy in ("apscheduler", "transitions"):  # their INFO lines are per job run / callback
        logging.getLogger(noisy).setLevel(quiet)
    try:
        service = Service(cfg, dry_run=dry_run)
        from pvopt.adapters.tic.bridge import HistoricWatch

        HistoricWatch(cfg).start()  # says it once if the TIC bridge reads a historic-mode meter
        service.run_forever()
    except (StoreError, BrokerError) as exc:
        fail(str(exc))


@dataclass
class Retained:
    """What the broker keeps for `pvopt status`: a run's and a dry run's status and online flag."""

    reachable: bool
    status: dict[str, Any] | None = None
    online: str | None = None
    dry_status: dict[str, Any] | None = None
    dry_online: str | None = None


def _json(payload: bytes | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def read_retained(cfg: cfgmod.Config, timeout_s: float = LIVE_STATUS_WAIT_S) -> Retained:
    """The retained status and online topics, read in one round trip: a marker published after
    subscribing comes back after every retained message."""
    marker = f"pvopt/cli/sync/{time.time_ns()}"
    topics = [STATUS_TOPIC, ONLINE_TOPIC, DRY_RUN_STATUS_TOPIC, DRY_RUN_ONLINE_TOPIC, marker]
    try:
        shot = OneShot(cfg.mqtt, topics)
    except BrokerError:
        return Retained(reachable=False)
    try:
        shot.publish(marker, "sync")
        shot.wait_for(lambda msgs: marker in msgs, timeout_s)
        msgs = dict(shot.messages)
    except BrokerError:  # connected, then refused or lost
        return Retained(reachable=False)
    finally:
        shot.close()

    def text(topic: str) -> str | None:
        value = msgs.get(topic)
        return value.decode(errors="replace").strip() if value else None

    return Retained(
        reachable=True,
        status=_json(msgs.get(STATUS_TOPIC)),
        online=text(ONLINE_TOPIC),
        dry_status=_json(msgs.get(DRY_RUN_STATUS_TOPIC)),
        dry_online=text(DRY_RUN_ONLINE_TOPIC),
    )


def silent_after_s(cfg: cfgmod.Config) -> float:
    """A status older than this means the service stopped publishing (it does every tick)."""
    return max(3.0 * cfg.regulation.tick_s, 15.0)


def service_state(
    online: str | None, doc: dict[str, Any] | None, now: float, silent_s: float
) -> tuple[str, float | None]:
    """online | offline | silent (no status for a while) | absent, and the status's age."""
    age = None if doc is None else max(now - float(doc.get("date", now)), 0.0)
    if online == "offline":
        return "offline", age
    if doc is None:
        return ("online" if online == "online" else "absent"), None
    if age is not None and age > silent_s:
        return "silent", age
    return "online", age


def merged_status(cfg: cfgmod.Config, now: float) -> tuple[dict[str, Any], str]:
    """The store's view, overlaid with the live retained status only while the service is
    online; says where the figures came from and whether the service runs."""
    store = _open_store(cfg)
    saved = store.load_machines() if store is not None else {}
    if store is not None:
        store.close()
    ctl = Controller(cfg.specs(), cfg.site.tz, cfg.regulation.params(), now, saved)
    doc = build_status(ctl, None, None, now, policy=cfg.regulation.policy, dry_run=False)
    where = "store" if saved else "config (no store yet)"
    broker = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    got = read_retained(cfg)
    doc["service"] = {"state": "unknown", "status_age_s": None}
    if got.dry_status is not None:
        dry_state, dry_age = service_state(got.dry_online, got.dry_status, now, silent_after_s(cfg))
        doc["dry_run_status"] = {
            **got.dry_status,
            "service": {"state": dry_state, "status_age_s": _round(dry_age)},
        }
    if not got.reachable:
        return doc, f"{where}; broker {broker} unreachable: cannot tell whether `pvopt run` runs"
    state, age = service_state(got.online, got.status, now, silent_after_s(cfg))
    doc["service"] = {"state": state, "status_age_s": _round(age)}
    last = "" if age is None else f"; its last status is {fmt_age(age)} old"
    if state == "offline":
        return doc, f"SERVICE OFFLINE (`regulation/online` = offline){last}; figures from {where}"
    if state == "silent":
        return doc, (
            f"NO STATUS for {fmt_age(age or 0.0)}: `pvopt run` is not publishing on {broker} "
            f"(online flag: {got.online or 'none'}); figures from {where}"
        )
    if got.status is None:
        return doc, f"{where}; no status from `pvopt run` on {broker}"
    live = got.status
    stored = {entry["name"]: entry for entry in doc["loads"]}
    for entry in live.get("loads", []):
        entry.update({k: v for k, v in stored.get(entry.get("name"), {}).items() if k not in entry})
    live["service"] = doc["service"]
    if "dry_run_status" in doc:
        live["dry_run_status"] = doc["dry_run_status"]
    return live, f"live from {broker}, service online, status {fmt_age(age or 0.0)} old"


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def dry_run_origin(dry: dict[str, Any]) -> str:
    """How a dry run's figures are captioned: running or stopped, and how old."""
    svc = dry.get("service", {})
    age = fmt_age(svc.get("status_age_s") or 0.0)
    if svc.get("state") == "online":
        return f"running, status {age} old"
    if svc.get("state") == "offline":
        return f"stopped; last status {age} ago"
    return f"not publishing for {age}"


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status document (docs/topics.md).")
def status(config_path: str | None, as_json: bool) -> None:
    """Each load's state, mode, reason, power, energy and deadline; whether the service runs;
    a dry run's would-be figures apart."""
    cfg = load_config(config_path)
    doc, origin = merged_status(cfg, time.time())
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    console.print(status_table(doc, origin))
    dry = doc.get("dry_run_status")
    if dry is not None and (
        dry["service"]["state"] == "online" or (dry["service"]["status_age_s"] or 0) < 86400
    ):
        console.print(dry_run_table(dry, dry_run_origin(dry)))


def no_store(cfg: cfgmod.Config) -> None:
    """Exit 1: no store yet, saying whether only a dry run has run with this config."""
    got = read_retained(cfg, 1.0)
    if got.dry_status is not None or got.dry_online is not None:
        fail(
            f"no state store at {cfg.state.path}: only a dry run has run with this config, and a "
            "dry run writes nothing; `pvopt run` without --dry-run starts recording"
        )
    fail(f"no state store at {cfg.state.path}: has `pvopt run` ever run with this config?")


@click.command()
@config_option
@click.argument("load", required=False)
@click.option("--limit", default=50, show_default=True, help="How many transitions.")
def history(config_path: str | None, load: str | None, limit: int) -> None:
    """The transition log, oldest first (of LOAD, or of every load)."""
    cfg = load_config(config_path)
    name = _resolve(cfg, load) if load is not None else None
    store = _open_store(cfg)
    if store is None:
        no_store(cfg)
        return
    records = store.transitions(name, limit)
    store.close()
    table = Table(title=f"transitions ({cfg.state.path})")
    for col in ("time", "load", "from", "to", "trigger", "reason"):
        table.add_column(col)
    for r in records:
        when = datetime.fromtimestamp(r.at, cfg.site.tz).isoformat(" ", "seconds")
        table.add_row(when, r.load, r.source, r.dest, r.trigger, r.reason)
    console.print(table)


def _resolve(cfg: cfgmod.Config, key: str) -> str:
    """A load's name from a name or an id; exit 1 naming the configured loads otherwise."""
    ctl = Controller(cfg.specs(), cfg.site.tz, cfg.regulation.params(), 0.0)
    try:
        return ctl.load(key).spec.name
    except UnknownLoad:
        known = ", ".join(f"{s.name} ({s.id})" for s in cfg.specs())
        fail(f"unknown load {key!r}; configured: {known}")
        raise


def send_command(cfg: cfgmod.Config, cmd: Command, shows: Any) -> None:
    """Publish `cmd` on regulation/control and wait until the status shows it (docs/commands.md)."""
    name = str(cmd.load)
    try:
        shot = OneShot(cfg.mqtt, [STATUS_TOPIC])
    except BrokerError as exc:
        fail(str(exc))
        return
    try:
        sent_at = time.time()
        shot.publish(CONTROL_TOPIC, cmd.to_json())

        def done(msgs: dict[str, bytes]) -> bool:
            try:
                doc = json.loads(msgs.get(STATUS_TOPIC, b"{}"))
            except ValueError:
                return False
            if doc.get("date", 0) < sent_at - 1:
                return False
            entry = next((e for e in doc.get("loads", []) if e.get("name") == name), None)
            return entry is not None and shows(entry)

        if not shot.wait_for(done, COMMAND_WAIT_S):
            fail(
                f"sent {cmd.action} to {name}, but the status did not show it within "
                f"{COMMAND_WAIT_S:g} s: is `pvopt run` running on {cfg.mqtt.host}:{cfg.mqtt.port}? "
                "(its log says why a command was refused)"
            )
        doc = json.loads(shot.messages[STATUS_TOPIC])
        entry = next(e for e in doc["loads"] if e["name"] == name)
        until = f" until {entry['forced_until']}" if entry.get("forced_until") else ""
        console.print(
            f"{name}: {entry['state']}, {entry['mode']}, {entry['power_w']:.0f} W{until}",
            highlight=False,
        )
    finally:
        shot.close()


@click.command()
@config_option
@click.argument("load")
@click.option("--power", type=float, default=None, help="Watts (default: full power).")
@click.option("--for", "duration", default=None, help="90s, 15m, 2h, 1h30m (default: until auto).")
def force(config_path: str | None, load: str, power: float | None, duration: str | None) -> None:
    """Boost LOAD (name or id) at full or given power, for a while or until `auto`."""
    cfg = load_config(config_path)
    name = _resolve(cfg, load)
    try:
        seconds = parse_duration(duration) if duration is not None else None
    except CommandError as exc:
        fail(str(exc))
        return
    cmd = Command(Action.FORCE, name, power_w=power, duration_s=seconds)
    send_command(cfg, cmd, lambda e: e["state"] == "boost")


@click.command()
@config_option
@click.argument("load")
def auto(config_path: str | None, load: str) -> None:
    """Give LOAD back to the regulator."""
    cfg = load_config(config_path)
    send_command(cfg, Command(Action.AUTO, _resolve(cfg, load)), lambda e: e["mode"] == "auto")


@click.command()
@config_option
@click.argument("load")
def off(config_path: str | None, load: str) -> None:
    """Switch LOAD off until `auto` (or `force`)."""
    cfg = load_config(config_path)
    send_command(
        cfg,
        Command(Action.OFF, _resolve(cfg, load)),
        lambda e: e["mode"] == "manual" and e["state"] == "off",
    )


@click.command()
@config_option
@click.option("--count", default=3, show_default=True, help="Firings to list per schedule.")
def schedules(config_path: str | None, count: int) -> None:
    """Each schedule and its next firings, in the site's local time."""
    from machines.schedules import DAY_NAMES, next_events

    cfg = load_config(config_path)
    tz = cfg.site.tz
    found = cfg.schedule_list()
    if not found:
        console.print(
            "no schedules: add `schedules:` to the config, or set HC_START_TIME and HC_END_TIME",
            highlight=False,
        )
        return
    table = Table(title=f"schedules ({cfg.site.timezone}, now {datetime.now(tz):%a %d %b %H:%M})")
    for col in ("name", "load", "action", "when", "days", "next"):
        table.add_column(col)
    now = time.time()
    for s in found:
        if s.at is not None:
            when = f"at {s.at:%H:%M}"
        else:
            clock = f"{s.start:%H:%M}-{s.end:%H:%M}" if s.start and s.end else ""
            when = f"tariff HC{f' (else {clock})' if clock else ''}" if s.tariff else clock
        days = "every day" if len(s.days) == 7 else ",".join(DAY_NAMES[d] for d in sorted(s.days))
        nxt = [
            f"{event} {datetime.fromtimestamp(t, tz):%a %d %b %H:%M %Z}"
            for t, event in next_events(s, now, tz, count)
        ]
        table.add_row(s.name, s.load, s.action, when, days, "\n".join(nxt) or "follows the meter")
    console.print(table)


@click.command()
@config_option
@click.option("--day", default=None, metavar="YYYY-MM-DD", help="The (last) day; default today.")
@click.option("--days", default=1, show_default=True, help="How many days, ending at --day.")
@click.option("--plot", "plot_path", metavar="PNG", default=None, help="Draw the (last) day.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def energy(
    config_path: str | None, day: str | None, days: int, plot_path: str | None, as_json: bool
) -> None:
    """Energy per load and at the grid, per day, from the local store (not from InfluxDB)."""
    from pvopt.energy_report import report

    cfg = load_config(config_path)
    tz = cfg.site.tz
    try:
        last = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        fail(f"not a date: {day!r} (YYYY-MM-DD)")
        return
    if not 1 <= days <= 3660:
        fail("--days must be between 1 and 3660")
    store = _open_store(cfg)
    if store is None:
        no_store(cfg)
        return
    names = [s.name for s in cfg.specs()]
    tariff = cfg.tariff.tariff() if cfg.tariff is not None else None
    rows = report(store, tz, names, last, days, tariff)
    store.close()
    if as_json:
        click.echo(json.dumps([{"date": d.isoformat(), **t} for d, t, _ in rows], indent=2))
    else:
        console.print(energy_table(rows, names))
    if plot_path:
        require_sim("`pvopt energy --plot`")
        from pvsim.plot import plot_day

        d, _, intervals = rows[-1]
        plot_day(intervals, names, tz, f"{d.isoformat()} — {cfg.source}", plot_path)
        console.print(f"plot written to {plot_path}", highlight=False)


COMMANDS = (run, status, history, force, auto, off, schedules, energy)
