"""The load-kind registry: one `LoadKind` per `equipment[].type`, registered by its module."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from machines.model import Kind, LoadSpec
from pvopt.kinds.base import EquipmentModel


class UnknownLoadKind(KeyError):
    """A `type:` no module registered; says the closest registered one."""

    def __str__(self) -> str:
        return f"unknown type {self.args[0]!r}; {hint(self.args[0], load_kind_names())}"


def hint(name: str, valid: tuple[str, ...]) -> str:
    """'did you mean X? (valid: ...)' for an unknown registry name."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.0)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return f"{guess}(valid: {', '.join(valid)})"


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
            **eq.spec_fields(),
        )


_KINDS: dict[str, LoadKind] = {}


def register_load_kind(kind: LoadKind, *, replace: bool = False) -> LoadKind:
    """Make `kind` valid in configs under its type name; a clash is an error unless `replace`."""
    name = kind.type_name
    if name in _KINDS and not replace:
        raise ValueError(f"load kind {name!r} is already registered")
    _KINDS[name] = kind
    return kind


def unregister_load_kind(type_name: str) -> None:
    """Forget a kind (tests that register their own)."""
    _KINDS.pop(type_name, None)


def load_kind(type_name: str) -> LoadKind:
    """The registered kind for a `type:` tag; UnknownLoadKind otherwise (never a guess)."""
    try:
        return _KINDS[type_name]
    except KeyError:
        raise UnknownLoadKind(type_name) from None


def load_kind_names() -> tuple[str, ...]:
    """Registered type names, in registration order (the order error messages list them in)."""
    return tuple(_KINDS)
