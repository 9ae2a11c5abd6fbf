"""Day traces (`ts,pv_w,base_load_w`), plain or gzipped, resampled to one value per second."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

HEADER = ["ts", "pv_w", "base_load_w"]


class TraceError(ValueError):
    """A trace file that cannot be replayed; says which file and line."""


@dataclass(frozen=True)
class Trace:
    """PV and base load per second from `start` (epoch s, UTC)."""

    name: str
    start: float
    pv_w: np.ndarray
    base_w: np.ndarray

    @property
    def seconds(self) -> int:
        return len(self.pv_w)


def _open(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_trace(path: str | Path) -> Trace:
    """Read a trace and interpolate it linearly to 1 s (the last row holds for its interval)."""
    p = Path(path)
    name = p.name.removesuffix(".gz")
    try:
        with _open(p) as fh:
            rows = csv.reader(fh)
            header = next(rows, None)
            if header != HEADER:
                raise TraceError(f"{p}:1: header must be {','.join(HEADER)}, got {header}")
            ts: list[float] = []
            pv: list[float] = []
            base: list[float] = []
            for lineno, row in enumerate(rows, start=2):
                try:
                    stamp, a, b = row
                    ts.append(_epoch(stamp))
                    pv.append(float(a))
                    base.append(float(b))
                except ValueError as exc:
                    raise TraceError(f"{p}:{lineno}: bad row {row!r}: {exc}") from None
    except OSError as exc:
        raise TraceError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(ts) < 2:
        raise TraceError(f"{p}: needs at least two rows")
    t = np.asarray(ts) - ts[0]
    steps = np.diff(t)
    if (steps <= 0).any():
        bad = int(np.argmax(steps <= 0)) + 3
        raise TraceError(f"{p}:{bad}: timestamps must increase")
    step = float(np.median(steps))
    grid = np.arange(0.0, t[-1] + step)
    return Trace(
        name=name,
        start=ts[0],
        pv_w=np.clip(np.interp(grid, t, np.asarray(pv)), 0.0, None),
        base_w=np.clip(np.interp(grid, t, np.asarray(base)), 0.0, None),
    )


def window(trace: Trace, start_s: int, seconds: int) -> Trace:
    """A slice of a trace: `seconds` from `start_s` seconds after its start."""
    if not 0 <= start_s < trace.seconds:
        raise TraceError(f"{trace.name}: start {start_s} s outside its {trace.seconds} s")
    return Trace(
        trace.name,
        trace.start + start_s,
        trace.pv_w[start_s : start_s + seconds],
        trace.base_w[start_s : start_s + seconds],
    )


def offset_of(trace: Trace, hhmm: str, tz: ZoneInfo) -> int:
    """Seconds from the trace's start to local time `hhmm` on its first day."""
    try:
        hh, mm = (int(x) for x in hhmm.split(":"))
        at = time(hh, mm)
    except ValueError:
        raise TraceError(f"not a time of day: {hhmm!r} (HH:MM)") from None
    day = datetime.fromtimestamp(trace.start, tz).date()
    return round(datetime.combine(day, at, tz).timestamp() - trace.start)


def chain(name: str, days: list[Trace], start: float) -> Trace:
    """Whole UTC days of `days`, one after the other from `start` (a UTC midnight): a
    multi-day trace made of single days, each keeping its own sun and household."""
    pv, base = [], []
    for d in days:
        whole = d.seconds // 86400 * 86400
        if whole == 0:
            raise TraceError(f"{d.name}: under a day; chain takes whole days")
        pv.append(d.pv_w[:whole])
        base.append(d.base_w[:whole])
    return Trace(name, start, np.concatenate(pv), np.concatenate(base))
