"""The page in a real browser: Playwright drives Debian's chromium against a real `pvopt run`
(subprocess) regulating the virtual house through a real Mosquitto."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pvopt import config
from pvopt.adapters.mqtt import MqttBus
from pvsim.live import hermetic_env, site_config, spawn_service, stop_service
from pvsim.servers.loopback import free_port
from pvsim.servers.mosquitto import Mosquitto
from pvsim.simulator import simulate
from pvsim.traces import Trace, load_trace, offset_of, window
from pvsim.virtual_house import VirtualHouse
from state.store import SqliteStore
from tests.conftest import EXAMPLES, ROOT, TRACES

pw = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"  # Debian's package (the Makefile installs it)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
GRID_TOPIC = "home/grid"
HISTORY_S = 6 * 3600  # of simulated history before now, for today's chart
LIVE_S = 2.0  # a meter message reaches the page within this
PHONE = {"width": 390, "height": 844}
SCREENSHOT = ROOT / "docs" / "web-phone.png"


@dataclass
class Site:
    url: str
    cfg_path: Path
    grid: list[tuple[float, float]]  # (monotonic arrival, W) of every meter message
    cond: threading.Condition


def wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        threading.Event().wait(0.1)  # a poll interval, not a sleep standing in for a condition


def pvopt_status(cfg_path: Path) -> dict[str, dict[str, Any]]:
    """`pvopt status --json`, as a user would run it beside the service: loads by name."""
    out = subprocess.run(
        [sys.executable, "-m", "pvopt.cli", "status", "--json", "--config", str(cfg_path)],
        env=hermetic_env(),
        capture_output=True,
        timeout=30,
        check=True,
    )
    return {entry["name"]: entry for entry in json.loads(out.stdout)["loads"]}


def seed_history(cfg: config.Config, full: Trace, interval_s: int = 900) -> None:
    """Today's chart needs a history: the simulator's run of the trace's last hours before
    this time of day, reshaped into the store's intervals and dated today."""
    tz = cfg.site.tz
    now = time.time()
    midnight = datetime.combine(datetime.fromtimestamp(now, tz).date(), dtime(0), tz).timestamp()
    upto = int(now - midnight) // interval_s * interval_s
    start = max(0, upto - HISTORY_S)
    if upto - start < interval_s:
        return
    trace = window(full, offset_of(full, "00:00", tz) + start, upto - start)
    series = simulate(trace, cfg, record=True).series
    names = [s.name for s in cfg.specs()]
    per = interval_s // 10  # the simulator records every 10 s
    store = SqliteStore(cfg.state.path)
    intervals = []
    for j in range(0, len(series["t"]) - per + 1, per):
        cut = slice(j, j + per)
        grid = series["grid"][cut]
        loads = {n: series[f"load:{n}"][cut] for n in names}
        total = sum(loads.values())
        h = 10 / 3600
        temp = series["temp"][cut]
        doc: dict[str, Any] = {
            "end": int(midnight + start + (j + per) * 10),
            "interval_s": interval_s,
            "grid": {
                "covered_s": interval_s,
                "meter_s": interval_s,
                "import_wh": float((grid.clip(min=0)).sum() * h),
                "export_wh": float((-grid).clip(min=0).sum() * h),
                "diverted_wh": float(((total - grid).clip(min=0)).clip(max=total).sum() * h),
                "loads_wh": float(total.sum() * h),
                "pv_wh": float(series["pv"][cut].sum() * h),
            },
            "loads": {
                n: {"energy_wh": float(w.sum() * h), "power_w": float(w.mean())}
                for n, w in loads.items()
            },
        }
        doc["loads"][names[0]]["temperature_c"] = round(float(temp.mean()), 2)
        intervals.append(doc)
    store.save({}, [], None, intervals)
    store.close()


def midday_zone(now: float) -> str:
    """A fixed-offset zone where `now` is between 12:00 and 13:00: today's chart then has a
    morning of history, whatever time of day the tests run (in the first quarter hour after
    the site's midnight it was empty, and the screenshot test failed)."""
    offset = 12 - datetime.fromtimestamp(now, UTC).hour  # within −11..+12 h
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/ signs are inverted


def same_wall_clock(trace: Trace, src: ZoneInfo, dst: ZoneInfo) -> Trace:
    """`trace` replayed in `dst` at the local times it had in `src`: the sun at the same hours."""
    local = datetime.fromtimestamp(trace.start, src).replace(tzinfo=dst)
    return replace(trace, start=local.timestamp())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    zone = midday_zone(time.time())
    home = config.load(EXAMPLES / "house.yml", environ={}).site.tz
    full = same_wall_clock(load_trace(TRACES / "broken_clouds.csv.gz"), home, ZoneInfo(zone))
    with Mosquitto() as broker:
        port = free_port()
        cfg_path = site_config(
            EXAMPLES / "house.yml",
            tmp_path_factory.mktemp("web"),
            broker.port,
            sections={
                "meter": {"kind": "grid", "grid_topic": GRID_TOPIC, "pv_topic": "home/pv"},
                "web": {"listen": f"127.0.0.1:{port}", "password": PASSWORD},
                "state": {"checkpoint_s": 5},
                "sim": {"meter": {"period_s": 4}},  # meter values far enough apart to time
                "site": {"timezone": zone},
                "tariff": {"kind": "base", "prices": {"base": 0.25}, "export": 0.04},
            },
        )
        cfg = config.load(cfg_path, environ={})
        seed_history(cfg, full)
        trace = window(full, offset_of(full, "12:00", cfg.site.tz), 1800)
        grid: list[tuple[float, float]] = []
        cond = threading.Condition()

        def keep(_topic: str, payload: bytes) -> None:
            with cond:
                grid.append((time.monotonic(), float(payload)))
                cond.notify_all()

        meter = MqttBus(cfg.mqtt, [GRID_TOPIC], keep, client_id="test-web-meter")
        meter.start()
        proc = spawn_service(cfg_path)
        house = VirtualHouse(cfg, trace)
        runner = threading.Thread(target=house.run, daemon=True)
        runner.start()
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: answers(url + "/api/session"), 30, f"pvopt run's page on {url}")
            yield Site(f"http://127.0.0.1:{port}", cfg_path, grid, cond)
        finally:
            house.stopping.set()
            runner.join(10)
            meter.stop()
            assert stop_service(proc) == 0, (cfg_path.parent / "run.log").read_text()[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium (make packages does)")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Any, site: Site, **context: Any) -> tuple[Any, list[str]]:
    """A fresh context's page at the site, with its console errors collected."""
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.url + "/")
    return page, errors


def log_in(page: Any, password: str = PASSWORD) -> None:
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


def card(page: Any, name: str) -> Any:
    return page.locator(f"article.load[data-name={name}]")


def test_page_shows_the_loads_live_without_console_errors(browser: Any, site: Site) -> None:
    page, errors = open_page(browser, site)
    pw.expect(page.locator("#login-form")).to_be_visible()
    pw.expect(page.locator("#main")).to_be_hidden()
    log_in(page)
    for name in ("water_heater", "pool_pump", "towel_rail"):
        pw.expect(card(page, name)).to_be_visible(timeout=15_000)
    pw.expect(card(page, "water_heater").locator(".temp")).not_to_have_text("?", timeout=15_000)
    pw.expect(page.locator("#link")).to_have_text("live")
    # a meter message reaches the page within 2 s (timed from its arrival on the broker)
    delays = []
    with site.cond:
        seen = len(site.grid)  # time only messages sent from now on
    while len(delays) < 3:
        with site.cond:
            if not site.cond.wait_for(lambda n=seen: len(site.grid) > n, 15):
                pytest.fail("no meter message from the virtual house")
            arrived, watts = site.grid[-1]
            seen = len(site.grid)
        page.wait_for_function(
            "w => Math.abs(Number(document.querySelector('#grid').dataset.w) - w) < 0.05",
            arg=watts,
            timeout=LIVE_S * 1000,
        )
        delays.append(time.monotonic() - arrived)
    assert max(delays) < LIVE_S, delays
    pw.expect(page.locator("#schedules li")).to_have_count(2)
    pw.expect(page.locator("#energy")).to_contain_text("Share of surplus kept")
    # today's money from the seeded history, priced at the tariff; no battery, no battery line
    pw.expect(page.locator("#money")).to_contain_text("saved by the loads, grid bill €")
    pw.expect(page.locator("#battery-fact")).to_be_hidden()
    assert errors == []


def test_boost_from_the_page_reaches_the_service(browser: Any, site: Site) -> None:
    page, errors = open_page(browser, site)
    log_in(page)
    heater = card(page, "water_heater")
    heater.locator(".duration").select_option("3600")
    heater.locator("button[data-action=boost]").click()
    pw.expect(heater.locator(".result")).to_contain_text("forced at full power for 3600 s")
    pw.expect(heater.locator(".state")).to_have_text("boost", timeout=LIVE_S * 1000)
    wait_for(
        lambda: pvopt_status(site.cfg_path)["water_heater"]["state"] == "boost",
        15,
        "pvopt status to show the water heater in boost",
    )
    # a refusal from the service's own validation is shown as such
    heater.locator(".thresholds summary").click()
    heater.locator("input[name=temp_max]").fill("40")  # below temp_min: out of order
    heater.locator(".threshold-form button").click()
    pw.expect(heater.locator(".result")).to_contain_text("Refused:")
    pw.expect(heater.locator(".result")).to_contain_text("breaks temp_min < temp_eco")
    assert pvopt_status(site.cfg_path)["water_heater"]["temp_max"] != 40
    heater.locator("button[data-action=auto]").click()
    pw.expect(heater.locator(".state")).not_to_have_text("boost", timeout=LIVE_S * 1000)
    # the refusal's 409 is the only thing chromium logs
    assert all("409" in e for e in errors), errors


def test_a_wrong_password_is_refused_and_changes_nothing(browser: Any, site: Site) -> None:
    before = pvopt_status(site.cfg_path)["pool_pump"]
    page, _ = open_page(browser, site)
    log_in(page, "not the password")
    pw.expect(page.locator("#login-error")).to_have_text("wrong password")
    assert not page.is_visible("#main")
    assert page.context.cookies() == []
    body = {"command": "force", "name": "pool_pump"}
    for auth in ({}, {"authorization": "Bearer not the password"}):
        r = page.request.post(
            site.url + "/api/command", data=body, headers={"x-pvopt": "1", **auth}
        )
        assert r.status == 401, r.text()
    assert page.request.get(site.url + "/api/status").status == 401
    after = pvopt_status(site.cfg_path)["pool_pump"]
    assert (after["state"], after["mode"]) == (before["state"], before["mode"])
    assert after["mode"] == "auto"


EVIL = """<!doctype html><html><body>
<form id="f" method="POST" action="{target}/api/command" enctype="text/plain">
<input name='{{"command":"force","name":"pool_pump","x":"' value='"}}'>
</form>
<script>document.getElementById("f").submit();</script>
</body></html>"""


def test_a_cross_site_post_is_refused(browser: Any, site: Site) -> None:
    page, _ = open_page(browser, site)
    log_in(page)  # the victim is logged in: the cookie exists
    pw.expect(card(page, "pool_pump")).to_be_visible()
    evil = f"http://localhost:{free_port()}/evil.html"  # another site, on loopback
    page.route(evil, lambda route: route.fulfill(body=EVIL.format(target=site.url)))
    with page.expect_response(site.url + "/api/command") as caught:
        page.goto(evil)
    response = caught.value
    assert response.status == 403
    assert "cross-site request refused" in response.text()
    assert pvopt_status(site.cfg_path)["pool_pump"]["mode"] == "auto"


def test_phone_screenshot_for_the_readme(browser: Any, site: Site, tmp_path: Path) -> None:
    page, errors = open_page(browser, site, viewport=PHONE, device_scale_factor=2)
    log_in(page)
    pw.expect(card(page, "towel_rail")).to_be_visible()
    pw.expect(page.locator("#chart svg path").first).to_be_attached()
    pw.expect(card(page, "water_heater").locator(".temp")).not_to_have_text("?", timeout=15_000)
    page.wait_for_function("document.querySelector('#grid').dataset.w !== ''")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "nothing overflows a phone's width"
    shot = tmp_path / "web-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("PVOPT_SCREENSHOT"):  # `make screenshot`: refresh docs/web.md's image
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)
    assert errors == []


class NoSite:
    def submit(self, cmd: Any, source: str) -> Any:
        raise AssertionError("no command expected")


@contextmanager
def pushed_page(house: config.Config, tmp_path: Path) -> Iterator[tuple[Any, Site]]:
    """The web page alone, fed by the status documents a test pushes (no service behind)."""
    from pvopt.adapters.web import WebServer

    port = free_port()
    cfg = house.model_copy(
        update={
            "web": config.WebConfig(listen=f"127.0.0.1:{port}"),
            "state": config.StateConfig(path=str(tmp_path / "none.db")),
        }
    )
    server = WebServer(cfg, NoSite())
    server.start()
    try:
        yield server, Site(f"http://127.0.0.1:{port}", tmp_path, [], cond=threading.Condition())
    finally:
        server.stop()


def test_trouble_is_shown_plainly(browser: Any, house: config.Config, tmp_path: Path) -> None:
    """A stale meter, a lost broker and an InfluxDB backlog, as the service reports them."""
    with pushed_page(house, tmp_path) as (server, site):
        doc: dict[str, Any] = {
            "time": "2026-06-15T10:00:00+02:00",
            "grid_w": 840.0,
            "meter": {"age_s": 95.0, "stale": True, "pv_w": None},
            "mqtt": {"connected": False},
            "influxdb": {"backlog_s": 3600, "error": "connection refused"},
            "policy": "default",
            "dry_run": False,
            "loads": [],
        }
        server.push(doc)
        page, errors = open_page(browser, site)
        alerts = page.locator("#alerts .alert")
        pw.expect(alerts).to_have_count(3)
        pw.expect(alerts.nth(0)).to_contain_text("MQTT broker unreachable")
        pw.expect(alerts.nth(1)).to_contain_text("Meter stale")
        pw.expect(alerts.nth(2)).to_contain_text(
            "InfluxDB backlog: 60 min waiting — connection refused"
        )
        pw.expect(page.locator("#grid")).to_have_text("840 W")
        server.push(
            {
                **doc,
                "meter": {"age_s": 1.0, "stale": False},
                "mqtt": {"connected": True},
                "influxdb": {"backlog_s": 0, "error": None},
            }
        )
        pw.expect(alerts).to_have_count(0)
        assert errors == []


def test_a_devices_trouble_is_shown_on_its_card(
    browser: Any, house: config.Config, tmp_path: Path
) -> None:
    """Measured beside commanded power, and the offline badge, as the status reports them."""
    with pushed_page(house, tmp_path) as (server, site):
        base = {
            "mode": "auto",
            "forced_until": None,
            "temperature_c": None,
            **dict.fromkeys(("temp_min", "temp_eco", "temp_sol_min", "temp_max")),
        }
        pump = {
            **base,
            "name": "pool_pump",
            "state": "solar",
            "reason": "surplus",
            "power_w": 1200.0,
            "measured_w": 1180.0,
            "online": True,
            "energy_from": "measured",
        }
        doc: dict[str, Any] = {
            "time": "2026-06-15T10:00:00+02:00",
            "grid_w": -300.0,
            "meter": {"age_s": 1.0, "stale": False},
            "policy": "default",
            "dry_run": False,
            "loads": [pump],
        }
        server.push(doc)
        page, errors = open_page(browser, site)
        pump_card = card(page, "pool_pump")
        nb = "\u00a0"
        pw.expect(pump_card.locator(".power")).to_have_text(
            f"1{nb}180{nb}W measured / 1{nb}200{nb}W commanded"
        )
        pw.expect(pump_card.locator(".badge")).to_be_hidden()
        offline = {
            **pump,
            "state": "off",
            "reason": "device_offline",
            "power_w": 0.0,
            "measured_w": None,
            "online": False,
            "energy_from": "offline",
        }
        server.push({**doc, "loads": [offline]})
        pw.expect(pump_card.locator(".badge")).to_have_text("device offline")
        pw.expect(pump_card.locator(".energy-from")).to_have_text(
            "no energy counted: device offline"
        )
        pw.expect(pump_card).to_have_class("card load trouble")
        assert errors == []
