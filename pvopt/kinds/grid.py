"""The `grid` meter kind: one topic with signed active power (+ import), bare or in JSON
(Tasmota `ENERGY.Power`, Shelly `power`)."""

from __future__ import annotations

import json

from machines.meter import GridState, parse_grid_payload
from machines.model import MeterSnapshot
from pvopt.kinds.meters import HouseReading, MeterConfig, MeterSource


class GridSource(MeterSource):
    kind = "grid"

    def __init__(self, cfg: MeterConfig):
        super().__init__(cfg)
        assert cfg.grid_topic is not None  # check_config saw to it
        self.topic = cfg.grid_topic
        self._topics = frozenset({cfg.grid_topic})
        self.state = GridState()

    @classmethod
    def check_config(cls, cfg: MeterConfig) -> None:
        if not cfg.grid_topic:
            raise ValueError("meter.kind 'grid' needs meter.grid_topic")

    def meter_topics(self) -> frozenset[str]:
        return self._topics

    def feed_meter(self, topic: str, payload: bytes, now: float) -> bool:
        self.state = GridState(parse_grid_payload(payload, self.cfg.json_key, self.cfg.invert), now)
        return True

    def meter_snapshot(self, now: float) -> MeterSnapshot:
        return self.state.snapshot(now, self.cfg.stale_after_s)

    def newest_at(self) -> float | None:
        return self.state.at

    def publish(self, reading: HouseReading) -> list[tuple[str, str]]:
        cfg = self.cfg
        grid = round(-reading.grid_w if cfg.invert else reading.grid_w, 1)
        payload: object = grid
        for part in reversed(cfg.json_key.split(".") if cfg.json_key else []):
            payload = {part: payload}
        return [(self.topic, json.dumps(payload))]
