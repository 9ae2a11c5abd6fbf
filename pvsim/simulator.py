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
from machines.forecast import Forecast
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
    forecasts: list[Forecast] | None = None,
) -> SimResult:
    """Replay `trace` with `cfg`; deterministic: same inputs, same result. With `forecasts`
    (in issue order; each used from its issue time) the heating plan runs as in the service."""
    reg = cfg.regulation if policy is None else cfg.regulation.model_copy(update={"policy": policy})
    start = trace.start
    house = House(cfg, trace, record=record)
    heat = None
    if forecasts is not None:
        calendar = cfg.sim.tempo_calendar
        heat = cfg.heat_planner(colour_of=calendar.get)
    planner = Planner(
        cfg.schedule_list(),
        cfg.site.tz,
        seed_rule=get_policy(reg.policy).seed_rule,
        tank_litres=cfg.tank_litres(),
        heat=heat,
    )
    issues = list(forecasts or [])
    next_issue = 0
    ctl = Controller(
        house.specs,
        cfg.site.tz,
        reg.params(),
        start,
        planner=planner,
        plant=cfg.plant(),
        battery=cfg.battery.plan() if cfg.battery is not None else None,
    )
    events: list[ScheduleEvent] = []
    machines = [ctl.machines[s.name] for s in house.specs]
    meter_period = max(1, round(cfg.sim.meter.period_s))
    pv_topic = cfg.meter.pv_topic  # the inverter reports its production, late, on its period
    pv_period = max(1, round(cfg.sim.meter.pv_period_s))
    pv_lag = round(cfg.sim.meter.pv_lag_s)
    tick_s = reg.tick_s
    source = meter_source(
        cfg.meter, cfg.battery
    )  # what the virtual meter publishes, and how it is read
    meter = MeterCache(source, started_at=start)  # the service's own, fed over the "wire"
    last_tick = -math.inf
    total = trace.seconds
    # what each load's device reports back (its preset): availability, measured power
    wires = cfg.wiring()
    links = [w.codec for w in wires]
    probed = [w.temperature_topic is not None for w in wires]
    metered = [k for k, link in enumerate(links) if link.power_topic() is not None]
    tells_online = [link.availability_topic() is not None for link in links]
    offline_ws = 0.0  # W·s the controller counted for loads whose device was off the network
    cut_export_ws = 0.0  # W·s exported while a load stood out as thermostat_cut
    cut_any = False
    for i in range(total):
        now = start + i
        grid = house.step(i)
        if cut_any and grid < 0:
            cut_export_ws -= grid
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
                if probed[k]:  # a tank behind a load without a probe (`sim.tank`) tells nothing
                    machines[k].set_temperature(temp, now)
        fresh = i % meter_period == 0
        if fresh:
            for k in metered:  # a metering device reports what its load really draws
                if house.online[k]:
                    machines[k].device.observe(DeviceReport(power_w=house.drawn_w(k)), now)
            for topic, payload in source.published(house.reading()):
                meter.feed(topic, payload.encode(), now)
        if pv_topic is not None and i % pv_period == 0:
            meter.feed(pv_topic, house.pv_report(i - pv_lag).encode(), now)
        # -- the regulator: on every fresh sample, else every tick_s
        if fresh or now - last_tick >= tick_s:
            last_tick = now
            while heat is not None and next_issue < len(issues):
                if issues[next_issue].issued_at > now:
                    break
                heat.forecast = issues[next_issue]
                next_issue += 1
            ctl.tick(now, meter.snapshot(now))
            if planner.events:
                events.extend(planner.drain_events())
            cut_any = False
            for k, m in enumerate(machines):
                house.actuate(k, m.setpoint_w, m.state in FORCED_STATES, now)
                house.explain(k, ctl.limits.get(m.spec.name, ""))
                cut_any = cut_any or m.reason == "thermostat_cut"
        if progress is not None and i % 3600 == 0:
            progress(i, total)
    if progress is not None:
        progress(total, total)
    result = house.result(reg.policy, [event_json(e, cfg.site.tz) for e in events])
    kpis = result.kpis
    kpis["offline_wh"] = round(offline_ws / 3600.0, 1)
    kpis["thermostat_cut_export_wh"] = round(cut_export_ws / 3600.0, 1)
    hours = max(total, 1) / 3600.0
    kpis["probes_per_hour"] = round(sum(m.thermostat.probes for m in machines) / hours, 2)
    for m in machines:  # what pvopt counted, beside what the load drew (`energy_wh`)
        kpis["loads"][m.spec.name]["counted_wh"] = round(m.energy_total_wh, 1)
    return result
