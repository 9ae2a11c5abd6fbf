"""The `pvopt` command line: the service's commands, and the developer tools (`sim` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel

from pvopt import config as cfgmod
from pvopt.cli.common import console, fail, load_config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pvopt", message="pvopt %(version)s")
def main() -> None:
    """pvopt — route photovoltaic surplus to your water heater and other loads."""


@main.group("config")
def config_group() -> None:
    """Inspect configuration files."""


def _split(
    model: BaseModel, data: dict[str, Any], sim: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the file or the environment set, the defaults in force) of one config model;
    `sim:` blocks go to `sim`, keyed by where they were, when the user wrote them."""
    mine: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name in data:
        value, dumped = getattr(model, name, None), data[name]
        if name == "sim":
            if name in model.model_fields_set:
                where = getattr(model, "name", None)
                sim["sim" if where is None else f"equipment {where}: sim"] = dumped
            continue
        if name not in model.model_fields_set:
            defaults[name] = dumped
        elif isinstance(dumped, dict) and all(v is None for v in dumped.values()):
            defaults[name] = dumped  # filled in by validation, not by the user
        elif isinstance(value, BaseModel):
            mine[name], inner = _split(value, dumped, sim)
            if inner:
                defaults[name] = inner
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            mine[name], defaults_of = [], []
            for item, item_data in zip(value, dumped, strict=True):
                item_mine, item_defaults = _split(item, item_data, sim)
                mine[name].append(item_mine)
                if item_defaults:
                    defaults_of.append({"name": item_data.get("name"), **item_defaults})
            if defaults_of:
                defaults[name] = defaults_of
        else:
            mine[name] = dumped
    return mine, defaults


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE; print what it sets and the defaults in force (secrets masked), or every
    problem (exit 1). The shipped examples `house` and `seed_house` can be named."""
    from pvopt.examples import config_path

    file = str(config_path(file))  # a shipped example by name (`house`) works too
    if not Path(file).is_file():
        fail(f"{file}: cannot read: no such config file")
    cfg = load_config(file)
    sim: dict[str, Any] = {}
    mine, defaults = _split(cfg, yaml.safe_load(cfgmod.masked_dump(cfg)), sim)
    show = [f"# set in {file} (or by MQTT_*/INFLUXDB_* variables)", _yaml(mine)]
    if defaults:
        show += ["", "# defaults in force for `pvopt run` (not in the file)", _yaml(defaults)]
    if sim:
        show += [
            "",
            "# sim: blocks, read only by `pvopt simulate`, `house` and `demo`; `pvopt run` "
            "ignores them",
            _yaml(sim),
        ]
    from pvopt.cli.devices import wiring_summary

    show += [
        "",
        "# what pvopt publishes to each load, and where it reads back",
        _yaml(wiring_summary(cfg)),
    ]
    console.print("\n".join(show), highlight=False, markup=False)
    console.print(f"[green]ok[/green] {file}: {len(cfg.equipment)} load(s)", highlight=False)
    from pvopt.config.checks import slow_meter_warning
    from pvopt.tic_script import historic_note

    slow = slow_meter_warning(cfg)
    if slow is not None:
        click.echo(f"{click.style('warning', fg='yellow')} {slow}", err=True)
    historic_note(cfg)


from pvopt.cli import devices as _devices  # noqa: E402
from pvopt.cli import forecast as _forecast  # noqa: E402
from pvopt.cli import service as _service  # noqa: E402
from pvopt.cli import sim as _sim  # noqa: E402
from pvopt.cli import tic_bench as _tic_bench  # noqa: E402
from pvopt.tic_script import tic  # noqa: E402

main.add_command(tic)
for _module in (_devices, _forecast, _service, _sim, _tic_bench):
    for _command in _module.COMMANDS:
        main.add_command(_command)

if __name__ == "__main__":
    main()
