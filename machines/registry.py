"""One shape for everything registered by name: policies, load kinds, meter sources and the
simulator's physics. A module registers what it defines; an unknown name is an error that
names the closest registered one, never a guess."""

from __future__ import annotations

import difflib
from typing import Generic, TypeVar

T = TypeVar("T")


def hint(name: str, valid: tuple[str, ...]) -> str:
    """'did you mean X? (valid: ...)' for an unknown registry name."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.0)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return f"{guess}(valid: {', '.join(valid)})"


class UnknownName(KeyError):
    """A name no module registered; says the closest registered one."""

    def __init__(self, what: str, name: str, valid: tuple[str, ...]) -> None:
        super().__init__(name)
        self.what, self.name, self.valid = what, name, valid

    def __str__(self) -> str:
        return f"unknown {self.what} {self.name!r}; {hint(self.name, self.valid)}"


class Registry(Generic[T]):
    """Items of one sort by name, in registration order (the order messages list them in)."""

    def __init__(self, what: str, unknown: type[UnknownName] = UnknownName) -> None:
        self.what = what  # how messages call a name: "policy", "type", "meter kind"
        self._unknown = unknown
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        """Make `name` valid; a clash is an error unless `replace`."""
        if name in self._items and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Forget a name (tests that register their own)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """The item registered as `name`; the registry's UnknownName otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise self._unknown(self.what, name, self.names()) from None

    def find(self, name: str) -> T | None:
        return self._items.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def unknown_message(self, name: str) -> str:
        """What `get(name)` would say, for validators that report rather than raise."""
        return str(self._unknown(self.what, name, self.names()))
