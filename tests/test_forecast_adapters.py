"""The forecast's sources against a local HTTP stub (127.0.0.1, port 0) serving the vendors'
documented answers; nothing reaches the internet."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from jobs.forecast import Backoff, ForecastKeeper
from machines.errors import ForecastError, ForecastRateLimited, ForecastUnavailable
from machines.forecast import Forecast, Freshness, Slot
from pvopt.adapters.forecast import ForecastSolar, OpenMeteo, TopicForecast, source_for
from pvopt.config import ForecastConfig
from pvsim.servers.loopback import free_port
from state.store import MemoryStore

PARIS = ZoneInfo("Europe/Paris")
T6 = 1_796_623_200  # 2026-12-07T06:00:00Z
H = 3600

# The shape of https://open-meteo.com/en/docs ("JSON Return Object"), with timeformat=unixtime:
# each value is the mean of the hour *before* its time.
OPEN_METEO = {
    "latitude": 45.76,
    "longitude": 4.84,
    "generationtime_ms": 0.4,
    "utc_offset_seconds": 0,
    "timezone": "GMT",
    "timezone_abbreviation": "GMT",
    "hourly_units": {"time": "unixtime", "global_tilted_irradiance": "W/m²"},
    "hourly": {
        "time": [T6 + 7 * H, T6 + 8 * H, T6 + 9 * H, T6 + 10 * H],
        "global_tilted_irradiance": [0.0, 250.0, -1.6, None],
    },
}
# The shape of https://doc.forecast.solar/api:estimate's answer with ?time=utc: power at each
# time (sunrise 07:42 local = 06:42 UTC), and its message block.
FORECAST_SOLAR = {
    "result": {
        "watts": {
            "2026-12-07T06:42:00+00:00": 0,
            "2026-12-07T07:00:00+00:00": 120,
            "2026-12-07T08:00:00+00:00": 600,
            "2026-12-07T09:00:00+00:00": 600,
        },
        "watt_hours_period": {},
        "watt_hours": {},
        "watt_hours_day": {"2026-12-07": 1100},
    },
    "message": {
        "code": 0,
        "type": "success",
        "text": "",
        "info": {"place": "Lyon", "timezone": "Europe/Paris", "time": "2026-12-07T06:30:00+01:00"},
        "ratelimit": {"period": 3600, "limit": 12, "remaining": 11},
    },
}


class Stub:
    """An HTTP server answering every GET from `answers` (status, body), last one repeated."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any]] = [(200, {})]
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.paths.append(self.path)
                status, body = stub.answers.pop(0) if len(stub.answers) > 1 else stub.answers[0]
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.server.shutdown()
    s.server.server_close()


def http_cfg(source: str, base_url: str, **extra: Any) -> ForecastConfig:
    return ForecastConfig(
        source=source,  # type: ignore[arg-type]
        latitude=45.76,
        longitude=4.84,
        tilt=30,
        azimuth=135,  # south-east
        kwp=6,
        base_url=base_url,
        timeout_s=2,
        **extra,
    )


def test_open_meteo_asks_for_the_plane_and_aligns_the_preceding_hour(stub: Stub) -> None:
    stub.answers = [(200, OPEN_METEO)]
    f = OpenMeteo(http_cfg("open-meteo", stub.url), PARIS).fetch(T6 + 1000)
    query = parse_qs(urlsplit(stub.paths[0]).query)
    assert urlsplit(stub.paths[0]).path == "/v1/forecast"
    assert query["hourly"] == ["global_tilted_irradiance"] and query["azimuth"] == ["-45.0"]
    assert query["tilt"] == ["30.0"] and query["timeformat"] == ["unixtime"]
    assert query["forecast_days"] == ["2"] and query["timezone"] == ["UTC"]
    # 250 W/m² over 07:00–08:00 (stamped 08:00) on 6 kWp with 14 % losses: 1290 W
    assert f.issued_at == T6 + 1000 and f.source == "open-meteo"
    assert f.slots == (Slot(T6 + 6 * H, 0.0), Slot(T6 + 7 * H, 1290.0), Slot(T6 + 8 * H, 0.0))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"hourly": {"time": [T6]}}, "open-meteo: hourly.global_tilted_irradiance: missing"),
        ({"error": True, "reason": "Latitude must be in range"}, "Latitude must be in range"),
        ({"hourly": {"time": ["soon"], "global_tilted_irradiance": [1]}}, "hourly.time[0]"),
        ({"hourly": {"time": [T6], "global_tilted_irradiance": ["x"]}}, "'x' is not a number"),
        (b"<html>busy</html>", "is not JSON"),
    ],
)
def test_a_malformed_open_meteo_answer_names_the_field_and_caches_nothing(
    stub: Stub, body: Any, words: str
) -> None:
    stub.answers = [(200, body)]
    store = MemoryStore()
    keeper = ForecastKeeper(
        source_for(http_cfg("open-meteo", stub.url), PARIS), store, every_s=3600, max_age_s=H
    )
    status = keeper.run(T6)
    assert status.freshness is Freshness.ABSENT and store.writes == 0
    assert words in status.reason, status.reason


def test_forecast_solar_takes_a_south_based_azimuth_and_averages_each_hour(stub: Stub) -> None:
    stub.answers = [(200, FORECAST_SOLAR)]
    f = ForecastSolar(http_cfg("forecast-solar", stub.url), PARIS).fetch(T6)
    assert stub.paths[0] == "/estimate/45.7600/4.8400/30/-45/6?time=utc"
    assert f.issued_at == T6 - 1800  # message.info.time, 06:30 in Paris
    means = {s.start: s.pv_w for s in f.slots}
    # 06:42–07:00 ramps 0 → 120 W (18 min of 60 W mean), 07:00–08:00 ramps 120 → 600 W
    assert means == {T6: 18.0, T6 + H: 360.0, T6 + 2 * H: 600.0}


def test_forecast_solar_reads_local_times_in_its_zone(stub: Stub) -> None:
    local = json.loads(json.dumps(FORECAST_SOLAR))
    local["result"]["watts"] = {"2026-12-07 08:00:00": 100, "2026-12-07 09:00:00": 100}
    stub.answers = [(200, local)]
    f = ForecastSolar(http_cfg("forecast-solar", stub.url), PARIS).fetch(T6)
    assert f.slots == (Slot(T6 + H, 100.0),)  # 08:00 in Paris is 07:00 UTC


def test_forecast_solar_rate_limit_is_said_and_waits_for_the_period(stub: Stub) -> None:
    stub.answers = [
        (
            429,
            {
                "message": {
                    "code": 429,
                    "type": "error",
                    "text": "Rate limit for API calls reached.",
                }
            },
        )
    ]
    source = ForecastSolar(http_cfg("forecast-solar", stub.url), PARIS)
    with pytest.raises(ForecastRateLimited, match=r"HTTP 429.*Rate limit for API calls reached"):
        source.fetch(T6)
    keeper = ForecastKeeper(source, MemoryStore(), every_s=3600, max_age_s=H)
    keeper.run(T6)
    assert keeper.next_at == T6 + 3600 and not keeper.retryable


def test_an_outage_retries_with_backoff_then_the_kept_forecast_is_a_stale_fallback(
    stub: Stub,
) -> None:
    stub.answers = [(200, OPEN_METEO), (500, {"error": True, "reason": "overloaded"})]
    store = MemoryStore()
    keeper = ForecastKeeper(
        OpenMeteo(http_cfg("open-meteo", stub.url), PARIS),
        store,
        every_s=3600,
        max_age_s=2 * H,
        backoff=Backoff(60, 2, 600),
    )
    now = float(T6)
    assert keeper.tick(now).freshness is Freshness.FRESH
    now += 3600
    delays = []
    for _ in range(5):
        keeper.tick(now)
        assert keeper.next_at is not None
        delays.append(keeper.next_at - now)
        now = keeper.next_at
    assert delays == [60, 120, 240, 480, 600] and store.writes == 1
    assert keeper.status(now).freshness is Freshness.FRESH  # 1.4 h old: still in use
    status = keeper.status(T6 + 2.5 * H)
    assert status.fallback and status.freshness is Freshness.STALE
    assert status.reason.startswith("forecast stale (issued 2.5 h ago by open-meteo")
    assert "older than 2 h; last fetch failed: open-meteo: HTTP 500" in status.reason
    assert "overloaded" in status.reason


def test_a_refused_connection_is_unavailable() -> None:
    cfg = http_cfg("open-meteo", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ForecastUnavailable, match=r"open-meteo: cannot reach 127\.0\.0\.1"):
        OpenMeteo(cfg, PARIS).fetch(T6)


def test_the_file_is_read_again_on_every_fetch(tmp_path: Path) -> None:
    path = tmp_path / "fc.csv"
    source = source_for(ForecastConfig(source="file", file=str(path)), PARIS)
    with pytest.raises(ForecastUnavailable, match="no such file"):
        source.fetch(T6)
    first = Forecast(T6, "file", (Slot(T6, 10.0),))
    path.write_text(first.to_csv(), encoding="utf-8")
    assert source.fetch(T6) == first
    second = Forecast(T6 + H, "file", (Slot(T6 + H, 20.0),))
    path.write_text(second.to_csv(), encoding="utf-8")
    assert source.fetch(T6) == second


def test_the_topic_keeps_the_last_good_payload() -> None:
    source = TopicForecast(ForecastConfig(source="topic", topic="home/solar/forecast"), PARIS)
    with pytest.raises(ForecastUnavailable, match="nothing received on home/solar/forecast"):
        source.fetch(T6)
    good = Forecast(T6, "topic", (Slot(T6, 10.0), Slot(T6 + H, 30.5)))
    assert source.feed(json.dumps(good.to_payload()).encode(), T6) == good
    with pytest.raises(ForecastError, match=r"topic home/solar/forecast: slots\[0\].pv_w"):
        source.feed(b'{"issued_at": "2026-12-07T07:00:00Z", "slots": [{"start": '
                    b'"2026-12-07T07:00:00Z", "pv_w": "much"}]}', T6)  # fmt: skip
    with pytest.raises(ForecastError, match="not UTF-8"):
        source.feed(b"\xff", T6)
    assert source.fetch(T6) == good
    assert source.feed(good.to_csv().encode(), T6) == good  # the CSV text works too
