"""What the store has not committed yet, and the one place that commits it (docs/topics.md):
transitions, commands and schedule events at once, energy with each checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from machines.controller import Controller
from machines.energy import Ledger, dump_ledger
from machines.errors import StoreError
from machines.loads import TransitionRecord
from machines.schedules import Planner
from machines.totals import DurableTotals
from state.store import StateStore

log = logging.getLogger("pvopt.jobs.persist")

PRUNE_EVERY_S = 86400.0


class Persister:
    """Keeps what a failed write could not commit and retries it with the next write, so a
    full disk never stops the regulation and loses nothing while memory lasts.

    Runs on the regulator's worker only; `committed_until` (the end of the newest committed
    interval) is read by the InfluxDB worker.
    """

    def __init__(
        self,
        store: StateStore,
        ctl: Controller,
        planner: Planner,
        ledger: Ledger,
        *,
        history_days: float,
        dry_run: bool,
        pending_intervals: list[dict[str, Any]],
        committed_until: int = 0,
        outbox_doc: Callable[[], dict[str, Any]] | None = None,
        totals: DurableTotals | None = None,
    ):
        self.store = store
        self.ctl = ctl
        self.planner = planner
        self.ledger = ledger
        self.history_days = history_days
        self.dry_run = dry_run
        # intervals drained from the ledger but not committed yet (a failed write keeps them)
        self.pending_intervals = pending_intervals
        self.pending_records: list[TransitionRecord] = []
        self.committed_until = committed_until
        self.outbox_doc = outbox_doc
        # lifetime totals (Home Assistant's Energy dashboard), committed with the intervals
        self.totals = totals if totals is not None else DurableTotals({}, [])
        self.last_prune = 0.0
        self.error: str | None = None  # why the store cannot be written, during an episode
        self.failing_since: float | None = None
        self.failed_writes = 0

    def persist(
        self,
        records: Sequence[TransitionRecord],
        now: float,
        *,
        write: bool = False,
        checkpoint: bool = False,
    ) -> None:
        """Commit `records` (and the machines, the planner) when there are any or `write`
        asks; with `checkpoint` also the ended intervals, the ledger and the outbox's
        progress. A dry run keeps everything in memory."""
        self.pending_records.extend(records)
        if checkpoint:
            self.pending_intervals.extend(self.ctl.drain_intervals())
        if self.dry_run or not (self.pending_records or write or checkpoint):
            return
        docs = {"planner": self.planner.dump()}
        totals = self.totals.add(self.pending_intervals)  # committed with the intervals
        docs["totals"] = totals.dump()
        battery = self.ctl.battery_doc()
        if battery is not None:  # the mode chosen at run time survives a restart
            docs["battery"] = battery
        if checkpoint:
            docs["ledger"] = dump_ledger(self.ledger)
            if self.outbox_doc is not None:
                docs["outbox"] = self.outbox_doc()
        prune = None
        if checkpoint and now - self.last_prune >= PRUNE_EVERY_S:
            prune = int(now - self.history_days * 86400)
        try:
            self.store.save(
                self.ctl.dump(), self.pending_records, docs, self.pending_intervals, prune
            )
        except StoreError as exc:  # a full disk, a read-only file, a lock: regulation goes on
            self._failed(exc, now)
            return
        if self.failing_since is not None:
            log.info(
                "state store writable again after %.0f s (%d failed write(s)): what was kept "
                "in memory is saved",
                now - self.failing_since,
                self.failed_writes,
            )
            self.failing_since, self.error, self.failed_writes = None, None, 0
        self.totals.commit(totals, self.ledger.peek() if checkpoint else None)
        if prune is not None:
            self.last_prune = now
        closed = [i["end"] for i in self.pending_intervals if not i.get("open")]
        if closed:
            self.committed_until = max(self.committed_until, *closed)
        self.pending_records, self.pending_intervals = [], []

    def _failed(self, exc: StoreError, now: float) -> None:
        """One log line per episode, not a traceback per tick; the status carries the rest."""
        self.failed_writes += 1
        cause = exc.__cause__ or exc  # the driver's own error: the log line names the file
        cause = getattr(cause, "orig", None) or cause  # SQLAlchemy's wrapper repeats the SQL
        error = " ".join(f"{type(cause).__name__}: {cause}".split())[:200]
        if self.failing_since is None:
            self.failing_since = now
            log.error(
                "state store %s cannot be written (%s): regulation goes on from memory, the "
                "writes are retried and resume when it is writable",
                getattr(self.store, "path", "(memory)"),
                error,
            )
        self.error = error

    def status(self) -> dict[str, Any]:
        """`store` in the status document."""
        return {
            "writes": self.store.writes,
            "error": self.error,
            "failing_since": self.failing_since,
            "unsaved": len(self.pending_records) + len(self.pending_intervals),
        }

    def checkpoint(self, now: float) -> None:
        """Energy up to `now`, setpoints, temperatures and the intervals that ended."""
        self.ctl.account(now)  # close the interval that just ended
        self.persist(self.ctl.drain_records(), now, checkpoint=True)
