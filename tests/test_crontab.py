"""crontab.example stays consistent with the CLI: every pvopt line parses."""

from __future__ import annotations

import shlex

import click
import pytest

from pvopt.cli import main
from tests.conftest import ROOT


def pvopt_lines() -> list[list[str]]:
    out = []
    for line in (ROOT / "crontab.example").read_text().splitlines():
        if line.startswith("#") or " pvopt " not in f" {line} ":
            continue
        words = shlex.split(line.split(">", 1)[0].replace("\\%", "%"))
        out.append(words[words.index("pvopt") + 1 :])
    return out


@pytest.mark.parametrize("args", pvopt_lines(), ids=" ".join)
def test_crontab_commands_parse(args: list[str]) -> None:
    ctx = click.Context(main)
    command = main.get_command(ctx, args[0])
    assert command is not None, f"no such subcommand: {args[0]}"
    command.make_context(args[0], args[1:], parent=ctx)  # parses options, runs nothing


def test_crontab_covers_boot_report_and_holiday_force() -> None:
    firsts = {tuple(a[:1]) for a in pvopt_lines()}
    assert {("run",), ("history",), ("force",)} <= firsts


def test_the_systemd_unit_waits_for_time_sync() -> None:
    """Guards item 4: a Pi without RTC starts with a stale clock; the unit waits for NTP."""
    from configparser import ConfigParser
    from pathlib import Path

    unit = ConfigParser(strict=False, interpolation=None)
    unit.read(Path(__file__).resolve().parent.parent / "examples" / "pvopt.service")
    assert "time-sync.target" in unit["Unit"]["After"].split()
    assert "time-sync.target" in unit["Unit"]["Wants"].split()
