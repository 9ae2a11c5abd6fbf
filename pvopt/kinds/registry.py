"""The load-kind registry: one `LoadKind` per `equipment[].type`, registered by its module."""

from __future__ import annotations

from dataclasses import dataclass

from machines.model import Kind, LoadSpec
from machines.registry import Registry, UnknownName
from machines.wiring import LoadTopics
from pvopt.devices.link import DeviceLink
from pvopt.kinds.base import EquipmentModel


class UnknownLoadKind(UnknownName):
    """A `type:` no module registered."""


@dataclass(frozen=True, slots=True)
class LoadKind:
    """Everything the shell needs to know about one kind of load, declared once by its module.

    The simulator's physics is registered apart, in `pvsim.physics`, so the service never loads
    the simulator's libraries.
    """

    model: type[EquipmentModel]  # its pydantic model; `type: Literal[...]` is the YAML tag
    actuation: Kind  # how the policy drives it: DIMMER any power, RELAY all or nothing
    command_topic: str  # default command topic; `{id}` is the load id
    temperature_topic: str | None = None  # default probe topic of a temperature-driven kind
    learns_power: bool = False  # the policy learns its real power from the meter step

    @property
    def type_name(self) -> str:
        return self.model.type_name()

    def spec(self, eq: EquipmentModel, load_id: int) -> LoadSpec:
        """The core's view of one validated entry of this kind."""
        return LoadSpec(
            name=eq.name,
            id=load_id,
            enabled=eq.enabled,
            kind=self.actuation,
            learns_power=self.learns_power,
            probes_per_hour=eq.thermostat_probes_per_hour,
            **eq.spec_fields(),
        )

    def link(self, eq: EquipmentModel, load_id: int, src: str = "pvopt") -> DeviceLink:
        """How the entry's device is spoken to: its `device:`, the seed's topics by default;
        `src` names this pvopt to devices that reply (Shelly Gen2's RPC)."""
        seed_topic = eq.command_topic or self.command_topic.format(id=load_id)
        return eq.device.link(seed_topic, self.actuation is Kind.DIMMER, eq.curve(), src)

    def topics(
        self, eq: EquipmentModel, load_id: int, link: DeviceLink | None = None
    ) -> LoadTopics:
        """The entry's topics: what it and its device set, else this kind's defaults."""
        probe = None
        if self.temperature_topic is not None:
            probe = eq.probe_topic() or self.temperature_topic.format(id=load_id)
        link = link or self.link(eq, load_id)
        return LoadTopics(
            command=link.command_topic,
            control=f"scr/{load_id}/control",
            temperature=probe,
            reports=link.report_topics(),
        )


LOAD_KINDS: Registry[LoadKind] = Registry("type", UnknownLoadKind)


def register_load_kind(kind: LoadKind, *, replace: bool = False) -> LoadKind:
    """Make `kind` valid in configs under its type name; a clash is an error unless `replace`."""
    return LOAD_KINDS.register(kind.type_name, kind, replace=replace)


def load_kind(type_name: str) -> LoadKind:
    """The registered kind for a `type:` tag; UnknownLoadKind otherwise (never a guess)."""
    return LOAD_KINDS.get(type_name)
