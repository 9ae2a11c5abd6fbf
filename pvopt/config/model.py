"""The whole config: one field per section, and what the service derives from it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time

from pydantic import Field

from machines.heat_plan import FORECAST_MAX_AGE_S, HeatPlanner, Legionella, Target
from machines.model import LoadSpec
from machines.schedules import DAY_NAMES, Schedule
from machines.sun import Plant
from machines.wiring import LoadWiring
from pvopt.config.equipment import Equipment, load_spec
from pvopt.config.forecast import ForecastConfig
from pvopt.config.homeassistant import HomeAssistantConfig
from pvopt.config.influx import InfluxConfig
from pvopt.config.mqtt import MqttConfig
from pvopt.config.planning import PlanningConfig
from pvopt.config.regulation import RegulationConfig
from pvopt.config.schedules import ScheduleConfig
from pvopt.config.sim import SimConfig
from pvopt.config.site import SiteConfig
from pvopt.config.state import StateConfig
from pvopt.config.tariff import TariffConfig
from pvopt.config.tic import TicConfig
from pvopt.config.web import WebConfig
from pvopt.kinds import BatteryConfig, MeterConfig, Strict, load_kind


class Config(Strict):
    site: SiteConfig = SiteConfig()
    mqtt: MqttConfig = MqttConfig()
    meter: MeterConfig = MeterConfig()
    battery: BatteryConfig | None = None  # a home battery beside the meter (docs/battery.md)
    tic: TicConfig = TicConfig()
    regulation: RegulationConfig = RegulationConfig()
    state: StateConfig = StateConfig()
    influxdb: InfluxConfig | None = None
    tariff: TariffConfig | None = None  # the money shown (docs/tariff.md)
    web: WebConfig | None = None  # the local page (pvopt/adapters/web)
    forecast: ForecastConfig | None = None  # the solar forecast (pvopt/adapters/forecast)
    planning: PlanningConfig = PlanningConfig()  # the heating plan (docs/planning.md)
    equipment: list[Equipment] = Field(min_length=1)
    schedules: list[ScheduleConfig] = []
    sim: SimConfig = SimConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    source: str | None = Field(None, exclude=True)  # the file it came from, for messages

    def load_id(self, index: int) -> int:
        eq = self.equipment[index]
        return eq.id if eq.id is not None else index

    def specs(self) -> list[LoadSpec]:
        """The loads in priority order (lower `priority` first, ties in list order)."""
        ranked = sorted(
            range(len(self.equipment)),
            key=lambda i: (
                self.equipment[i].priority if self.equipment[i].priority is not None else i,
                i,
            ),
        )
        return [load_spec(self.equipment[i], self.load_id(i)) for i in ranked]

    def wiring(self) -> list[LoadWiring]:
        """Each load's topics and device link, in priority order."""
        by_name = {eq.name: (eq, self.load_id(i)) for i, eq in enumerate(self.equipment)}
        out = []
        for spec in self.specs():
            eq, load_id = by_name[spec.name]
            kind = load_kind(eq.type_name())
            link = kind.link(eq, load_id, src=self.mqtt.client_id)
            topics = kind.topics(eq, load_id, link)
            out.append(LoadWiring(spec, topics, retain=eq.retain, codec=link))
        return out

    def schedule_list(self) -> list[Schedule]:
        """The `schedules:` entries for the planner, each load resolved to its name."""
        names: dict[str, str] = {}
        for i, eq in enumerate(self.equipment):
            names[eq.name] = eq.name
            names.setdefault(str(self.load_id(i)), eq.name)
        out = []
        for sc in self.schedules:
            start = end = at = None
            if sc.window is not None:
                a, b = (p.strip() for p in sc.window.split("-"))
                start, end = time.fromisoformat(a), time.fromisoformat(b)
            if sc.at is not None:
                at = time.fromisoformat(sc.at)
            out.append(
                Schedule(
                    name=sc.name,
                    load=names[str(sc.load)],
                    action=sc.action,
                    start=start,
                    end=end,
                    tariff=sc.tariff is not None,
                    at=at,
                    days=frozenset(DAY_NAMES.index(d) for d in sc.days),
                    min_today_wh=sc.min_energy_today_wh,
                    min_two_days_wh=sc.min_energy_two_days_wh,
                )
            )
        return out

    def heat_planner(self, colour_of: Callable[[date], str | None] | None = None) -> HeatPlanner:
        """The heating plan of this house; `colour_of`: a Tempo day's colour, when known."""
        targets: dict[str, list[Target]] = {}
        legionella: dict[str, Legionella] = {}
        for eq in self.equipment:
            wanted, cycle = eq.comfort()
            if wanted:
                targets[eq.name] = wanted
            if cycle is not None:
                legionella[eq.name] = cycle
        return HeatPlanner(
            self.site.tz,
            tariff=self.tariff.tariff() if self.tariff is not None else None,
            colour_of=colour_of,
            targets=targets,
            legionella=legionella,
            pessimism=self.planning.pessimism,
            max_age_s=self.forecast.max_age_h * 3600.0 if self.forecast else FORECAST_MAX_AGE_S,
        )

    def plant(self) -> Plant | None:
        """The panels the sun-aware relay rule draws its clear-sky curve for: `site:`'s
        position, else the solar forecast's; None without either, without a PV reading (the
        rule reads the sky off it), or with the meter-only rule (docs/regulation.md)."""
        if self.regulation.relay_rule != "sun" or self.meter.pv_topic is None:
            return None
        plant = self.site.plant()
        f = self.forecast
        if plant is None and f is not None and f.latitude is not None and f.longitude is not None:
            tilt = f.tilt if f.tilt is not None else self.site.tilt
            azimuth = f.azimuth if f.azimuth is not None else self.site.azimuth
            plant = Plant(f.latitude, f.longitude, tilt, azimuth)
        return plant

    def tank_litres(self) -> dict[str, float]:
        """Tank volumes the user gave, for eco planning."""
        out = {}
        for eq in self.equipment:
            litres = eq.planning_tank_litres()
            if litres is not None:
                out[eq.name] = litres
        return out
