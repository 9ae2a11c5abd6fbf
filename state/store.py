"""Where machine state and the transition log survive restarts: one small interface, two stores."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from machines.loads import TransitionRecord

SCHEMA_VERSION = 1


class StoreError(RuntimeError):
    """The store cannot be used as it is; says why (never silently reset)."""


class StateStore(Protocol):
    """What the service needs from persistence; the CLI only reads."""

    def load_machines(self) -> dict[str, dict[str, Any]]:
        """Every saved machine dump, by load name."""
        ...

    def save(
        self, machines: Mapping[str, dict[str, Any]], records: Sequence[TransitionRecord]
    ) -> None:
        """Commit machine dumps and transition records in one transaction (one write)."""
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
        self.writes = 0

    def load_machines(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(json.dumps(v)) for k, v in self._machines.items()}

    def save(
        self, machines: Mapping[str, dict[str, Any]], records: Sequence[TransitionRecord]
    ) -> None:
        self._machines.update({k: json.loads(json.dumps(v)) for k, v in machines.items()})
        self._records.extend(records)
        self.writes += 1

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        found = [r for r in self._records if load is None or r.load == load]
        return found[-limit:]

    def close(self) -> None:
        pass


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


class MachineRow(Base):
    __tablename__ = "machine"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    data: Mapped[str] = mapped_column(Text)  # LoadMachine.dump() as JSON


class TransitionRow(Base):
    __tablename__ = "transition"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    load: Mapped[str] = mapped_column(String, ForeignKey("machine.name"), index=True)
    source: Mapped[str] = mapped_column(String)
    dest: Mapped[str] = mapped_column(String)
    trigger: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    at: Mapped[float] = mapped_column(Float, index=True)


class SqliteStore:
    """SQLite in WAL mode through SQLAlchemy 2.x; each `save` is one committed transaction."""

    def __init__(self, path: str):
        self.path = path
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.writes = 0
        try:
            self._open()
        except SQLAlchemyError as exc:
            raise StoreError(f"{path}: cannot open the state store: {exc}") from exc

    def _open(self) -> None:
        with Session(self.engine) as s, s.begin():
            tables = set(self.engine.dialect.get_table_names(s.connection()))
            if tables and "meta" not in tables:
                raise StoreError(
                    f"{self.path} is not a pvopt state store (tables: {sorted(tables)})"
                )
            Base.metadata.create_all(s.connection())
            row = s.get(Meta, "schema_version")
            if row is None:
                s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            version = int(row.value)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema v{version}, newer than this pvopt knows "
                    f"(v{SCHEMA_VERSION}): upgrade pvopt; the store was left untouched"
                )
            if version < SCHEMA_VERSION:  # no older schema exists yet: refuse, never reset
                raise StoreError(
                    f"{self.path} has schema v{version} and no migration to v{SCHEMA_VERSION}"
                )

    def load_machines(self) -> dict[str, dict[str, Any]]:
        with Session(self.engine) as s:
            return {row.name: json.loads(row.data) for row in s.scalars(select(MachineRow))}

    def save(
        self, machines: Mapping[str, dict[str, Any]], records: Sequence[TransitionRecord]
    ) -> None:
        with Session(self.engine) as s, s.begin():
            for name, data in machines.items():
                s.merge(MachineRow(name=name, data=json.dumps(data, sort_keys=True)))
            s.flush()
            s.add_all(
                TransitionRow(
                    load=r.load,
                    source=r.source,
                    dest=r.dest,
                    trigger=r.trigger,
                    reason=r.reason,
                    at=r.at,
                )
                for r in records
            )
        self.writes += 1

    def transitions(self, load: str | None = None, limit: int = 100) -> list[TransitionRecord]:
        query = select(TransitionRow).order_by(TransitionRow.id.desc()).limit(limit)
        if load is not None:
            query = query.where(TransitionRow.load == load)
        with Session(self.engine) as s:
            rows = list(s.scalars(query))
        return [
            TransitionRecord(r.load, r.source, r.dest, r.trigger, r.reason, r.at)
            for r in reversed(rows)
        ]

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL survives kill -9 with at most the last transaction lost; NORMAL sync spares SD cards."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
