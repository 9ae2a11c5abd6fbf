"""Where machine state, the transition log, per-interval energy, the InfluxDB outbox and the
last good solar forecast survive restarts: one small interface, two stores."""

from __future__ import annotations

import functools
import json
import sqlite3
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from machines.errors import StoreError, StoreMissing
from machines.forecast import Forecast, Slot
from machines.loads import TransitionRecord

__all__ = [
    "SCHEMA_VERSION",
    "MemoryStore",
    "SqliteStore",
    "StateStore",
    "StoreError",  # defined in machines.errors; imported from here too
    "StoreMissing",
]

# v2: `document` (small JSON documents: the schedule planner, the outbox) and `interval`
# (per-interval energy: the history and the outbox). A v1 store migrates when `pvopt run` opens
# it for writing; a read-only open refuses it and says so.
# v3: `forecast` (the last good solar forecast of each source, docs/forecast.md); v1 and v2
# migrate the same way: the missing tables are created, nothing else changes.
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 1.0
DRIVER_ERRORS = (SQLAlchemyError, sqlite3.Error)  # what reaches a caller as a StoreError


class StateStore(Protocol):
    """What the service needs from persistence; the CLI only reads."""

    writes: int

    def load_machines(self) -> dict[str, dict[str, Any]]:
        """Every saved machine dump, by load name."""
        ...

    def save(
        self,
        machines: Mapping[str, dict[str, Any]],
        records: Sequence[TransitionRecord],
        documents: Mapping[str, dict[str, Any]] | None = None,
        intervals: Sequence[dict[str, Any]] = (),
        prune_before: int | None = None,
    ) -> None:
        """Commit machine dumps, transition records, documents and new intervals (and drop
        intervals that ended before `prune_before`) in one transaction: one write."""
        ...

    def load_document(self, key: str) -> dict[str, Any]:
        """A saved document ({} when none)."""
        ...

    def intervals(
        self, after: int, until: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Intervals with after < end ≤ until, oldest first."""
        ...

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        """The newest transition records, oldest first."""
        ...

    def save_forecast(self, forecast: Forecast, fetched_at: float) -> None:
        """Keep `forecast` as its source's last good one (replacing the previous): one write."""
        ...

    def load_forecast(self, source: str | None = None) -> tuple[Forecast, float] | None:
        """The last good forecast of `source` (of any source, the newest fetched, when None)
        and when it was fetched; None when there is none."""
        ...

    def close(self) -> None: ...


_Doc = TypeVar("_Doc")


def _copy(doc: _Doc) -> _Doc:
    """A deep copy through JSON: what a store hands out is what it would have read back."""
    return cast(_Doc, json.loads(json.dumps(doc)))


class MemoryStore:
    """A store for pure-unit tests and `--dry-run`: nothing touches a disk."""

    def __init__(self) -> None:
        self._machines: dict[str, dict[str, Any]] = {}
        self._records: list[TransitionRecord] = []
        self._documents: dict[str, dict[str, Any]] = {}
        self._intervals: dict[int, dict[str, Any]] = {}
        self._forecasts: dict[str, tuple[Forecast, float]] = {}
        self.writes = 0

    def load_machines(self) -> dict[str, dict[str, Any]]:
        return _copy(self._machines)

    def save(
        self,
        machines: Mapping[str, dict[str, Any]],
        records: Sequence[TransitionRecord],
        documents: Mapping[str, dict[str, Any]] | None = None,
        intervals: Sequence[dict[str, Any]] = (),
        prune_before: int | None = None,
    ) -> None:
        self._machines.update(_copy(dict(machines)))
        self._records.extend(records)
        self._documents.update(_copy(dict(documents or {})))
        self._intervals.update({int(i["end"]): _copy(i) for i in intervals})
        if prune_before is not None:
            self._intervals = {k: v for k, v in self._intervals.items() if k >= prune_before}
        self.writes += 1

    def load_document(self, key: str) -> dict[str, Any]:
        return _copy(self._documents.get(key, {}))

    def intervals(
        self, after: int, until: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        ends = sorted(e for e in self._intervals if e > after and (until is None or e <= until))
        return [_copy(self._intervals[e]) for e in ends[:limit]]

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        found = [r for r in self._records if load is None or r.load == load]
        return found[-limit:]

    def save_forecast(self, forecast: Forecast, fetched_at: float) -> None:
        self._forecasts[forecast.source] = (forecast, fetched_at)  # frozen: no copy needed
        self.writes += 1

    def load_forecast(self, source: str | None = None) -> tuple[Forecast, float] | None:
        if source is not None:
            return self._forecasts.get(source)
        return max(self._forecasts.values(), key=lambda kept: kept[1], default=None)

    def close(self) -> None:
        pass


metadata = MetaData()

meta_table = Table(
    "meta", metadata, Column("key", String, primary_key=True), Column("value", String)
)
machine_table = Table(
    "machine",
    metadata,
    Column("name", String, primary_key=True),
    Column("data", Text),  # LoadMachine.dump() as JSON
)
transition_table = Table(
    "transition",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load", String, ForeignKey("machine.name"), index=True),
    Column("source", String),
    Column("dest", String),
    Column("trigger", String),
    Column("reason", String),
    Column("at", Float, index=True),
)
document_table = Table(
    "document", metadata, Column("key", String, primary_key=True), Column("data", Text)
)
interval_table = Table(
    "interval",
    metadata,
    Column("end", Integer, primary_key=True),  # epoch s, a multiple of interval_s
    Column("data", LargeBinary),  # machines.energy interval document, JSON, zlib: 400 days of
)  # minutes with 3 loads take ~150 MB instead of ~390 MB
forecast_table = Table(
    "forecast",
    metadata,
    Column("source", String, primary_key=True),  # one row per source: its last good forecast
    Column("issued_at", Integer),  # epoch s UTC
    Column("fetched_at", Float),
    Column("slots", Text),  # JSON [[start, pv_w], ...]: 48 hours are ~1 kB
)


class SqliteStore:
    """SQLite in WAL mode through SQLAlchemy 2.x Core (the ORM would cost the Pi 6 MB of RAM for
    a handful of tables); each `save` is one committed transaction.

    `read_only=True` is for the commands that only look (`status`, `history`, `energy`, a dry
    run, the web page): it never creates, migrates nor writes the file, and leaves no
    `-wal`/`-shm` beside it; an older schema is refused with what to do.
    """

    def __init__(self, path: str, *, read_only: bool = False):
        self.path = path
        self.read_only = read_only
        self.writes = 0
        self.migrated_from: int | None = None
        if read_only:
            if not Path(path).exists():
                raise StoreMissing(f"no state store at {path}")
            self.engine = create_engine(
                "sqlite://", creator=functools.partial(_connect_read_only, path), poolclass=NullPool
            )
        else:
            # a store locked by another process fails a write after BUSY_TIMEOUT_S, not 5 s:
            # the regulator's worker waits that long at most, then goes on from memory
            self.engine = create_engine(
                f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_S}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _begin)
        try:
            if read_only:
                self._check()
            else:
                self._open()
        except DRIVER_ERRORS as exc:
            self.engine.dispose()
            raise StoreError(f"{path}: cannot open the state store: {_cause(exc)}") from exc
        except StoreError:
            self.engine.dispose()
            raise

    def _version(self, conn: Connection) -> tuple[set[str], int]:
        """The tables and the schema version (that of a new store when there are no tables)."""
        tables = set(self.engine.dialect.get_table_names(conn))
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path} is not a pvopt state store (tables: {sorted(tables)})")
        version = SCHEMA_VERSION
        if tables:
            row = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            version = int(row.value) if row is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema v{version}, newer than this pvopt knows "
                f"(v{SCHEMA_VERSION}): upgrade pvopt; the store was left untouched"
            )
        if version < 1:
            raise StoreError(
                f"{self.path} has schema v{version} and no migration to v{SCHEMA_VERSION}"
            )
        return tables, version

    def _check(self) -> None:
        """The read-only open: the schema must be this pvopt's, as it is; nothing is written."""
        with self.engine.connect() as conn:
            tables, version = self._version(conn)
        if not tables:  # a first start killed before its schema committed
            raise StoreMissing(
                f"{self.path} holds no state yet (`pvopt run` never finished starting)"
            )
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema v{version}, older than this pvopt's v{SCHEMA_VERSION}: "
                "run `pvopt run` once to migrate it (commands that only read never write the "
                "store, so they do not migrate it)"
            )

    def _open(self) -> None:
        """The writable open (`pvopt run`): creates a new store, migrates an older one."""
        with self.engine.begin() as conn:
            tables, version = self._version(conn)
            metadata.create_all(conn)  # v1 → v2: `document`, `interval`; v2 → v3: `forecast`
            if not tables:
                conn.execute(
                    meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                )
            elif version < SCHEMA_VERSION:
                conn.execute(
                    meta_table.update()
                    .where(meta_table.c.key == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )
                self.migrated_from = version

    @contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """The driver's errors as a StoreError naming the file (a full disk, a lock, a
        read-only file): callers catch one name, never SQLAlchemy's."""
        try:
            yield
        except DRIVER_ERRORS as exc:
            raise StoreError(f"{self.path}: cannot {doing}: {_cause(exc)}") from exc

    def load_machines(self) -> dict[str, dict[str, Any]]:
        with self._failing("read the machines"), self.engine.connect() as conn:
            rows = conn.execute(select(machine_table.c.name, machine_table.c.data))
            return {row.name: json.loads(row.data) for row in rows}

    def save(
        self,
        machines: Mapping[str, dict[str, Any]],
        records: Sequence[TransitionRecord],
        documents: Mapping[str, dict[str, Any]] | None = None,
        intervals: Sequence[dict[str, Any]] = (),
        prune_before: int | None = None,
    ) -> None:
        if self.read_only:
            raise StoreError(f"{self.path} was opened read-only: nothing can be saved")
        with self._failing("save"), self.engine.begin() as conn:
            for name, dump in machines.items():
                _upsert(conn, machine_table, "name", name, json.dumps(dump, sort_keys=True))
            for key, doc in (documents or {}).items():
                _upsert(conn, document_table, "key", key, json.dumps(doc, sort_keys=True))
            for interval in intervals:
                packed = zlib.compress(json.dumps(interval, separators=(",", ":")).encode())
                _upsert(conn, interval_table, "end", int(interval["end"]), packed)
            if prune_before is not None:
                conn.execute(delete(interval_table).where(interval_table.c.end < prune_before))
            if records:
                conn.execute(
                    transition_table.insert(),
                    [
                        {
                            "load": r.load,
                            "source": r.source,
                            "dest": r.dest,
                            "trigger": r.trigger,
                            "reason": r.reason,
                            "at": r.at,
                        }
                        for r in records
                    ],
                )
        self.writes += 1

    def load_document(self, key: str) -> dict[str, Any]:
        with self._failing(f"read the {key} document"), self.engine.connect() as conn:
            row = conn.execute(
                select(document_table.c.data).where(document_table.c.key == key)
            ).first()
        return json.loads(row.data) if row is not None else {}

    def intervals(
        self, after: int, until: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        t = interval_table
        query = select(t.c.data).where(t.c.end > after).order_by(t.c.end)
        if until is not None:
            query = query.where(t.c.end <= until)
        if limit is not None:
            query = query.limit(limit)
        with self._failing("read the intervals"), self.engine.connect() as conn:
            return [json.loads(zlib.decompress(row.data)) for row in conn.execute(query)]

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        t = transition_table
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if load is not None:
            query = query.where(t.c.load == load)
        with self._failing("read the transitions"), self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [
            TransitionRecord(r.load, r.source, r.dest, r.trigger, r.reason, r.at)
            for r in reversed(rows)
        ]

    def save_forecast(self, forecast: Forecast, fetched_at: float) -> None:
        if self.read_only:
            raise StoreError(f"{self.path} was opened read-only: nothing can be saved")
        t = forecast_table
        values = {
            "issued_at": forecast.issued_at,
            "fetched_at": fetched_at,
            "slots": json.dumps([[s.start, s.pv_w] for s in forecast.slots]),
        }
        stmt = sqlite_insert(t).values(source=forecast.source, **values)
        with self._failing("save the forecast"), self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))
        self.writes += 1

    def load_forecast(self, source: str | None = None) -> tuple[Forecast, float] | None:
        t = forecast_table
        query = select(t).order_by(t.c.fetched_at.desc()).limit(1)
        if source is not None:
            query = query.where(t.c.source == source)
        with self._failing("read the forecast"), self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        slots = tuple(Slot(int(start), float(w)) for start, w in json.loads(row.slots))
        return Forecast(int(row.issued_at), row.source, slots), float(row.fetched_at)

    def close(self) -> None:
        self.engine.dispose()


def _upsert(
    conn: Connection, table: Table, key_col: str, key: str | int, data: str | bytes
) -> None:
    stmt = sqlite_insert(table).values({key_col: key, "data": data})
    conn.execute(stmt.on_conflict_do_update(index_elements=[key_col], set_={"data": data}))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL survives kill -9 with at most the last transaction lost; NORMAL sync spares SD cards.
    pysqlite's own BEGIN is off (`_begin` emits it): it left DDL outside the transaction."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _connect_read_only(path: str) -> sqlite3.Connection:
    """A connection that cannot write. While a writer has the store open its `-wal` exists and
    SQLite's read-only mode reads through it; without one, `immutable` reads the file alone,
    since a read-only WAL connection would otherwise create `-wal` and `-shm` and leave them.
    (A writer starting meanwhile only appends to its `-wal` until its first checkpoint, so a
    command's few reads still see a consistent file.) No pool: each read decides afresh."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)


def _cause(exc: BaseException) -> str:
    """The driver's error in one line (SQLAlchemy's wrapper repeats the SQL)."""
    cause = getattr(exc, "orig", None) or exc
    return " ".join(f"{type(cause).__name__}: {cause}".split())[:200]


def _begin(conn: Connection) -> None:
    """BEGIN for every transaction, DDL included: creating the schema and writing its version
    row commit together, so a first start killed half-way leaves an empty file that opens."""
    conn.exec_driver_sql("BEGIN")
