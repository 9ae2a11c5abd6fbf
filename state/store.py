"""Where machine state and the transition log survive restarts: one small interface, two stores."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from machines.loads import TransitionRecord

SCHEMA_VERSION = 2  # v2: the `document` table (schedule planner); v1 migrates


class StoreError(RuntimeError):
    """The store cannot be used as it is; says why (never silently reset)."""


class StateStore(Protocol):
    """What the service needs from persistence; the CLI only reads."""

    def load_machines(self) -> dict[str, dict[str, Any]]:
        """Every saved machine dump, by load name."""
        ...

    def save(
        self,
        machines: Mapping[str, dict[str, Any]],
        records: Sequence[TransitionRecord],
        planner: dict[str, Any] | None = None,
    ) -> None:
        """Commit machine dumps, transition records and the planner in one transaction."""
        ...

    def load_planner(self) -> dict[str, Any]:
        """The schedule planner's saved state ({} when none)."""
        ...

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        """The newest transition records, oldest first."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """A store for pure-unit tests and `--dry-run`: nothing touches a disk."""

    def __init__(self) -> None:
        self._machines: dict[str, dict[str, Any]] = {}
        self._records: list[TransitionRecord] = []
        self._planner: dict[str, Any] = {}
        self.writes = 0

    def load_machines(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(json.dumps(v)) for k, v in self._machines.items()}

    def save(
        self,
        machines: Mapping[str, dict[str, Any]],
        records: Sequence[TransitionRecord],
        planner: dict[str, Any] | None = None,
    ) -> None:
        self._machines.update({k: json.loads(json.dumps(v)) for k, v in machines.items()})
        self._records.extend(records)
        if planner is not None:
            self._planner = json.loads(json.dumps(planner))
        self.writes += 1

    def load_planner(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._planner))

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        found = [r for r in self._records if load is None or r.load == load]
        return found[-limit:]

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
document_table = Table(  # small JSON documents by name: "planner"
    "document", metadata, Column("key", String, primary_key=True), Column("data", Text)
)


class SqliteStore:
    """SQLite in WAL mode through SQLAlchemy 2.x Core (the ORM would cost the Pi 6 MB of RAM for
    three tables); each `save` is one committed transaction."""

    def __init__(self, path: str):
        self.path = path
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.writes = 0
        self.migrated_from: int | None = None
        try:
            self._open()
        except SQLAlchemyError as exc:
            raise StoreError(f"{path}: cannot open the state store: {exc}") from exc

    def _open(self) -> None:
        with self.engine.begin() as conn:
            tables = set(self.engine.dialect.get_table_names(conn))
            if tables and "meta" not in tables:
                raise StoreError(
                    f"{self.path} is not a pvopt state store (tables: {sorted(tables)})"
                )
            metadata.create_all(conn)
            row = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            if row is None:
                conn.execute(
                    meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                )
                return
            version = int(row.value)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema v{version}, newer than this pvopt knows "
                    f"(v{SCHEMA_VERSION}): upgrade pvopt; the store was left untouched"
                )
            if version < 1:
                raise StoreError(
                    f"{self.path} has schema v{version} and no migration to v{SCHEMA_VERSION}"
                )
            if version < SCHEMA_VERSION:  # v1 → v2: create_all above added `document`
                conn.execute(
                    meta_table.update()
                    .where(meta_table.c.key == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )
                self.migrated_from = version

    def load_machines(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(machine_table.c.name, machine_table.c.data))
            return {row.name: json.loads(row.data) for row in rows}

    def save(
        self,
        machines: Mapping[str, dict[str, Any]],
        records: Sequence[TransitionRecord],
        planner: dict[str, Any] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            if planner is not None:
                _upsert(conn, document_table, "key", "planner", json.dumps(planner, sort_keys=True))
            for name, dump in machines.items():
                _upsert(conn, machine_table, "name", name, json.dumps(dump, sort_keys=True))
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

    def load_planner(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(document_table.c.data).where(document_table.c.key == "planner")
            ).first()
        return json.loads(row.data) if row is not None else {}

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        t = transition_table
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if load is not None:
            query = query.where(t.c.load == load)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [
            TransitionRecord(r.load, r.source, r.dest, r.trigger, r.reason, r.at)
            for r in reversed(rows)
        ]

    def close(self) -> None:
        self.engine.dispose()


def _upsert(conn: Connection, table: Table, key_col: str, key: str, data: str) -> None:
    stmt = sqlite_insert(table).values({key_col: key, "data": data})
    conn.execute(stmt.on_conflict_do_update(index_elements=[key_col], set_={"data": data}))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL survives kill -9 with at most the last transaction lost; NORMAL sync spares SD cards."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
