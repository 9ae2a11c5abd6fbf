"""Energy per interval (docs/topics.md), pure: what the loads and the meter did in each interval of
`interval_s` seconds aligned to UTC multiples, from the values held between two ticks.

Loads count their commanded power (the same figure as their energy counters); the grid counts
the meter value held until the next one. An interval is emitted once time passes its end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from machines.export import Room, attribute_export, room_w
from machines.model import Kind

if TYPE_CHECKING:
    from machines.loads import LoadMachine

STATES = ("off", "eco", "solar", "boost")


@dataclass(slots=True)
class LoadSpan:
    """One load over a span: power held, state held, temperature if known."""

    name: str
    power_w: float
    state: str
    temperature_c: float | None = None
    room_w: float = 0.0  # what it could still take (machines/export.py)
    limit: str = ""  # why its decision did not take more
    continuous: bool = True


def export_room(m: LoadMachine, limits: Mapping[str, str], now: float) -> dict[str, Any]:
    """The export-attribution fields of a load's span: its room and its decision's limit."""
    spec = m.spec
    th = m.thresholds
    relay = spec.kind is Kind.RELAY
    room = room_w(
        spec.max_w,
        m.setpoint_w,
        relay,
        enabled=spec.enabled,
        temperature_c=m.temperature_c if m.temperature_known(now) else None,
        temp_max=th.temp_max if th else None,
    )
    return {"room_w": room, "limit": limits.get(spec.name, ""), "continuous": not relay}


@dataclass
class _LoadAcc:
    energy_wh: float = 0.0
    state_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))
    temp_ks: float = 0.0  # ∫ temperature dt, over temp_s seconds
    temp_s: float = 0.0


@dataclass
class _IntervalAcc:
    end: int
    seconds: float = 0.0
    grid_s: float = 0.0
    import_wh: float = 0.0
    export_wh: float = 0.0
    diverted_wh: float = 0.0
    loads_wh: float = 0.0
    active_ws: float = 0.0
    reactive_s: float = 0.0
    reactive_vars: float = 0.0
    pv_s: float = 0.0
    pv_wh: float = 0.0
    export_by_reason: dict[str, float] = field(default_factory=dict)  # Wh
    loads: dict[str, _LoadAcc] = field(default_factory=dict)


class Ledger:
    """Accumulates spans into intervals; `add` returns the intervals it completed."""

    def __init__(self, interval_s: int, loads: list[str]):
        self.interval_s = interval_s
        self.names = list(loads)
        self.current: _IntervalAcc | None = None

    def _new(self, end: int) -> _IntervalAcc:
        return _IntervalAcc(end, loads={n: _LoadAcc() for n in self.names})

    def add(
        self,
        t0: float,
        t1: float,
        loads: list[LoadSpan],
        grid_w: float | None,
        reactive_var: float | None = None,
        pv_w: float | None = None,
    ) -> list[dict[str, Any]]:
        """Account [t0, t1) with these values held; return the completed intervals."""
        done: list[dict[str, Any]] = []
        n = self.interval_s
        while t0 < t1:
            end = (math.floor(t0 / n) + 1) * n
            if self.current is not None and end < self.current.end:
                end = self.current.end  # the wall clock went back: fill the open one, never drop it
            if self.current is None or self.current.end != end:
                if self.current is not None and self.current.end < end:
                    done.append(self._doc(self.current))
                self.current = self._new(end)
            seg_end = min(t1, end)
            self._accumulate(self.current, seg_end - t0, loads, grid_w, reactive_var, pv_w)
            if seg_end >= end:
                done.append(self._doc(self.current))
                self.current = None
            t0 = seg_end
        return done

    def peek(self) -> list[dict[str, Any]]:
        """The open interval as it stands (at shutdown: a restart continues it, and the same
        `end` written again replaces it)."""
        return [self._doc(self.current)] if self.current is not None else []

    @staticmethod
    def _accumulate(
        acc: _IntervalAcc,
        dt: float,
        loads: list[LoadSpan],
        grid_w: float | None,
        reactive_var: float | None,
        pv_w: float | None,
    ) -> None:
        h = dt / 3600.0
        acc.seconds += dt
        total_w = 0.0
        for span in loads:
            la = acc.loads.get(span.name)
            if la is None:
                continue
            la.energy_wh += span.power_w * h
            la.state_s[span.state] = la.state_s.get(span.state, 0.0) + dt
            if span.temperature_c is not None:
                la.temp_ks += span.temperature_c * dt
                la.temp_s += dt
            total_w += span.power_w
        acc.loads_wh += total_w * h
        if grid_w is not None:
            acc.grid_s += dt
            acc.active_ws += grid_w * dt
            if grid_w > 0:
                acc.import_wh += grid_w * h
            else:
                acc.export_wh -= grid_w * h
            surplus = total_w - grid_w  # PV − base load, as the meter sees it
            acc.diverted_wh += max(0.0, min(total_w, surplus)) * h
            if grid_w < 0:
                rooms = [Room(s.room_w, s.limit or "settling", s.continuous) for s in loads]
                for reason, w in attribute_export(-grid_w, rooms).items():
                    acc.export_by_reason[reason] = acc.export_by_reason.get(reason, 0.0) + w * h
        if reactive_var is not None:
            acc.reactive_s += dt
            acc.reactive_vars += reactive_var * dt
        if pv_w is not None:
            acc.pv_s += dt
            acc.pv_wh += pv_w * h

    def _doc(self, acc: _IntervalAcc) -> dict[str, Any]:
        """An interval as stored and written: plain JSON, rounded to what meters resolve."""
        grid: dict[str, Any] = {
            "covered_s": round(acc.seconds, 1),
            "meter_s": round(acc.grid_s, 1),
            "import_wh": round(acc.import_wh, 4),
            "export_wh": round(acc.export_wh, 4),
            "diverted_wh": round(acc.diverted_wh, 4),
            "loads_wh": round(acc.loads_wh, 4),
        }
        if acc.grid_s > 0:
            grid["active_w"] = round(acc.active_ws / acc.grid_s, 2)
        if acc.reactive_s > 0:
            grid["reactive_var"] = round(acc.reactive_vars / acc.reactive_s, 2)
        if acc.pv_s > 0:
            grid["pv_wh"] = round(acc.pv_wh, 4)
        loads = {}
        for name, la in acc.loads.items():
            entry: dict[str, Any] = {
                "energy_wh": round(la.energy_wh, 4),
                "power_w": round(la.energy_wh * 3600.0 / acc.seconds, 2) if acc.seconds else 0.0,
                **{f"{s}_s": round(v, 1) for s, v in la.state_s.items()},
            }
            if la.temp_s > 0:
                entry["temperature_c"] = round(la.temp_ks / la.temp_s, 2)
            loads[name] = entry
        doc: dict[str, Any] = {
            "end": acc.end,
            "interval_s": self.interval_s,
            "grid": grid,
            "loads": loads,
        }
        if acc.export_by_reason:  # beside `grid`: InfluxDB writes `grid` as flat fields
            doc["export_by_reason_wh"] = {
                k: round(v, 4) for k, v in sorted(acc.export_by_reason.items())
            }
        return doc


def dump_ledger(ledger: Ledger) -> dict[str, Any]:
    """The open interval, so a restart inside it continues it instead of losing its start."""
    acc = ledger.current
    if acc is None:
        return {}
    data = asdict(acc)
    return {"interval_s": ledger.interval_s, "current": data}


def restore_ledger(ledger: Ledger, saved: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Reopen a saved open interval; one that ended while pvopt was down is returned, complete
    with what it had (its `covered_s` tells how much)."""
    data = saved.get("current")
    if not data or saved.get("interval_s") != ledger.interval_s:
        return []
    loads = {n: _LoadAcc(**v) for n, v in data.pop("loads").items() if n in ledger.names}
    for n in ledger.names:
        loads.setdefault(n, _LoadAcc())
    acc = _IntervalAcc(**data, loads=loads)
    if now < acc.end:
        ledger.current = acc
        return []
    return [ledger._doc(acc)]
