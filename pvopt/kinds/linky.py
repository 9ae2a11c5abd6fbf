"""The Linky meter kind: SINSTS/SINSTI apparent power and the ERQT reactive index (docs/meter.md),
as teleinfo bridges (and a future TIC serial reader) publish them."""

from __future__ import annotations

import math

from machines.meter import LinkyState, check_apparent, parse_number, track_reactive
from machines.model import MeterSnapshot
from pvopt.kinds.meters import HouseReading, MeterConfig, MeterSource


class LinkySource(MeterSource):
    kind = "linky"
    kick_delay_s = 0.1  # a Linky sends SINSTS and SINSTI a few ms apart: decide on the pair
    reads_tic = True

    def __init__(self, cfg: MeterConfig):
        super().__init__(cfg)
        self.state = LinkyState()
        t = cfg.topics
        self._topics = frozenset({t.sinsts, t.sinsti, t.erqt})

    def meter_topics(self) -> frozenset[str]:
        return self._topics

    def feed_meter(self, topic: str, payload: bytes, now: float) -> bool:
        t = self.cfg.topics
        st = self.state
        if topic == t.sinsts:
            self.state = st.drawn(check_apparent(parse_number(payload), topic), now)
            return True
        if topic == t.sinsti:
            self.state = st.injected(check_apparent(parse_number(payload), topic), now)
            return True
        tracker = track_reactive(st.reactive, parse_number(payload), now)
        self.state = LinkyState(st.sinsts, st.sinsts_at, st.sinsti, st.sinsti_at, tracker)
        return False

    def meter_snapshot(self, now: float) -> MeterSnapshot:
        return self.state.snapshot(now, self.cfg.stale_after_s)

    def newest_at(self) -> float | None:
        return self.state.newest_at()

    def publish(self, reading: HouseReading) -> list[tuple[str, str]]:
        """Net S, quantised, on SINSTS when drawing or SINSTI when injecting; the ERQT index."""
        g, q, quantum = reading.grid_w, reading.reactive_var, reading.quantum_va
        s_va = round(math.sqrt(g * g + q * q) / quantum) * quantum
        t = self.cfg.topics
        return [
            (t.sinsts, f"{s_va if g >= 0 else 0.0:.0f}"),
            (t.sinsti, f"{0.0 if g >= 0 else s_va:.0f}"),
            (t.erqt, f"{int(reading.erqt_varh)}"),
        ]
