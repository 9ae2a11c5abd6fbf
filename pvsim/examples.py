"""The example houses and day traces shipped inside the package (`pvsim/data/`), so `pvopt demo`
and `pvopt simulate broken_clouds --config house` work from a pip install, from any folder.
`examples/` in the repository links to the same files."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DATA = Path(str(files("pvsim") / "data"))
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
