"""Linky meter arithmetic as pure functions: net apparent power, Q from ERQT deltas, active P."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

from machines.model import MeterSnapshot
from machines.value import value

MAX_ABS_W = 100_000.0  # anything beyond is a corrupt payload, not a house (docs/meter.md)
Q_MIN_STEP_VARH = 5.0  # a new Q once the index moved this much ...
Q_SLOW_STEP_VARH = 2.0  # ... or this much once Q_SLOW_AFTER_S passed
Q_SLOW_AFTER_S = 60.0
Q_ZERO_AFTER_S = 120.0  # no movement for this long: Q = 0
Q_FINE_MIN_S = 30.0  # the timed estimate: a new value after this long between index steps ...
Q_FINE_MIN_STEPS = 3.0  # ... or this many steps (a high rate: a shorter window, same precision)


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class MeterValueError(ValueError):
    """A meter payload that must not reach the regulator."""


@value
class ReactiveTracker:
    """What Q derivation remembers of the ERQT index (the seed's rule, docs/meter.md)."""

    ref_index: float | None = None  # index at the last Q update
    ref_at: float | None = None
    moved_at: float | None = None  # last time the index changed value
    last_index: float | None = None
    q_var: float = 0.0
    # The timed estimate (pvopt's, for the regulator): Q from the moments the index stepped, so
    # the 1-varh quantisation cancels; its precision grows with the rate.
    step_index: float | None = None  # index at the reference step
    step_at: float | None = None  # when it was first seen
    fine_q: float | None = None


def parse_number(payload: bytes | str) -> float:
    """Parse a bare ASCII decimal payload; refuse NaN, infinities, digit separators, other
    scripts' digits and text (all of which float() would take or half-take)."""
    if isinstance(payload, bytes) and payload.isdigit():  # ASCII digits only: most payloads
        value = float(payload)
        if math.isfinite(value):
            return value
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    number = text.strip()
    if not _DECIMAL.fullmatch(number):
        raise MeterValueError(f"not a number: {text[:40]!r}")
    value = float(number)
    if not math.isfinite(value):
        raise MeterValueError(f"not a finite number: {text[:40]!r}")
    return value


def check_apparent(value: float, topic: str) -> float:
    """SINSTS/SINSTI are non-negative VA below MAX_ABS_W."""
    if value < 0:
        raise MeterValueError(f"{topic}: negative apparent power {value}")
    if value > MAX_ABS_W:
        raise MeterValueError(f"{topic}: absurd apparent power {value} VA")
    return value


def check_active(value: float, topic: str) -> float:
    if abs(value) > MAX_ABS_W:
        raise MeterValueError(f"{topic}: absurd power {value} W")
    return value


def net_apparent(sinsts_va: float, sinsti_va: float) -> float:
    """Net apparent power S = SINSTS − SINSTI (positive = drawing)."""
    return sinsts_va - sinsti_va


def active_power(s_va: float, q_var: float) -> float:
    """The seed's P = sign(S)·sqrt(|S² − Q²|)."""
    return math.copysign(math.sqrt(abs(s_va * s_va - q_var * q_var)), s_va)


def active_power_bounded(s_va: float, q_var: float) -> float:
    """P as physics allows it: |P| ≤ |S|; where |S| < Q the seed's formula is off its domain
    (Q is a lagging estimate), so take the worst case for imports and none for exports."""
    q = abs(q_var)
    if abs(s_va) >= q:
        return math.copysign(math.sqrt(s_va * s_va - q * q), s_va)
    return s_va if s_va > 0 else 0.0


def track_reactive(tracker: ReactiveTracker, index_varh: float, now: float) -> ReactiveTracker:
    """Fold one ERQT index reading into the tracker; raise on a bad reading."""
    if index_varh < 0:
        raise MeterValueError(f"ERQT: negative index {index_varh}")
    if tracker.ref_index is None or tracker.ref_at is None:
        return ReactiveTracker(index_varh, now, now, index_varh, 0.0)
    if tracker.last_index is not None and index_varh < tracker.last_index:
        raise MeterValueError(f"ERQT: index went backwards ({tracker.last_index} → {index_varh})")
    stepped = index_varh != tracker.last_index
    moved_at = now if stepped else tracker.moved_at
    delta = index_varh - tracker.ref_index
    elapsed = now - tracker.ref_at
    timed = _timed(tracker, index_varh, now) if stepped else tracker
    if elapsed > 0 and (
        delta >= Q_MIN_STEP_VARH or (delta >= Q_SLOW_STEP_VARH and elapsed >= Q_SLOW_AFTER_S)
    ):
        q = delta * 3600.0 / elapsed
        if q > MAX_ABS_W:
            raise MeterValueError(f"ERQT: implies |Q| = {q:.0f} var")
        return ReactiveTracker(
            index_varh, now, moved_at, index_varh, q, timed.step_index, timed.step_at, timed.fine_q
        )
    if not stepped:
        return timed  # the same reading again (it arrives with every frame): nothing to fold
    return ReactiveTracker(
        timed.ref_index,
        timed.ref_at,
        moved_at,
        index_varh,
        timed.q_var,
        timed.step_index,
        timed.step_at,
        timed.fine_q,
    )


def _timed(tracker: ReactiveTracker, index_varh: float, now: float) -> ReactiveTracker:
    """The index stepped at `now` (to within a sample): time it against the reference step."""
    if tracker.step_index is None or tracker.step_at is None or tracker.last_index is None:
        # the first step seen: from now on steps are timed (the start index was mid-step)
        return replace(tracker, step_index=index_varh, step_at=now)
    steps = index_varh - tracker.step_index
    elapsed = now - tracker.step_at
    if elapsed <= 0 or not (elapsed >= Q_FINE_MIN_S or steps >= Q_FINE_MIN_STEPS):
        return tracker
    q = steps * 3600.0 / elapsed
    if q > MAX_ABS_W:
        return tracker  # the coarse rule refuses it
    return replace(tracker, step_index=index_varh, step_at=now, fine_q=q)


def reactive_timed(tracker: ReactiveTracker, now: float) -> float | None:
    """Q from the timed index steps, capped by the time since the last step (the index would
    have stepped by now at any higher rate); None until two steps were timed."""
    if tracker.fine_q is None or tracker.moved_at is None:
        return None
    since = now - tracker.moved_at
    return min(tracker.fine_q, 3600.0 / since) if since > 0 else tracker.fine_q


def reactive_power(tracker: ReactiveTracker, now: float) -> float:
    """Q to use at `now`: the last derived value, or 0 once the index stopped moving."""
    if tracker.moved_at is None or now - tracker.moved_at >= Q_ZERO_AFTER_S:
        return 0.0
    return tracker.q_var


@value
class LinkyState:
    """The latest SINSTS / SINSTI / ERQT values with their arrival times."""

    sinsts: float | None = None
    sinsts_at: float | None = None
    sinsti: float | None = None
    sinsti_at: float | None = None
    reactive: ReactiveTracker = ReactiveTracker()

    def drawn(self, sinsts_va: float, now: float) -> LinkyState:
        """A fresh SINSTS alone. A Linky sends both labels in every frame and only one is
        non-zero, so a fresh non-zero value of one says the other is 0 now: a bridge that
        publishes a label only when it changes (the other silent at 0 for minutes) gives pairs
        as fresh as a bridge that publishes every frame."""
        other, other_at = (0.0, now) if sinsts_va > 0 else (self.sinsti, self.sinsti_at)
        return LinkyState(sinsts_va, now, other, other_at, self.reactive)

    def injected(self, sinsti_va: float, now: float) -> LinkyState:
        """A fresh SINSTI alone (the rule of `drawn`)."""
        other, other_at = (0.0, now) if sinsti_va > 0 else (self.sinsts, self.sinsts_at)
        return LinkyState(other, other_at, sinsti_va, now, self.reactive)

    def newest_at(self) -> float | None:
        """Arrival of the newest power value: what staleness is judged on."""
        times = [t for t in (self.sinsts_at, self.sinsti_at) if t is not None]
        return max(times) if times else None

    def paired_at(self) -> float | None:
        """The older of the pair: a decision is only as fresh as both halves."""
        if self.sinsts_at is None:
            return None
        return self.sinsts_at if self.sinsti_at is None else min(self.sinsts_at, self.sinsti_at)

    def apparent_w(self) -> float | None:
        """Net apparent power S of the latest pair (+ drawing)."""
        if self.sinsts is None:
            return None
        return net_apparent(self.sinsts, self.sinsti or 0.0)

    def grid_w(self, now: float) -> float | None:
        """Active power at the meter (+ import) by the seed's formula, with the current Q."""
        s = self.apparent_w()
        return None if s is None else active_power(s, reactive_power(self.reactive, now))

    def snapshot(self, now: float, stale_after_s: float) -> MeterSnapshot:
        newest = self.newest_at()
        s = self.apparent_w()
        q = reactive_power(self.reactive, now) if s is not None else None
        return MeterSnapshot(
            grid_w=None if s is None or q is None else active_power(s, q),
            sampled_at=self.paired_at(),
            stale=newest is None or now - newest > stale_after_s,
            apparent_va=s,
            reactive_var=q,
            reactive_timed_var=reactive_timed(self.reactive, now) if s is not None else None,
        )


@value
class GridState:
    """The latest signed grid power (meter kind `grid`) with its arrival time."""

    grid_w: float | None = None
    at: float | None = None

    def snapshot(self, now: float, stale_after_s: float) -> MeterSnapshot:
        return MeterSnapshot(
            grid_w=self.grid_w,
            sampled_at=self.at,
            stale=self.at is None or now - self.at > stale_after_s,
        )


def json_object(payload: bytes | str) -> dict[str, object]:
    """A JSON object payload (a device's status message); anything else is refused."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    try:
        node = json.loads(text)
    except (ValueError, RecursionError):
        raise MeterValueError(f"not JSON: {text[:40]!r}") from None
    if not isinstance(node, dict):
        raise MeterValueError(f"not a JSON object: {text[:40]!r}")
    return node


def json_number(node: object, key: str) -> float:
    """A JSON value that is a number, or a number in a string ("00450", as TIC bridges send
    the meter's zero-padded digits); true/false, null and text are refused."""
    if isinstance(node, bool) or not isinstance(node, int | float | str):
        raise MeterValueError(f"{key} is not a number: {str(node)[:40]!r}")
    if isinstance(node, str):
        return parse_number(node)
    value = float(node)
    if not math.isfinite(value):
        raise MeterValueError(f"{key} is not a finite number: {node!r}")
    return value


def parse_grid_payload(payload: bytes | str, json_key: str | None, invert: bool) -> float:
    """Signed active power (+ import) from a bare number or a JSON object at a dotted key
    (Tasmota `ENERGY.Power`, Shelly `power`)."""
    if json_key is None:
        value = parse_number(payload)
    else:
        node: object = json_object(payload)
        for part in json_key.split("."):
            if not isinstance(node, dict) or part not in node:
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
                raise MeterValueError(f"no key {json_key!r} in {text[:60]!r}")
            node = node[part]
        value = json_number(node, json_key)
    return check_active(-value if invert else value, "grid")


MAX_SOC = 100.0


def check_soc(value: float, topic: str) -> float:
    """A state of charge is a percentage."""
    if not 0.0 <= value <= MAX_SOC:
        raise MeterValueError(f"{topic}: state of charge {value} is not 0-100 %")
    return value


@value
class BatteryState:
    """The latest home-battery power (+ charging) and state of charge, with arrival times:
    read like the grid, each half stale on its own."""

    power_w: float | None = None
    power_at: float | None = None
    soc: float | None = None
    soc_at: float | None = None

    def readings(self, now: float, stale_after_s: float) -> tuple[float | None, float | None]:
        """(battery_w, battery_soc) for a snapshot: None where absent or stale."""

        def fresh(value: float | None, at: float | None) -> float | None:
            return value if at is not None and now - at <= stale_after_s else None

        return fresh(self.power_w, self.power_at), fresh(self.soc, self.soc_at)
