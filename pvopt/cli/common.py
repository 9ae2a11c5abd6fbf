"""What every `pvopt` subcommand shares: consoles and the --config option."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pvopt import config as cfgmod

# Tables are wide; when piped (CI logs, files) do not squeeze them into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)


def load_config(path: str | None) -> cfgmod.Config:
    """Load the config named by --config / $PVOPT_CONFIG / ./pvopt.yml, or exit 1 saying why."""
    chosen = cfgmod.default_path(path)
    if not Path(chosen).is_file():
        how = (
            "named by --config"
            if path
            else "named by $PVOPT_CONFIG"
            if os.environ.get("PVOPT_CONFIG")
            else "the default, in the current folder"
        )
        fail(
            f"{chosen}: cannot read: no such config file ({how}). Name one with --config FILE or "
            "$PVOPT_CONFIG (else ./pvopt.yml is read); `pvopt config check FILE` validates it"
        )
    try:
        return cfgmod.load(chosen)
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


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def fail(message: str) -> NoReturn:
    """Print one error line and exit 1: the CLI's way to refuse."""
    err_console.print(f"[red]error[/red] {escape(message)}", highlight=False)
    sys.exit(1)


SIM_LIBRARIES = ("numpy", "matplotlib")


def require_sim(what: str) -> None:
    """Refuse in one line when the `sim` extra is missing: the service's install is slim."""
    missing = [name for name in SIM_LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        fail(
            f"{what} needs the simulator's libraries ({', '.join(missing)} missing): "
            "pip install 'pvopt[sim]'"
        )
