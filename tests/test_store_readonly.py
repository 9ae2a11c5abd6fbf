"""Commands that only look never write the state store: `pvopt status`, `history`, `energy`
and a dry run open it read-only, leave it byte-identical with its mtime, create no `-wal`,
`-shm` nor `-journal` beside it, and refuse an older schema saying to run `pvopt run` once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from machines.controller import Controller
from machines.loads import TransitionRecord
from pvopt.cli import main
from pvopt.service import Service
from pvsim.live import hermetic_env
from pvsim.servers.loopback import free_port
from state.store import SCHEMA_VERSION, MemoryStore, SqliteStore, StoreError, StoreMissing
from tests.test_service import make_config

V1_SCHEMA = """
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    INSERT INTO meta VALUES ('schema_version', '1');
    CREATE TABLE machine (name VARCHAR PRIMARY KEY, data TEXT);
    CREATE TABLE "transition" (id INTEGER PRIMARY KEY, load VARCHAR, source VARCHAR,
        dest VARCHAR, "trigger" VARCHAR, reason VARCHAR, at FLOAT);
    INSERT INTO "transition" VALUES (1, 'towel_rail', 'solar', 'off', 'off', 'manual', 5.0);
"""


def snapshot(folder: Path) -> dict[str, Any]:
    """Every file of the folder with its bytes and mtime."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def pvopt(*args: str) -> subprocess.CompletedProcess[str]:
    """`pvopt ARGS` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "pvopt.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=hermetic_env(),
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config (its broker port closed: nothing answers) beside a store `pvopt run` wrote."""
    cfg = make_config(tmp_path, free_port())
    store = SqliteStore(cfg.state.path)
    record = TransitionRecord("towel_rail", "solar", "off", "off", "manual", 1_781_510_400.0)
    ctl = Controller(cfg.specs(), cfg.site.tz, cfg.regulation.params(), record.at)
    store.save(ctl.dump(), [record], {"planner": {}})
    store.close()
    return tmp_path / "pvopt.yml"


def test_status_and_history_leave_the_store_byte_identical(site: Path) -> None:
    before = snapshot(site.parent)
    assert "pvopt.db-wal" not in before and "pvopt.db-shm" not in before
    status = pvopt("status", "--json", "--config", str(site))
    assert status.returncode == 0, status.stderr
    history = pvopt("history", "--config", str(site))
    assert history.returncode == 0 and "towel_rail" in history.stdout, history.stderr
    energy = CliRunner().invoke(main, ["energy", "--config", str(site), "--json"])
    assert energy.exit_code == 0, energy.output
    assert snapshot(site.parent) == before


def test_a_dry_run_reads_the_store_and_leaves_it_byte_identical(site: Path) -> None:
    from pvopt import config

    before = snapshot(site.parent)
    svc = Service(config.load(site, environ={}), dry_run=True)
    assert isinstance(svc.store, MemoryStore)  # what it decides stays in memory
    svc.store.close()
    assert snapshot(site.parent) == before


def test_an_older_schema_says_to_run_pvopt_run_once_and_is_not_migrated(site: Path) -> None:
    db = site.parent / "pvopt.db"
    db.unlink()
    with sqlite3.connect(db) as raw:
        raw.executescript(V1_SCHEMA)
    before = snapshot(site.parent)
    for command in ("status", "history"):
        out = pvopt(command, "--config", str(site))
        assert out.returncode == 1, out.stdout
        assert "schema v1" in out.stderr and "run `pvopt run` once" in out.stderr, out.stderr
    assert snapshot(site.parent) == before
    from pvopt import config

    with pytest.raises(StoreError, match="run `pvopt run` once"):
        Service(config.load(site, environ={}), dry_run=True)
    assert snapshot(site.parent) == before
    writer = SqliteStore(str(db))  # `pvopt run`: the one open that migrates
    assert writer.migrated_from == 1
    writer.close()
    reader = SqliteStore(str(db), read_only=True)
    assert [r.load for r in reader.transitions()] == ["towel_rail"]
    reader.close()


def test_a_missing_or_never_set_up_file_is_no_store_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(StoreMissing, match="no state store at"):
        SqliteStore(str(missing), read_only=True)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.touch()  # a first start killed before its schema committed
    with pytest.raises(StoreMissing, match="holds no state yet"):
        SqliteStore(str(empty), read_only=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    assert empty.read_bytes() == b""


def test_a_reader_beside_a_running_writer_sees_its_commits_and_cannot_write(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "s.db")
    writer = SqliteStore(path)
    writer.save({"a": {"x": 1}}, [])
    reader = SqliteStore(path, read_only=True)
    assert reader.load_machines() == {"a": {"x": 1}}
    writer.save({"a": {"x": 2}}, [])  # still in the writer's -wal
    assert reader.load_machines() == {"a": {"x": 2}}
    with pytest.raises(StoreError, match="read-only"):
        reader.save({"a": {"x": 3}}, [])
    reader.close()
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
