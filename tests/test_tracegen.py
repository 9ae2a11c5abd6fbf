"""The held-out traces are what `python -m pvsim.tracegen` writes: same seed, same bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pvsim.tracegen import HELD_OUT, write
from tests.conftest import TRACES


@pytest.mark.slow
@pytest.mark.parametrize("spec", HELD_OUT, ids=lambda s: s.name)
def test_shipped_held_out_traces_regenerate_identically(spec, tmp_path: Path) -> None:
    fresh = write(spec, tmp_path)
    shipped = TRACES / fresh.name
    assert gzip.decompress(fresh.read_bytes()) == gzip.decompress(shipped.read_bytes())
