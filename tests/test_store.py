"""One contract, two stores: the in-memory one and SQLite on a real file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from machines.controller import Controller
from machines.loads import TransitionRecord
from machines.model import MeterSnapshot, State
from machines.policy import PolicyParams
from state.store import SCHEMA_VERSION, MemoryStore, SqliteStore, StateStore, StoreError
from tests.conftest import PARIS, T0


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path: Path):
    s: StateStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "s.db"))
    )
    yield s
    s.close()


def rec(load: str, at: float, dest: str = "off") -> TransitionRecord:
    return TransitionRecord(load, "solar", dest, "goal_reached", "satisfied", at)


def test_round_trip_of_a_controller(store, house) -> None:
    ctl = Controller(house.specs(), PARIS, PolicyParams(), T0)
    ctl.load("water_heater").set_temperature(50.0, T0)
    ctl.load("pool_pump").force(T0, until=T0 + 3600, power_w=None)
    result = ctl.tick(T0, MeterSnapshot(-500.0, T0, False))
    store.save(ctl.dump(), result.records)
    back = Controller(house.specs(), PARIS, PolicyParams(), T0 + 5, saved=store.load_machines())
    assert back.dump() == ctl.dump()
    assert back.load("pool_pump").state is State.BOOST
    assert [r.trigger for r in store.transitions("pool_pump")] == ["forced"]


def test_transitions_newest_last_filtered_and_limited(store) -> None:
    store.save({"a": {"x": 1}, "b": {"x": 2}}, [rec("a", 1), rec("b", 2), rec("a", 3)])
    store.save({}, [rec("a", 4, "solar")])
    assert [r.at for r in store.transitions()] == [1, 2, 3, 4]
    assert [r.at for r in store.transitions("a", limit=2)] == [3, 4]
    assert store.transitions("nobody") == []


def test_sqlite_is_wal_and_one_save_is_one_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(str(path))
    s.save({"a": {"x": 1}}, [rec("a", 1)])
    assert s.writes == 1
    s.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_or_foreign_store_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(str(path)).save({"a": {"x": 1}}, [])
    with sqlite3.connect(path) as raw:
        raw.execute(
            "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(StoreError, match="newer than this pvopt"):
        SqliteStore(str(path))
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT data FROM machine").fetchone()[0] == '{"x": 1}'
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StoreError, match="not a pvopt state store"):
        SqliteStore(str(other))


def test_documents_and_intervals_round_trip(store) -> None:
    assert store.load_document("planner") == {}
    store.save({}, [], {"planner": {"checks_done": {"daily:water_heater": "2026-01-15"}}})
    store.save({"a": {"x": 1}}, [])  # saving machines alone keeps the documents
    assert store.load_document("planner") == {"checks_done": {"daily:water_heater": "2026-01-15"}}
    store.save({}, [], intervals=[{"end": e, "v": e} for e in (60, 120, 180, 240)])
    store.save({}, [], intervals=[{"end": 120, "v": 0}])  # the same interval replaces
    assert [i["v"] for i in store.intervals(60)] == [0, 180, 240]
    assert [i["end"] for i in store.intervals(0, until=180, limit=2)] == [60, 120]
    store.save({}, [], prune_before=180)
    assert [i["end"] for i in store.intervals(0)] == [180, 240]


def test_a_v1_store_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as raw:  # what pvopt's first release wrote
        raw.executescript(
            """
            CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
            INSERT INTO meta VALUES ('schema_version', '1');
            CREATE TABLE machine (name VARCHAR PRIMARY KEY, data TEXT);
            INSERT INTO machine VALUES ('water_heater', '{"state": "boost"}');
            CREATE TABLE "transition" (id INTEGER PRIMARY KEY, load VARCHAR, source VARCHAR,
                dest VARCHAR, "trigger" VARCHAR, reason VARCHAR, at FLOAT);
            INSERT INTO "transition" VALUES (1, 'water_heater', 'solar', 'boost', 'forced',
                'manual', 5.0);
            """
        )
    s = SqliteStore(str(path))
    assert s.migrated_from == 1
    assert s.load_machines() == {"water_heater": {"state": "boost"}}
    assert [r.dest for r in s.transitions()] == ["boost"]
    s.save({}, [], {"planner": {"x": 1}})
    s.close()
    again = SqliteStore(str(path))
    assert again.migrated_from is None and again.load_document("planner") == {"x": 1}
    again.close()


def test_a_first_start_killed_half_way_leaves_a_store_that_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards item 7: pysqlite ran the CREATE TABLEs outside the transaction, so a first start
    killed before the version row left tables without a version: refused ever after. Now the
    schema and its version row commit together or not at all."""
    from state import store as store_mod

    path = tmp_path / "s.db"
    real_create = store_mod.metadata.create_all

    def killed_after_create(conn: object, **kw: object) -> None:
        real_create(conn, **kw)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # the power cut, before the version row

    monkeypatch.setattr(store_mod.metadata, "create_all", killed_after_create)
    with pytest.raises(KeyboardInterrupt):
        SqliteStore(str(path))
    monkeypatch.setattr(store_mod.metadata, "create_all", real_create)
    s = SqliteStore(str(path))
    s.save({"a": {"x": 1}}, [])
    assert s.load_machines() == {"a": {"x": 1}}
    s.close()
