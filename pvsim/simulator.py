"""Replay a trace through the real controller on a virtual clock, with physical models
(docs/kpis.md).

Each simulated second the `House` applies its physics; every `sim.meter.period_s` the meter
source of `meter.kind` publishes what the real meter would and the service's `MeterCache` reads
it back; then the very controller the service runs decides; its commands act from the next
second.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from jobs.meter_cache import MeterCache
from machines.controller import Controller
from machines.model import FORCED_STATES, DeviceReport
from machines.policy import get_policy
from machines.schedules import Planner, ScheduleEvent
from machines.status import event_json
from pvopt.config import Config
from pvopt.kinds import meter_source
from pvsim.physics import PROBE_PERIOD_S, House, SimResult
from pvsim.traces import Trace

__all__ = ["SimResult", "simulate"]


def simulate(
    trace: Trace,
    cfg: Config,
    policy: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    record: bool = False,
) -> SimResult:
    """Replay `trace` with `cfg`; deterministic: same inputs, same result."""
    reg = cfg.regulation if policy is None else cfg.regulation.model_copy(update={"policy": policy})
    start = trace.start
    house = House(cfg, trace, record=record)
    planner = Planner(
        cfg.schedule_list(),
        cfg.site.tz,
        seed_rule=get_policy(reg.policy).seed_rule,
        tank_litres=cfg.tank_litres(),
    )
    ctl = Controller(house.specs, cfg.site.tz, reg.params(), start, planner=planner)
    events: list[ScheduleEvent] = []
    machines = [ctl.machines[s.name] for s in house.specs]
    meter_period = max(1, round(cfg.sim.meter.period_s))
    tick_s = reg.tick_s
    source = meter_source(cfg.meter)  # what the virtual meter publishes, and how it is read
    meter = MeterCache(source, started_at=start)  # the service's own, fed over the "wire"
    last_tick = -math.inf
    total = trace.seconds
    # what each load's device reports back (its preset): availability, measured power
    links = [w.codec for w in cfg.wiring()]
    tells_online = [link.availability_topic() is not None for link in links]
    offline_ws = 0.0  # W·s the controller counted for loads whose device was off the network
    for i in range(total):
        now = start + i
        house.step(i)
        if house.any_windows:
            for k, online in house.availability_changes:
                if tells_online[k]:
                    machines[k].device.observe(DeviceReport(online=online), now)
            house.availability_changes.clear()
            for k, m in enumerate(machines):
                if not house.online[k]:
                    offline_ws += m.device.drawn_w(m.setpoint_w, now)
        if i % PROBE_PERIOD_S == 0:
            for k, temp in house.probe():
                machines[k].set_temperature(temp, now)
        fresh = i % meter_period == 0
        if fresh:
            for topic, payload in source.publish(house.reading()):
                meter.feed(topic, payload.encode(), now)
        # -- the regulator: on every fresh sample, else every tick_s
        if fresh or now - last_tick >= tick_s:
            last_tick = now
            ctl.tick(now, meter.snapshot(now))
            if planner.events:
                events.extend(planner.drain_events())
            for k, m in enumerate(machines):
                house.actuate(k, m.setpoint_w, m.state in FORCED_STATES, now)
                house.explain(k, ctl.limits.get(m.spec.name, ""))
        if progress is not None and i % 3600 == 0:
            progress(i, total)
    if progress is not None:
        progress(total, total)
    result = house.result(reg.policy, [event_json(e, cfg.site.tz) for e in events])
    result.kpis["offline_wh"] = round(offline_ws / 3600.0, 1)
    return result
