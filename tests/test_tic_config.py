"""The `tic:` config section: defaults, and errors that name file, line and key."""

from __future__ import annotations

import pytest

from pvopt import config

EQUIPMENT = "equipment:\n  - {name: heater, type: VariablePowerEquipment, max_power: 2000}\n"


def test_defaults() -> None:
    tic = config.parse(EQUIPMENT, environ={}).tic
    assert (tic.port, tic.mode, tic.topic_prefix) == ("/dev/ttyUSB0", "auto", "tic/")


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [
        ("tic:\n  mode: fast\n", "tic.mode", "historic"),
        ("tic:\n  topic_prefix: 'tic/#/'\n", "tic.topic_prefix", "pattern"),
        ("tic:\n  reconnect_max_s: 0\n", "tic.reconnect_max_s", "greater than 0"),
        ("tic:\n  baud: 9600\n", "tic.baud", "unknown key 'baud' in tic"),
    ],
)
def test_errors_name_file_line_and_key(section: str, key: str, words: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.parse(EQUIPMENT + section, source="pvopt.yml", environ={})
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.key) == ("pvopt.yml", 4, key)
    assert words in problem.message


def test_pvopt_tic_script_stays_lean() -> None:
    """`pvopt-tic` loads the config, the adapter and paho: no store, rich, simulator."""
    import subprocess
    import sys

    code = (
        "import sys, pvopt.tic_script, pvopt.adapters.tic.bridge, pvopt.adapters.tic.reader\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not loaded & {"sqlalchemy", "rich", "numpy", "matplotlib", "pvsim", "state", "jobs"}
    assert {"serial", "paho", "pydantic"} <= loaded
