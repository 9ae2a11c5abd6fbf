"""The `pvopt` command line: the service's commands, and the developer tools (`sim` extra)."""

from __future__ import annotations

import click

from pvopt import config as cfgmod
from pvopt.cli.common import console, load_config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """pvopt — route photovoltaic surplus to your water heater and other loads."""


@main.group("config")
def config_group() -> None:
    """Inspect configuration files."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE; print the resolved config (secrets masked) or every problem (exit 1)."""
    cfg = load_config(file)
    console.print(cfgmod.masked_dump(cfg), highlight=False, markup=False)
    console.print(f"[green]ok[/green] {file}: {len(cfg.equipment)} load(s)", highlight=False)
    from pvopt.cli.tic import historic_note

    historic_note(cfg)


from pvopt.cli import service as _service  # noqa: E402
from pvopt.cli import sim as _sim  # noqa: E402
from pvopt.cli import tic as _tic  # noqa: E402

for _module in (_service, _sim, _tic):
    for _command in _module.COMMANDS:
        main.add_command(_command)

if __name__ == "__main__":
    main()
