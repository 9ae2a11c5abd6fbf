"""`pvopt forecast`: the solar forecast the store holds, its age and whether the planner may
use it; `--fetch` fetches one now and stores it (docs/forecast.md)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from machines.errors import StoreError
from machines.forecast import Forecast, ForecastStatus, assess, iso
from pvopt import config as cfgmod
from pvopt.cli.common import config_option, console, err_console, fail, load_config
from pvopt.tables import forecast_table

FETCH_BACKOFF_S = (2.0, 10.0)  # the command's retries: first delay, longest; a person waits


@click.command("forecast")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the forecast as JSON.")
@click.option("--fetch", is_flag=True, help="Fetch now, store it, then show it (writes the store).")
@click.option(
    "--attempts",
    default=3,
    show_default=True,
    type=click.IntRange(1, 10),
    help="With --fetch: tries before giving up (2 s, 4 s, … between them).",
)
def forecast(config_path: str | None, as_json: bool, fetch: bool, attempts: int) -> None:
    """The hourly solar forecast from the local store: source, age, fresh or stale. Only
    reads the store unless --fetch."""
    cfg = load_config(config_path)
    fc = cfg.forecast
    if fc is None:
        fail(f"{cfg.source}: no `forecast:` section; docs/forecast.md says how to add one")
    now = time.time()
    error = None
    if fetch:
        kept, fetched_at, error = _fetch(cfg, fc, attempts)
    else:
        kept, fetched_at = _stored(cfg, fc.source)
    status = assess(kept, now, fc.max_age_h * 3600, error)
    if as_json:
        click.echo(json.dumps(_document(status, fetched_at, now), indent=2))
    elif kept is None:
        err_console.print(f"[red]error[/red] {status.reason}", highlight=False)
        hint = "" if fetch else "; `pvopt forecast --fetch` fetches one now"
        fail(f"no {fc.source} forecast in {cfg.state.path}{hint}")
    else:
        console.print(forecast_table(kept, status, cfg.site.tz, now))
    if error is not None:
        fail(f"fetch failed: {error}")


def _stored(cfg: cfgmod.Config, source: str) -> tuple[Forecast | None, float | None]:
    """The source's last good forecast, read-only (the store is never created nor written)."""
    from pvopt.cli.service import _open_store

    store = _open_store(cfg)
    if store is None:
        return None, None
    try:
        kept = store.load_forecast(source)
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.close()
    return (kept[0], kept[1]) if kept else (None, None)


def _fetch(
    cfg: cfgmod.Config, fc: cfgmod.ForecastConfig, attempts: int
) -> tuple[Forecast | None, float | None, str | None]:
    """Fetch with a few retries and store what came: (forecast in use, fetched at, error)."""
    from jobs.forecast import Backoff, ForecastKeeper
    from pvopt.adapters.forecast import source_for
    from state.store import SqliteStore

    if fc.source == "topic":
        fail(
            "source topic: the forecast comes when another system publishes it, and `pvopt run` "
            "keeps it; there is nothing to fetch (`pvopt forecast` shows the stored one)"
        )
    try:
        store = SqliteStore(cfg.state.path)
    except StoreError as exc:
        fail(str(exc))
    try:
        keeper = ForecastKeeper(
            source_for(fc, cfg.site.tz),
            store,
            every_s=fc.every_min * 60,
            max_age_s=fc.max_age_h * 3600,
            backoff=Backoff(first_s=FETCH_BACKOFF_S[0], max_s=FETCH_BACKOFF_S[1]),
        )
        keeper.fetch_now(time.time, time.sleep, attempts)
    finally:
        store.close()
    return keeper.forecast, keeper.fetched_at, keeper.last_error


def _document(status: ForecastStatus, fetched_at: float | None, now: float) -> dict[str, Any]:
    f = status.forecast
    return {
        "status": status.freshness.value,
        "fallback": status.fallback,
        "reason": status.reason,
        "source": f.source if f else None,
        "issued_at": iso(f.issued_at) if f else None,
        "age_s": round(f.age_s(now), 1) if f else None,
        "fetched_at": (iso(fetched_at) if fetched_at is not None else None),
        "slots": [{"start": iso(s.start), "pv_w": s.pv_w} for s in f.slots] if f else [],
    }


COMMANDS = (forecast,)
