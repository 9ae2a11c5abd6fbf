"""What every `pvopt` subcommand shares: consoles and the --config option."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from pvopt import config as cfgmod

# Tables are wide; when piped (CI logs, files) do not squeeze them into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)


def load_config(path: str | None) -> cfgmod.Config:
    """Load the config named by --config / $PVOPT_CONFIG / ./pvopt.yml, or exit 1 saying why."""
    try:
        return cfgmod.load(cfgmod.default_path(path))
    except cfgmod.ConfigError as exc:
        for problem in exc.problems:
            err_console.print(f"[red]error[/red] {problem}", highlight=False)
        sys.exit(1)


config_option = click.option(
    "--config",
    "config_path",
    metavar="FILE",
    default=None,
    help="Config file (default: $PVOPT_CONFIG, else ./pvopt.yml).",
)
