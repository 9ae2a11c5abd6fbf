"""The example houses and day traces shipped inside the package (`pvsim/data/`), so `pvopt demo`,
`pvopt config check house` and `pvopt simulate broken_clouds --config house` work from a pip
install, from any folder. `examples/` in the repository links to the same files.

Found without importing `pvsim`: `config check` stays as lean as the service."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path


def _data() -> Path:
    spec = find_spec("pvsim")  # finds the package without running it
    assert spec is not None and spec.submodule_search_locations, "pvopt is installed with pvsim"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


DATA = _data()
TRACES = DATA / "traces"


def shipped_traces() -> list[str]:
    return sorted(p.name.removesuffix(".csv.gz") for p in TRACES.glob("*.csv.gz"))


def config_path(name_or_path: str) -> Path:
    """FILE if it exists, else the shipped example of that name (`house`, `seed_house.yml`)."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    shipped = DATA / f"{given.name.removesuffix('.yml')}.yml"
    return shipped if shipped.is_file() else given


def trace_path(name_or_path: str) -> Path:
    """FILE if it exists, else the shipped trace of that name (`broken_clouds`, with or
    without `.csv.gz`)."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    stem = given.name.removesuffix(".gz").removesuffix(".csv")
    shipped = TRACES / f"{stem}.csv.gz"
    return shipped if shipped.is_file() else given
