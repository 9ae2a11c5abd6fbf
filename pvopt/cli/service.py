"""The service's subcommands: `run`, and `status`, `history`, `force`, `auto`, `off` that work
beside it (DESIGN §9)."""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from machines.controller import Controller, UnknownLoad
from machines.loads import CommandError
from pvopt import config as cfgmod
from pvopt.adapters.mqtt import BrokerUnavailable, OneShot
from pvopt.cli.common import (
    config_option,
    console,
    fail,
    load_config,
)
from pvopt.commands import Command, parse_duration
from pvopt.status import build_status
from pvopt.tables import energy_table, status_table
from pvopt.topics import CONTROL_TOPIC, STATUS_TOPIC
from state.store import SqliteStore, StoreError

COMMAND_WAIT_S = 10.0
LIVE_STATUS_WAIT_S = 2.0


def _open_store(cfg: cfgmod.Config) -> SqliteStore | None:
    if not Path(cfg.state.path).exists():
        return None
    try:
        return SqliteStore(cfg.state.path)
    except StoreError as exc:
        fail(str(exc))
    return None


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
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    quiet = max(logging.WARNING, logging.getLevelName(log_level))
    for noisy in ("apscheduler", "transitions"):  # their INFO lines are per job run / callback
        logging.getLogger(noisy).setLevel(quiet)
    try:
        service = Service(cfg, dry_run=dry_run)
    except StoreError as exc:
        fail(str(exc))
        return
    from pvopt.adapters.tic.bridge import HistoricWatch

    HistoricWatch(cfg).start()  # says it once if the TIC bridge reads a historic-mode meter
    service.run_forever()


def live_status(cfg: cfgmod.Config, timeout_s: float = LIVE_STATUS_WAIT_S) -> dict[str, Any] | None:
    """The retained `regulation/status`, or None when the broker or the service is silent."""
    try:
        shot = OneShot(cfg.mqtt, [STATUS_TOPIC])
    except BrokerUnavailable:
        return None
    try:
        if not shot.wait_for(lambda msgs: STATUS_TOPIC in msgs, timeout_s):
            return None
        return json.loads(shot.messages[STATUS_TOPIC])
    except ValueError:
        return None
    finally:
        shot.close()


def merged_status(cfg: cfgmod.Config, now: float) -> tuple[dict[str, Any], str]:
    """The store's view overlaid with the live retained status; says where it came from."""
    store = _open_store(cfg)
    saved = store.load_machines() if store is not None else {}
    if store is not None:
        store.close()
    ctl = Controller(cfg.specs(), cfg.site.tz, cfg.regulation.params(), now, saved)
    doc = build_status(ctl, None, None, now, policy=cfg.regulation.policy, dry_run=False)
    live = live_status(cfg)
    if live is None:
        where = "store" if saved else "config (no store yet)"
        return doc, f"{where}; no live status from {cfg.mqtt.host}:{cfg.mqtt.port}"
    stored = {entry["name"]: entry for entry in doc["loads"]}
    for entry in live.get("loads", []):
        entry.update({k: v for k, v in stored.get(entry.get("name"), {}).items() if k not in entry})
    age = now - live.get("date", now)
    return live, f"live from {cfg.mqtt.host}:{cfg.mqtt.port}, age {age:.0f} s"


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status document (DESIGN §8).")
def status(config_path: str | None, as_json: bool) -> None:
    """Each load's state, mode, reason, power, energy and deadline."""
    cfg = load_config(config_path)
    doc, origin = merged_status(cfg, time.time())
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    console.print(status_table(doc, origin))


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
        fail(f"no state store at {cfg.state.path}: has `pvopt run` ever run with this config?")
        return
    records = store.transitions(name, limit)
    store.close()
    table = Table(title=f"transitions ({cfg.state.path})")
    for col in ("time", "load", "from", "to", "trigger", "reason"):
        table.add_column(col)
    for r in records:
        when = datetime.fromtimestamp(r.at, cfg.site.tz).strftime("%Y-%m-%d %H:%M:%S")
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
    """Publish `cmd` on regulation/control and wait until the status shows it (DESIGN §7)."""
    name = str(cmd.load)
    try:
        shot = OneShot(cfg.mqtt, [STATUS_TOPIC])
    except BrokerUnavailable as exc:
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
    cmd = Command("force", name, power_w=power, duration_s=seconds)
    send_command(cfg, cmd, lambda e: e["state"] == "boost")


@click.command()
@config_option
@click.argument("load")
def auto(config_path: str | None, load: str) -> None:
    """Give LOAD back to the regulator."""
    cfg = load_config(config_path)
    send_command(cfg, Command("auto", _resolve(cfg, load)), lambda e: e["mode"] == "auto")


@click.command()
@config_option
@click.argument("load")
def off(config_path: str | None, load: str) -> None:
    """Switch LOAD off until `auto` (or `force`)."""
    cfg = load_config(config_path)
    send_command(
        cfg,
        Command("off", _resolve(cfg, load)),
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
        fail(f"no state store at {cfg.state.path}: has `pvopt run` ever run with this config?")
        return
    names = [s.name for s in cfg.specs()]
    rows = report(store, tz, names, last, days)
    store.close()
    if as_json:
        click.echo(json.dumps([{"date": d.isoformat(), **t} for d, t, _ in rows], indent=2))
    else:
        console.print(energy_table(rows, names))
    if plot_path:
        from pvsim.plot import plot_day

        d, _, intervals = rows[-1]
        plot_day(intervals, names, tz, f"{d.isoformat()} — {cfg.source}", plot_path)
        console.print(f"plot written to {plot_path}", highlight=False)


COMMANDS = (run, status, history, force, auto, off, schedules, energy)
