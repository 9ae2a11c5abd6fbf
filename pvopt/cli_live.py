"""The service's subcommands: `run`, and `status`, `history`, `force`, `auto`, `off` that work
beside it (DESIGN §9)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from machines.controller import Controller, UnknownLoad
from machines.loads import CommandError
from pvopt import config as cfgmod
from pvopt.bus import BrokerUnavailable, OneShot
from pvopt.cli_common import (
    config_option,
    console,
    err_console,
    load_config,
    progress_bar,
    summary_table,
)
from pvopt.commands import Command, parse_duration
from pvopt.status import build_status
from pvopt.topics import CONTROL_TOPIC, STATUS_TOPIC
from state.store import SqliteStore, StoreError

COMMAND_WAIT_S = 10.0
LIVE_STATUS_WAIT_S = 2.0


def _fail(message: str) -> None:
    err_console.print(f"[red]error[/red] {message}", highlight=False)
    sys.exit(1)


def _open_store(cfg: cfgmod.Config) -> SqliteStore | None:
    if not Path(cfg.state.path).exists():
        return None
    try:
        return SqliteStore(cfg.state.path)
    except StoreError as exc:
        _fail(str(exc))
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
        _fail(str(exc))
        return
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


def status_table(doc: dict[str, Any], origin: str) -> Table:
    """The status document as a table: one row per load."""
    grid = doc.get("grid_w")
    meter = doc.get("meter", {})
    title = (
        f"{doc['time']} — grid {'?' if grid is None else f'{grid:+.0f} W'}"
        f"{' — METER STALE' if meter.get('stale') and grid is not None else ''} — {origin}"
    )
    table = Table(title=title)
    for col in ("load", "id", "state", "mode", "reason", "power W", "today Wh", "forced until"):
        table.add_column(col, justify="right" if col.endswith(("W", "Wh", "id")) else "left")
    table.add_column("water °C (min/eco/sol/max)")
    for e in doc["loads"]:
        temps = ""
        if e.get("temp_max") is not None:
            t = e.get("temperature_c")
            temps = (
                f"{'?' if t is None else f'{t:.1f}'} "
                f"({e['temp_min']:g}/{e['temp_eco']:g}/{e['temp_sol_min']:g}/{e['temp_max']:g})"
            )
        table.add_row(
            e["name"],
            str(e["id"]),
            e["state"],
            e["mode"],
            e["reason"],
            f"{e['power_w']:.0f}",
            f"{e['energy_today_wh']:.0f}",
            e["forced_until"] or "",
            temps,
        )
    notes = []
    if doc.get("dry_run"):
        notes.append("DRY RUN: no command sent")
    if meter.get("rejected"):
        notes.append(f"{meter['rejected']} meter payload(s) rejected")
    influx = doc.get("influxdb")
    if influx:
        behind = "" if not influx.get("error") else f" — waiting: {influx['error']}"
        notes.append(
            f"InfluxDB: {influx.get('written', 0)} interval(s) written this run, "
            f"{influx.get('dropped', 0)} dropped{behind}"
        )
    if notes:
        table.caption = " · ".join(notes)
    return table


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
        _fail(f"no state store at {cfg.state.path}: has `pvopt run` ever run with this config?")
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
        _fail(f"unknown load {key!r}; configured: {known}")
        raise


def send_command(cfg: cfgmod.Config, cmd: Command, shows: Any) -> None:
    """Publish `cmd` on regulation/control and wait until the status shows it (DESIGN §7)."""
    name = str(cmd.load)
    try:
        shot = OneShot(cfg.mqtt, [STATUS_TOPIC])
    except BrokerUnavailable as exc:
        _fail(str(exc))
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
            _fail(
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
        _fail(str(exc))
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
@click.option("--trace", "trace_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--start", default=None, metavar="HH:MM", help="Local time in the trace to start at.")
@click.option("--duration", default=None, help="How long to play (90s, 15m, 2h; default: all).")
@click.option("--json", "json_path", metavar="FILE", default=None, help="Write the KPIs as JSON.")
def house(
    config_path: str | None,
    trace_path: str,
    start: str | None,
    duration: str | None,
    json_path: str | None,
) -> None:
    """A virtual house in real time: TRACE's PV and load as meter messages over MQTT, the loads
    obeying their command topics. Prints the KPIs it measured when it ends."""
    from pvopt.traces import TraceError, load_trace, offset_of, window
    from pvopt.virtual_house import VirtualHouse

    cfg = load_config(config_path)
    try:
        trace = load_trace(trace_path)
        offset = offset_of(trace, start, cfg.site.tz) if start else 0
        seconds = int(parse_duration(duration)) if duration else trace.seconds - offset
        trace = window(trace, offset, seconds)
    except (TraceError, CommandError) as exc:
        _fail(str(exc))
        return
    vh = VirtualHouse(cfg, trace)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: vh.stopping.set())
    with progress_bar() as bar:
        task = bar.add_task(f"house {trace.name} from {start or 'its start'}", total=trace.seconds)
        result = vh.run(lambda done, _total: bar.update(task, completed=done))
    kpis = result.kpis
    if json_path:
        Path(json_path).write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
    console.print(summary_table(kpis, f"virtual house — {kpis['trace']} — {kpis['seconds']} s"))


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
        _fail(f"not a date: {day!r} (YYYY-MM-DD)")
        return
    if not 1 <= days <= 3660:
        _fail("--days must be between 1 and 3660")
    store = _open_store(cfg)
    if store is None:
        _fail(f"no state store at {cfg.state.path}: has `pvopt run` ever run with this config?")
        return
    names = [s.name for s in cfg.specs()]
    rows = report(store, tz, names, last, days)
    store.close()
    if as_json:
        click.echo(json.dumps([{"date": d.isoformat(), **t} for d, t, _ in rows], indent=2))
    else:
        console.print(energy_table(rows, names))
    if plot_path:
        from pvopt.plot import plot_day

        d, _, intervals = rows[-1]
        plot_day(intervals, names, tz, f"{d.isoformat()} — {cfg.source}", plot_path)
        console.print(f"plot written to {plot_path}", highlight=False)


def energy_table(rows: list[Any], names: list[str]) -> Table:
    table = Table(title="energy (kWh) from the local store")
    table.add_column("day")
    for name in names:
        table.add_column(name, justify="right")
    for col in (
        "loads",
        "diverted",
        "import",
        "export",
        "PV",
        "surplus kept",
        "self-cons.",
        "self-suff.",
    ):
        table.add_column(col, justify="right")

    def kwh(v: float | None) -> str:
        return "—" if v is None else f"{v / 1000:.2f}"

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.0f} %"

    for d, t, _ in rows:
        partial = "" if t["covered_h"] >= 23 else f" ({t['covered_h']:g} h)"
        table.add_row(
            f"{d.isoformat()}{partial}",
            *(kwh(t["loads"][n]) for n in names),
            kwh(t["loads_wh"]),
            kwh(t["diverted_wh"]),
            kwh(t["import_wh"]),
            kwh(t["export_wh"]),
            kwh(t["pv_wh"]),
            pct(t["surplus_kept"]),
            pct(t["self_consumption"]),
            pct(t["self_sufficiency"]),
        )
    return table
