"""The solar forecast: the pure value and its file format, the store's table, the keeper's
back-off and freshness, the `forecast:` section and `pvopt forecast`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from jobs.forecast import Backoff, ForecastKeeper
from machines.errors import ForecastError, ForecastRateLimited, ForecastUnavailable
from machines.forecast import (
    Forecast,
    Freshness,
    Slot,
    assess,
    hourly_means,
    iso,
    parse_csv,
    parse_payload,
    parse_time,
)
from pvopt import config
from pvopt.cli import main
from state.store import SCHEMA_VERSION, MemoryStore, SqliteStore, StateStore
from tests.conftest import EXAMPLES

T6 = 1_796_623_200  # 2026-12-07T06:00:00Z
H = 3600
CSV = """issued_at,start,pv_w
2026-12-07T05:30:00Z,2026-12-07T06:00:00Z,0
2026-12-07T05:30:00Z,2026-12-07T07:00:00Z,400
2026-12-07T05:30:00Z,2026-12-07T08:00:00Z,1200.5
"""


def forecast(issued_at: int = T6, *watts: float, source: str = "file") -> Forecast:
    ws = watts or (0.0, 400.0, 1200.0)
    return Forecast(issued_at, source, tuple(Slot(T6 + i * H, w) for i, w in enumerate(ws)))


# -- the value ----------------------------------------------------------------------------------


def test_the_csv_reads_into_hours_and_writes_back_the_same() -> None:
    f = parse_csv(CSV, "file", where="fc.csv")
    assert iso(T6) == "2026-12-07T06:00:00Z"
    assert f.issued_at == T6 - 1800 and f.source == "file"
    assert f.slots == (Slot(T6, 0.0), Slot(T6 + H, 400.0), Slot(T6 + 2 * H, 1200.5))
    assert f.to_csv() == CSV
    assert parse_csv(f.to_csv(), "file") == f
    assert parse_payload(json.dumps(f.to_payload()), "file") == f
    assert parse_payload(CSV, "file") == f  # the topic takes the CSV text too


def test_energy_between_two_instants_is_linear_within_the_hours() -> None:
    f = forecast()
    assert f.energy_wh(T6, T6 + 3 * H) == 1600.0
    assert f.energy_wh(T6 + H + 1800, T6 + 2 * H + 900) == 200.0 + 300.0  # half, a quarter
    assert f.energy_wh(T6 - 5 * H, T6) == 0.0 and f.covered_s(T6 - 5 * H, T6 + H) == H
    assert f.energy_wh(T6 + 2 * H, T6 + 10 * H) == 1200.0  # beyond the end: nothing known
    assert f.power_at(T6 + H + 5) == 400.0 and f.power_at(T6 + 3 * H) is None
    assert (f.start, f.end) == (T6, T6 + 3 * H)


def test_age_and_freshness() -> None:
    f = forecast(T6)
    assert f.age_s(T6 + 100) == 100
    assert f.is_fresh(T6 + 12 * H, 12 * H) and not f.is_fresh(T6 + 12 * H + 1, 12 * H)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("start,pv_w\n", ":1: header 'start,pv_w'"),
        ("issued_at,start,pv_w\n", "no hours after the header"),
        ("issued_at,start,pv_w\n\n2026-12-07T05:30:00Z,2026-12-07T06:00:00Z\n", ":3: 2 fields"),
        ("issued_at,start,pv_w\nyesterday,2026-12-07T06:00:00Z,1\n", ":2: issued_at: 'yesterday'"),
        (
            "issued_at,start,pv_w\n2026-12-07T05:30:00Z,2026-12-07T07:00:00+01:00,1\n",
            ":2: start: '2026-12-07T07:00:00+01:00' is not in UTC",
        ),
        (
            "issued_at,start,pv_w\n2026-12-07T05:30:00Z,2026-12-07T06:00:00,1\n",
            ":2: start: '2026-12-07T06:00:00' is not in UTC",
        ),
        (
            "issued_at,start,pv_w\n2026-12-07T05:30:00Z,2026-12-07T06:30:00Z,1\n",
            ":2: start: 2026-12-07T06:30:00Z is not on the hour",
        ),
        ("issued_at,start,pv_w\n2026-12-07T05:30:00Z,2026-12-07T06:00:00Z,-3\n", ":2: pv_w: '-3'"),
        ("issued_at,start,pv_w\n2026-12-07T05:30:00Z,2026-12-07T06:00:00Z,nan\n", ":2: pv_w"),
        ("issued_at,start,pv_w\n2026-12-07T05:30:00Z,2026-12-07T06:00:00Z,1kW\n", ":2: pv_w"),
        (
            CSV + "2026-12-07T05:30:00Z,2026-12-07T07:00:00Z,5\n",
            ":5: start: 2026-12-07T07:00:00Z is not after the line before",
        ),
        (
            CSV + "2026-12-07T06:30:00Z,2026-12-07T09:00:00Z,5\n",
            ":5: issued_at: 2026-12-07T06:30:00Z differs from the first line's",
        ),
    ],
)
def test_a_bad_file_says_the_line_and_the_field(text: str, words: str) -> None:
    with pytest.raises(ForecastError) as info:
        parse_csv(text, "file", where="fc.csv")
    assert str(info.value).startswith("fc.csv"), info.value
    assert words in str(info.value), info.value


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ("{", "not JSON"),
        ("[]", "expected a JSON object"),
        ({"slots": []}, "issued_at: missing"),
        ({"issued_at": "2026-12-07T05:30:00Z"}, "slots: missing or empty"),
        ({"issued_at": "2026-12-07T05:30:00Z", "slots": [3]}, "slots[0]: expected"),
        ({"issued_at": "2026-12-07T05:30:00Z", "slots": [{"pv_w": 3}]}, "slots[0].start: missing"),
        (
            {"issued_at": "2026-12-07T05:30:00Z", "slots": [{"start": "2026-12-07T06:00:00Z"}]},
            "slots[0].pv_w: missing",
        ),
        (
            {
                "issued_at": "2026-12-07T05:30:00Z",
                "slots": [{"start": "2026-12-07T06:00:00Z", "pv_w": True}],
            },
            "slots[0].pv_w: True is not a number",
        ),
        (
            {
                "issued_at": "2026-12-07T05:30:00Z",
                "slots": [
                    {"start": "2026-12-07T07:00:00Z", "pv_w": 1},
                    {"start": "2026-12-07T06:00:00Z", "pv_w": 1},
                ],
            },
            "slot 1 (2026-12-07T06:00:00Z): start is not after the slot before",
        ),
    ],
)
def test_a_bad_topic_payload_says_which_field(doc: object, words: str) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(ForecastError) as info:
        parse_payload(text, "topic", where="topic ha/solar")
    assert str(info.value).startswith("topic ha/solar"), info.value
    assert words in str(info.value), info.value


hours = st.lists(
    st.tuples(
        st.integers(0, 4),  # hours skipped before this one: gaps are allowed
        st.one_of(
            st.integers(0, 20_000).map(float),
            st.floats(0, 1_000_000, allow_nan=False, allow_infinity=False),
        ),
    ),
    min_size=1,
    max_size=60,
)


@given(issued=st.integers(1_600_000_000, 2_000_000_000), rows=hours)
def test_any_forecast_survives_the_file_and_the_payload(
    issued: int, rows: list[tuple[int, float]]
) -> None:
    start, slots = 1_796_601_600, []
    for skip, w in rows:
        start += skip * H
        slots.append(Slot(start, w))
        start += H
    f = Forecast(issued, "file", tuple(slots))
    assert parse_csv(f.to_csv(), "file") == f
    assert parse_payload(json.dumps(f.to_payload()), "file") == f
    assert f.energy_wh(f.start, f.end) == pytest.approx(sum(s.pv_w for s in slots))


def test_parse_time_takes_utc_only() -> None:
    assert parse_time("2026-12-07T06:00:00Z") == parse_time("2026-12-07T06:00:00+00:00") == T6
    with pytest.raises(ValueError, match="fraction"):
        parse_time("2026-12-07T06:00:00.5Z")


def test_instantaneous_samples_become_hourly_means() -> None:
    # a ramp from 0 W at 06:30 to 1000 W at 07:30, then flat to 08:00; a night; 500 W at 20:00
    samples = [(T6 + 1800, 0.0), (T6 + 5400, 1000.0), (T6 + 7200, 1000.0), (T6 + 14 * H, 500.0)]
    slots = {s.start: s.pv_w for s in hourly_means(samples, 3 * H)}
    assert slots[T6] == 125.0  # 06:30–07:00: 0 → 500 W, half the hour
    assert slots[T6 + H] == 875.0  # 07:00–07:30: 500 → 1000 W, then 1000 W
    assert slots[T6 + 2 * H] == 0.0 and slots[T6 + 13 * H] == 0.0  # the night counts zero
    assert len(slots) == 14 and hourly_means([], H) == []


def test_assess_says_fresh_stale_or_absent_and_why() -> None:
    f = forecast(T6, *([500.0] * 24))
    fresh = assess(f, T6 + 2 * H, 12 * H)
    assert fresh.freshness is Freshness.FRESH and not fresh.fallback
    assert fresh.reason == "forecast fresh (issued 2.0 h ago by file)"
    stale = assess(f, T6 + 7.2 * H, 6 * H, "file: fc.csv: no such file (yet)")
    assert stale.freshness is Freshness.STALE and stale.fallback and stale.forecast is f
    assert stale.reason == (
        "forecast stale (issued 7.2 h ago by file, older than 6 h; "
        "last fetch failed: file: fc.csv: no such file (yet))"
    )
    ended = assess(forecast(T6), T6 + 5 * H, 12 * H)
    assert ended.freshness is Freshness.STALE and "its last hour ended 2.0 h ago" in ended.reason
    absent = assess(None, T6, H, "open-meteo: cannot reach x")
    assert absent.freshness is Freshness.ABSENT and absent.fallback
    assert absent.reason == (
        "no forecast (none fetched yet; last fetch failed: open-meteo: cannot reach x)"
    )


# -- the store ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    s: StateStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "s.db"))
    )
    yield s
    s.close()


def test_the_store_keeps_each_sources_last_forecast(store: StateStore) -> None:
    assert store.load_forecast() is None and store.load_forecast("file") is None
    store.save_forecast(forecast(T6, 1.0, 2.5), T6 + 10)
    store.save_forecast(forecast(T6 + H, 3.0), T6 + H + 10)  # replaces the file's
    store.save_forecast(forecast(T6, 7.0, source="open-meteo"), T6 + 5)
    assert store.load_forecast("file") == (forecast(T6 + H, 3.0), T6 + H + 10)
    assert store.load_forecast("open-meteo") == (forecast(T6, 7.0, source="open-meteo"), T6 + 5)
    assert store.load_forecast() == (forecast(T6 + H, 3.0), T6 + H + 10)  # the newest fetched


def test_a_v2_store_gains_the_forecast_table_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as raw:  # what pvopt wrote before the forecast
        raw.executescript(
            """
            CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
            INSERT INTO meta VALUES ('schema_version', '2');
            CREATE TABLE machine (name VARCHAR PRIMARY KEY, data TEXT);
            INSERT INTO machine VALUES ('water_heater', '{"state": "boost"}');
            CREATE TABLE "transition" (id INTEGER PRIMARY KEY, load VARCHAR, source VARCHAR,
                dest VARCHAR, "trigger" VARCHAR, reason VARCHAR, at FLOAT);
            CREATE TABLE document (key VARCHAR PRIMARY KEY, data TEXT);
            INSERT INTO document VALUES ('planner', '{"x": 1}');
            CREATE TABLE interval ("end" INTEGER PRIMARY KEY, data BLOB);
            """
        )
    with pytest.raises(Exception, match="run `pvopt run` once to migrate"):
        SqliteStore(str(path), read_only=True)
    s = SqliteStore(str(path))
    assert s.migrated_from == 2 and SCHEMA_VERSION == 3
    assert s.load_machines() == {"water_heater": {"state": "boost"}}
    assert s.load_document("planner") == {"x": 1} and s.load_forecast() is None
    s.save_forecast(forecast(), T6)
    s.close()
    reader = SqliteStore(str(path), read_only=True)
    assert reader.load_forecast("file") == (forecast(), T6)
    reader.close()


# -- the keeper ---------------------------------------------------------------------------------


class Scripted:
    """A source that answers from a list: a Forecast, or an error to raise."""

    name = "file"

    def __init__(self, *answers: Forecast | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[float] = []

    def fetch(self, now: float) -> Forecast:
        self.asked.append(now)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_an_outage_backs_off_then_the_kept_forecast_goes_stale(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    down = ForecastUnavailable("file: fc.csv: no such file (yet)")
    source = Scripted(forecast(T6, *([800.0] * 30)), *([down] * 8))
    keeper = ForecastKeeper(
        source, store, every_s=3600, max_age_s=12 * H, backoff=Backoff(60, 2, 900)
    )
    now = float(T6)
    assert keeper.tick(now).freshness is Freshness.FRESH and keeper.next_at == now + 3600
    assert keeper.tick(now + 600).freshness is Freshness.FRESH and len(source.asked) == 1  # not due
    now += 3600
    delays = []
    while source.answers:
        assert keeper.due(now)
        status = keeper.tick(now)
        assert keeper.next_at is not None
        delays.append(keeper.next_at - now)
        now = keeper.next_at
    assert delays == [60, 120, 240, 480, 900, 900, 900, 900]  # doubling, bounded
    assert status.freshness is Freshness.FRESH
    assert "last fetch failed: file: fc.csv" in status.reason
    later = keeper.status(T6 + 12.5 * H)
    assert later.fallback and later.reason.startswith("forecast stale (issued 12.5 h ago by file")
    assert later.reason.endswith("last fetch failed: file: fc.csv: no such file (yet))")
    store.close()
    again = ForecastKeeper(Scripted(), SqliteStore(str(tmp_path / "s.db")), every_s=3600,
                           max_age_s=12 * H)  # fmt: skip
    assert again.forecast == forecast(T6, *([800.0] * 30)) and again.fetched_at == T6
    again.store.close()


def test_a_malformed_answer_caches_nothing_and_keeps_the_last_good_one() -> None:
    store = MemoryStore()
    good = forecast(T6, 100.0, 200.0)
    source = Scripted(ForecastError("open-meteo: hourly.time: missing or empty"), good,
                      ForecastError("open-meteo: hourly: missing"))  # fmt: skip
    keeper = ForecastKeeper(source, store, every_s=1800, max_age_s=6 * H)
    absent = keeper.run(T6)
    assert absent.freshness is Freshness.ABSENT and store.writes == 0
    assert absent.reason == (
        "no forecast (none fetched yet; last fetch failed: "
        "open-meteo: hourly.time: missing or empty)"
    )
    assert keeper.run(T6 + 60).forecast == good and store.writes == 1
    kept = keeper.run(T6 + 1860)
    assert kept.forecast == good and store.writes == 1 and keeper.failures == 1
    assert store.load_forecast("file") == (good, T6 + 60)


def test_a_rate_limit_waits_for_its_reset_and_fetch_now_stops_at_once() -> None:
    slept: list[float] = []
    limited = ForecastRateLimited("forecast-solar: rate limit reached", retry_after_s=5400)
    keeper = ForecastKeeper(Scripted(limited), MemoryStore(), every_s=3600, max_age_s=H)
    status = keeper.fetch_now(lambda: float(T6), slept.append, attempts=3)
    assert slept == [] and keeper.next_at == T6 + 5400 and status.freshness is Freshness.ABSENT


def test_fetch_now_retries_after_the_backoff_without_a_real_sleep() -> None:
    clock = [float(T6)]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    down = ForecastUnavailable("open-meteo: cannot reach x: refused")
    keeper = ForecastKeeper(Scripted(down, down, forecast()), MemoryStore(), every_s=3600,
                            max_age_s=H, backoff=Backoff(2, 2, 10))  # fmt: skip
    status = keeper.fetch_now(lambda: clock[0], sleep, attempts=3)
    assert slept == [2, 4] and status.freshness is Freshness.FRESH and keeper.failures == 0
    keeper2 = ForecastKeeper(Scripted(down, down), MemoryStore(), every_s=3600, max_age_s=H)
    assert keeper2.fetch_now(lambda: clock[0], sleep, attempts=2).fallback
    assert keeper2.last_error == "open-meteo: cannot reach x: refused"


# -- the config ---------------------------------------------------------------------------------

GOOD = (EXAMPLES / "seed_house.yml").read_text()


def problems(text: str) -> list[config.Problem]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "house.yml", environ={})
    return info.value.problems


def line_of(text: str, key: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(key))


def test_a_forecast_section_loads_and_converts_the_azimuth() -> None:
    text = GOOD + (
        "forecast:\n  source: open-meteo\n  latitude: 45.76\n  longitude: 4.84\n"
        "  tilt: 30\n  azimuth: 135\n  kwp: 6\n"
    )
    fc = config.parse(text, "house.yml", environ={}).forecast
    assert fc is not None and fc.losses == 0.14 and fc.every_min == 60 and fc.max_age_h == 12
    assert fc.vendor_azimuth() == -45  # south-east: 45° east of south
    for compass, south_based in ((180, 0), (90, -90), (270, 90), (0, -180), (359, 179)):
        assert fc.model_copy(update={"azimuth": compass}).vendor_azimuth() == south_based
    assert config.parse(GOOD, "house.yml", environ={}).forecast is None


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [
        ("  source: open-meteo\n  latitude: 45\n  longitude: 4\n  tilt: 30\n  azimuth: 180\n",
         "forecast.kwp", "required for source open-meteo"),
        ("  source: file\n", "forecast.file", "required for source file"),
        ("  source: file\n  file: fc.csv\n  kwp: 3\n", "forecast.kwp",
         "only for source open-meteo or forecast-solar, not file"),
        ("  source: forecast-solar\n  latitude: 45\n  longitude: 4\n  tilt: 30\n  azimuth: 180\n"
         "  kwp: 3\n  losses: 0.1\n", "forecast.losses", "only for source open-meteo"),
        ("  source: open-meteo\n  latitude: 95\n", "forecast.latitude", "less than or equal to 90"),
        ("  source: open-meteo\n  azimuth: 360\n", "forecast.azimuth", "less than 360"),
        ("  source: solcast\n", "forecast.source", "'open-meteo'"),
        ("  source: file\n  file: fc.csv\n  every_min: 5\n", "forecast.every_min", "15"),
        ("  source: topic\n  topic: ha/#\n", "forecast.topic", "wildcard"),
        ("  source: topic\n  topic: tic/SINSTS\n", "forecast.topic", "one topic, one role"),
        ("  source: open-meteo\n  base_url: ftp://x\n", "forecast.base_url", "not an http"),
        ("  source: file\n  file: fc.csv\n  colour: red\n", "forecast.colour", "unknown key"),
    ],
)  # fmt: skip
def test_a_broken_forecast_section_says_file_line_and_key(
    section: str, key: str, words: str
) -> None:
    text = GOOD + "forecast:\n" + section
    found = problems(text)
    leaf = key.rpartition(".")[2]
    line = line_of(text, f"  {leaf}:") if f"  {leaf}:" in text else line_of(text, "forecast:")
    assert any(p.key == key and p.line == line and words in p.message for p in found), found
    assert any(str(p).startswith(f"house.yml:{line}: {key}: ") for p in found), found


def test_a_relative_forecast_file_resolves_beside_the_config(tmp_path: Path) -> None:
    path = tmp_path / "pvopt.yml"
    path.write_text(GOOD + "forecast: {source: file, file: fc.csv}\n", encoding="utf-8")
    fc = config.load(path, environ={}).forecast
    assert fc is not None and fc.file == str(tmp_path / "fc.csv")


# -- the command --------------------------------------------------------------------------------


def site(tmp_path: Path, csv: str | None = CSV) -> Path:
    data = yaml.safe_load(GOOD)
    data["state"] = {"path": "pvopt.db"}
    data["site"] = {"timezone": "Europe/Paris"}
    data["forecast"] = {"source": "file", "file": "fc.csv", "max_age_h": 6}
    if csv is not None:
        (tmp_path / "fc.csv").write_text(csv, encoding="utf-8")
    path = tmp_path / "pvopt.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_pvopt_forecast_fetches_stores_and_then_only_reads(tmp_path: Path) -> None:
    cfg = site(tmp_path, forecast(T6 - 1800, *([300.0] * 48)).to_csv())
    runner = CliRunner()
    out = runner.invoke(main, ["forecast", "--config", str(cfg)])
    assert out.exit_code == 1 and "pvopt forecast --fetch" in out.output, out.output
    assert not (tmp_path / "pvopt.db").exists()  # a read-only command created nothing
    out = runner.invoke(main, ["forecast", "--config", str(cfg), "--fetch", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["source"] == "file" and doc["issued_at"] == "2026-12-07T05:30:00Z"
    assert len(doc["slots"]) == 48 and doc["slots"][0] == {"start": iso(T6), "pv_w": 300.0}
    before = files(tmp_path)
    out = runner.invoke(main, ["forecast", "--config", str(cfg), "--json"])
    assert out.exit_code == 0, out.output
    again = json.loads(out.output)
    assert again["slots"] == doc["slots"] and again["status"] in ("fresh", "stale")
    assert again["reason"].startswith(f"forecast {again['status']} (issued")
    out = runner.invoke(main, ["forecast", "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    assert "solar forecast from file" in out.output and "PV mean (W)" in out.output
    assert files(tmp_path) == before  # nor did it write the store


def test_pvopt_forecast_fetch_says_why_it_failed_and_keeps_the_last_good_one(
    tmp_path: Path,
) -> None:
    cfg = site(tmp_path, None)
    runner = CliRunner()
    out = runner.invoke(main, ["forecast", "--config", str(cfg), "--fetch", "--attempts", "1"])
    assert out.exit_code == 1 and "no such file (yet)" in out.output, out.output
    (tmp_path / "fc.csv").write_text(CSV, encoding="utf-8")
    assert runner.invoke(main, ["forecast", "--config", str(cfg), "--fetch"]).exit_code == 0
    (tmp_path / "fc.csv").write_text(CSV.replace("1200.5", "lots"), encoding="utf-8")
    out = runner.invoke(
        main, ["forecast", "--config", str(cfg), "--fetch", "--attempts", "1", "--json"]
    )
    assert out.exit_code == 1
    doc = json.loads(out.output[: out.output.rindex("}") + 1])
    assert doc["issued_at"] == "2026-12-07T05:30:00Z" and doc["slots"][2]["pv_w"] == 1200.5
    assert "fc.csv:4: pv_w: 'lots' is not a number of W" in doc["reason"]
    assert "fetch failed:" in out.output


def test_pvopt_forecast_without_a_section_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pvopt.yml"
    path.write_text(GOOD, encoding="utf-8")
    out = CliRunner().invoke(main, ["forecast", "--config", str(path)])
    assert out.exit_code == 1 and "no `forecast:` section" in out.output
