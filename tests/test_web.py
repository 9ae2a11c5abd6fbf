"""The page's HTTP side without a browser: config rules, login, cross-site checks, commands
through the `Site` port, the live stream's fan-out, the store views."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from starlette.testclient import TestClient

from machines.commands import Command, Outcome
from pvopt import config
from pvopt.adapters.web import views
from pvopt.adapters.web.app import build_app
from pvopt.adapters.web.auth import COOKIE, FAILURES_PER_MIN, SESSION_S, Guard
from pvopt.adapters.web.hub import Hub
from pvopt.adapters.web.server import WebServer
from state.store import MemoryStore
from tests.clock import FakeClock
from tests.conftest import EXAMPLES, PARIS, T0

PASSWORD = "correct horse battery"
LOCAL = "http://127.0.0.1:8080"
ACT = {"x-pvopt": "1"}


class FakeSite:
    """Records commands; refuses the ones the real service would (no thresholds, unknown)."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def submit(self, cmd: Command, source: str) -> Outcome:
        assert source == "web"
        if cmd.load == "pool_pump" and cmd.action == "set":
            return Outcome(False, "pool_pump has no temperature thresholds")
        self.commands.append(cmd)
        return Outcome(True, f"{cmd.load}: {cmd.action}")


def house_with(web: dict[str, Any] | None) -> config.Config:
    data = yaml.safe_load((EXAMPLES / "house.yml").read_text())
    if web is not None:
        data["web"] = web
    return config.Config.model_validate(data)


def client(
    web: dict[str, Any], base_url: str = LOCAL, clock: FakeClock | None = None
) -> tuple[TestClient, FakeSite, Hub]:
    """The app on a virtual clock (the Guard counts sessions and failures on its monotonic)."""
    clock = clock or FakeClock()
    cfg = house_with(web)
    assert cfg.web is not None
    site, hub, guard = FakeSite(), Hub(), Guard(cfg.web, clock.monotonic)
    guard.failure_delay_s = 0.0
    app = build_app(cfg, site, hub, guard, lambda: None, clock=clock)
    return TestClient(app, base_url=base_url), site, hub


# -- config ------------------------------------------------------------------------------------
def test_the_page_is_off_without_the_section_and_loopback_by_default() -> None:
    assert house_with(None).web is None
    web = house_with({}).web
    assert web is not None and (web.host, web.port, web.loopback) == ("127.0.0.1", 8080, True)
    assert house_with({"listen": "[::1]:9000"}).web.loopback  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"listen": "0.0.0.0:8080"}, "set web.password"),
        ({"listen": "192.168.1.20:8080"}, "set web.password"),
        ({"listen": "pvopt.lan:8080"}, "set web.password"),
        ({"listen": "127.0.0.1"}, "not host:port"),
        ({"listen": "127.0.0.1:99999"}, "not host:port"),
        ({"read_without_password": True}, "needs a password"),
        ({"listen": "0.0.0.0:8080", "password": "short"}, "at least 8"),
    ],
)
def test_no_default_credential_on_the_network(web: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        house_with(web)


def test_the_password_never_shows() -> None:
    web = house_with({"listen": "0.0.0.0:8080", "password": PASSWORD}).web
    assert PASSWORD not in repr(web) and PASSWORD not in str(web)


# -- reading -----------------------------------------------------------------------------------
def test_the_page_and_its_assets_are_served_with_a_strict_policy() -> None:
    c, _, _ = client({"listen": "0.0.0.0:8080", "password": PASSWORD})
    page = c.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for asset in ("app.js", "app.css"):
        assert c.get(f"/static/{asset}").status_code == 200


def test_reading_needs_the_password_unless_the_config_opens_it() -> None:
    c, _, hub = client({"listen": "0.0.0.0:8080", "password": PASSWORD})
    hub.publish('{"loads": []}')
    for path in ("/api/status", "/api/today", "/api/history", "/api/events"):
        assert c.get(path).status_code == 401, path
    assert c.get("/api/session").json()["can_read"] is False
    c, _, hub = client({"listen": "0.0.0.0:8080", "password": PASSWORD, "read_without_password": 1})
    hub.publish('{"loads": []}')
    assert c.get("/api/status").json() == {"loads": []}
    assert (
        c.post("/api/command", json={"command": "off", "name": 0}, headers=ACT).status_code == 401
    )


def test_without_a_password_only_loopback_host_names_are_answered() -> None:
    c, _, _ = client({})
    assert c.get("/api/session").status_code == 200
    rebound, _, _ = client({}, base_url="http://attacker.example:8080")  # DNS rebinding
    r = rebound.get("/api/session")
    assert r.status_code == 403 and "loopback only" in r.json()["error"]


# -- login -------------------------------------------------------------------------------------
def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it() -> None:
    c, site, hub = client({"listen": "0.0.0.0:8080", "password": PASSWORD})
    hub.publish("{}")
    assert c.post("/api/login", json={"password": "wrong password"}, headers=ACT).status_code == 401
    assert COOKIE not in c.cookies
    r = c.post("/api/login", json={"password": PASSWORD}, headers=ACT)
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/api/status").status_code == 200
    assert (
        c.post("/api/command", json={"command": "off", "name": 0}, headers=ACT).status_code == 200
    )
    assert site.commands == [Command("off", 0)]
    assert c.post("/api/logout", json={}, headers=ACT).status_code == 200
    c.cookies.clear()
    assert c.get("/api/status").status_code == 401


def test_a_session_lasts_session_s_on_the_monotonic_clock(clock: FakeClock) -> None:
    c, _, hub = client({"listen": "0.0.0.0:8080", "password": PASSWORD}, clock=clock)
    hub.publish("{}")
    assert c.post("/api/login", json={"password": PASSWORD}, headers=ACT).status_code == 200
    clock.set(clock() - 86400)  # a wall-clock step changes nothing
    clock.advance(SESSION_S - 1)
    assert c.get("/api/status").status_code == 200
    clock.advance(1)
    assert c.get("/api/status").status_code == 401


def test_a_bearer_token_works_for_scripts_and_a_wrong_one_changes_nothing() -> None:
    c, site, _ = client({"listen": "0.0.0.0:8080", "password": PASSWORD})
    body = {"command": "force", "name": "water_heater", "duration": 600}
    wrong = {**ACT, "authorization": "Bearer nope-nope-nope"}
    assert c.post("/api/command", json=body, headers=wrong).status_code == 401
    assert site.commands == []
    right = {**ACT, "authorization": f"Bearer {PASSWORD}"}
    assert c.post("/api/command", json=body, headers=right).json()["ok"] is True
    assert site.commands == [Command("force", "water_heater", duration_s=600.0)]


def test_guessing_is_throttled_for_a_minute(clock: FakeClock) -> None:
    c, _, _ = client({"listen": "0.0.0.0:8080", "password": PASSWORD}, clock=clock)
    guard_failures = [
        c.post("/api/login", json={"password": f"guess {n}"}, headers=ACT).status_code
        for n in range(FAILURES_PER_MIN)
    ]
    assert set(guard_failures) == {401}
    r = c.post("/api/login", json={"password": PASSWORD}, headers=ACT)
    assert r.status_code == 429  # even the right one, for the rest of the minute
    clock.advance(59)
    assert c.post("/api/login", json={"password": PASSWORD}, headers=ACT).status_code == 429
    clock.advance(2)  # the guesses are over a minute old
    assert c.post("/api/login", json={"password": PASSWORD}, headers=ACT).status_code == 200


# -- cross-site --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "header is missing"),
        ({**ACT, "sec-fetch-site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ({**ACT, "sec-fetch-site": "same-site"}, "Sec-Fetch-Site: same-site"),
        ({**ACT, "origin": "http://evil.example"}, "Origin http://evil.example"),
        ({**ACT, "origin": "null"}, "Origin null"),
    ],
)
def test_state_changing_requests_must_come_from_the_page(headers: dict[str, str], why: str) -> None:
    c, site, _ = client({})  # even with no password (loopback): a web page may POST there
    r = c.post("/api/command", json={"command": "off", "name": 0}, headers=headers)
    assert r.status_code == 403 and why in r.json()["error"]
    assert site.commands == []


def test_a_form_post_is_refused() -> None:
    c, site, _ = client({})
    r = c.post(
        "/api/command",
        content=b'{"command":"off","name":0}',
        headers={**ACT, "content-type": "text/plain"},
    )
    assert r.status_code == 403 and "JSON only" in r.json()["error"]
    assert site.commands == []


def test_same_origin_requests_pass() -> None:
    c, site, _ = client({})
    headers = {**ACT, "origin": LOCAL, "sec-fetch-site": "same-origin"}
    assert c.post("/api/command", json={"command": "auto", "name": 1}, headers=headers).json()["ok"]
    assert site.commands == [Command("auto", 1)]


# -- commands ----------------------------------------------------------------------------------
def test_commands_use_the_control_topics_validation_and_show_refusals() -> None:
    c, site, _ = client({})
    bad = c.post(
        "/api/command", json={"command": "force", "name": "x", "duration": -5}, headers=ACT
    )
    assert bad.status_code == 400 and "duration" in bad.json()["error"]
    unknown = c.post("/api/command", json={"command": "explode", "name": "x"}, headers=ACT)
    assert unknown.status_code == 400 and "unknown command" in unknown.json()["error"]
    refused = c.post(
        "/api/command", json={"command": "set", "name": "pool_pump", "temp_max": 60}, headers=ACT
    )
    assert refused.status_code == 409
    assert refused.json() == {"ok": False, "error": "pool_pump has no temperature thresholds"}
    big = c.post(
        "/api/command",
        content=b"{" + b" " * 5000 + b"}",
        headers={**ACT, "content-type": "application/json"},
    )
    assert big.status_code == 413
    assert site.commands == []


def test_unforce_is_auto_as_on_regulation_control() -> None:
    c, site, _ = client({})
    c.post("/api/command", json={"command": "unforce", "name": "towel_rail"}, headers=ACT)
    assert site.commands == [Command("auto", "towel_rail")]


# -- the live stream ---------------------------------------------------------------------------
def test_a_slow_reader_keeps_only_the_newest_status() -> None:
    async def run() -> None:
        hub = Hub(max_streams=2)
        slow, fast = hub.subscribe(), hub.subscribe()
        assert slow is not None and fast is not None
        assert hub.subscribe() is None  # the cap: a flood of streams is refused
        for n in range(1000):
            hub.publish(f'{{"n": {n}}}')
            if n == 500:
                assert await fast.get() == '{"n": 500}'
        assert slow.qsize() == 1 and await slow.get() == '{"n": 999}'
        assert await fast.get() == '{"n": 999}'
        hub.unsubscribe(slow)
        hub.publish(None)  # shutdown ends the streams
        assert await fast.get() is None
        assert hub.latest == '{"n": 999}'

    asyncio.run(run())


# -- views -------------------------------------------------------------------------------------
def test_today_gives_powers_per_interval_and_the_days_totals() -> None:
    store = MemoryStore()
    doc = {
        "end": int(T0),
        "interval_s": 60,
        "grid": {"import_wh": 1.0, "export_wh": 10.0, "diverted_wh": 30.0, "loads_wh": 30.0},
        "loads": {"water_heater": {"energy_wh": 30.0, "power_w": 1800.0, "temperature_c": 52.5}},
    }
    store.save({}, [], None, [doc])
    day = views.local_today(T0, PARIS)
    out = views.today(store, PARIS, ["water_heater", "pool_pump"], day)
    (point,) = out["points"]
    assert (point["import_w"], point["export_w"], point["pv_w"]) == (60.0, 600.0, None)
    assert point["loads_w"] == {"water_heater": 1800.0}
    assert point["temperature_c"] == {"water_heater": 52.5}
    assert out["totals"]["surplus_kept"] == 0.75
    assert views.today(None, PARIS, ["water_heater"], day)["points"] == []


def test_schedules_show_their_next_firings(house: config.Config) -> None:
    items = views.schedules(house.schedule_list(), T0, PARIS)  # Monday 10:00
    offpeak, daily = items
    assert offpeak["when"] == "02:05–06:50"
    assert [e["event"] for e in offpeak["next"]] == ["open", "close", "open"]
    assert daily["next"][0] == {"at": "2026-06-15T16:00:00+02:00", "event": "check"}


def test_the_assets_weigh_little() -> None:
    static = Path(views.__file__).parent / "static"
    assert sum(p.stat().st_size for p in static.iterdir()) <= 300_000


# -- each load's device ------------------------------------------------------------------------
def load(**fields: Any) -> dict[str, Any]:
    """One load of the status (machines/status.py), its device online and measuring."""
    base = {
        "name": "water_heater",
        "state": "solar",
        "reason": "surplus",
        "power_w": 1200.0,
        "measured_w": 1180.4,
        "online": True,
        "energy_from": "measured",
    }
    return {**base, **fields}


def test_measured_power_shows_beside_the_commanded_one() -> None:
    nb = views.NBSP
    v = views.load_view(load())
    assert v["power"] == f"1{nb}180{nb}W measured / 1{nb}200{nb}W commanded"
    assert v["badge"] is None
    assert v["energy_from"] == "energy from the device's measurement"
    v = views.load_view(load(measured_w=None, energy_from="commanded", online=None))
    assert v["power"] == f"1{nb}200{nb}W commanded"  # a device that cannot measure
    assert (v["badge"], v["energy_from"]) == (None, "energy from the command")


@pytest.mark.parametrize(
    ("fields", "badge"),
    [
        ({"online": False, "reason": "device_offline"}, ("device offline", "bad")),
        ({"online": False, "reason": "manual"}, ("device offline", "bad")),  # offline wins
        ({"reason": "device_not_following"}, ("not following", "bad")),
        ({"reason": "thermostat_cut"}, ("thermostat cut", "info")),
        ({"online": None, "reason": "no_surplus"}, None),
    ],
)
def test_a_device_in_trouble_gets_a_badge(
    fields: dict[str, Any], badge: tuple[str, str] | None
) -> None:
    got = views.load_view(load(**fields))["badge"]
    assert (None if got is None else (got["text"], got["tone"])) == badge


def test_an_offline_device_says_no_energy_is_counted() -> None:
    v = views.load_view(load(online=False, measured_w=None, power_w=0.0, energy_from="offline"))
    assert v["energy_from"] == "no energy counted: device offline"
    assert v["power"] == f"0{views.NBSP}W commanded"
    assert views.load_view(load(energy_from="later"))["energy_from"] == "later"  # unknown: as is


def test_the_page_gets_each_load_worded_and_the_services_document_is_left_alone() -> None:
    server = WebServer(house_with({}), FakeSite())  # never started: its hub is enough
    doc = {"grid_w": -300.0, "loads": [load(), load(name="pool_pump", online=False)]}
    before = json.dumps(doc)
    server._publish(doc)
    assert json.dumps(doc) == before  # the service still publishes it on MQTT
    assert server.hub.latest is not None
    shown = json.loads(server.hub.latest)
    assert [x["view"]["badge"] for x in shown["loads"]] == [
        None,
        {"text": "device offline", "tone": "bad"},
    ]
    assert shown["grid_w"] == -300.0


def test_the_card_has_a_place_for_each_devices_words() -> None:
    html = (Path(views.__file__).parent / "static" / "index.html").read_text()
    js = (Path(views.__file__).parent / "static" / "app.js").read_text()
    card = html.split('<template id="load-card">')[1]
    for cls in ("badge", "power", "energy-from"):
        assert f'class="{cls}' in card or f'pill {cls}"' in card, cls
        assert f'".{cls}"' in js, cls
    for key in ("v.power", "v.badge.text", "v.energy_from"):
        assert key in js, key
