"""The layout is the architecture: import contracts hold, and the service stays slim."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_import_contracts_hold() -> None:
    """Layers point down, no cycles, the core uses no I/O library (pyproject's contracts)."""
    out = subprocess.run(
        [BIN / "lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    """Run `code` in a fresh interpreter and return the names in its sys.modules."""
    script = tmp_path / "probe.py"
    script.write_text(
        textwrap.dedent(code)
        + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)), file=open(sys.argv[1], 'w'))\n",
        encoding="utf-8",
    )
    listing = tmp_path / "modules.txt"
    subprocess.run([sys.executable, script, listing], cwd=tmp_path, check=True, timeout=60)
    return set(listing.read_text(encoding="utf-8").split())


def test_service_commands_load_no_simulator_library(tmp_path: Path) -> None:
    """`pvopt config check`, `status`, `run --help`, `tic --help` and a started service import
    no simulator module and none of its libraries: the Pi's install is slim."""
    cfg = tmp_path / "pvopt.yml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            mqtt: {{host: 127.0.0.1, port: 1}}
            state: {{path: {tmp_path / "state.db"}}}
            equipment:
              - {{name: heater, type: VariablePowerEquipment, max_power: 2000}}
            """
        ),
        encoding="utf-8",
    )
    loaded = _modules_after(
        f"""
        from click.testing import CliRunner
        from pvopt.cli import main
        from pvopt import config
        from pvopt.service import Service
        r = CliRunner()
        assert r.invoke(main, ["run", "--help"]).exit_code == 0
        assert r.invoke(main, ["tic", "--help"]).exit_code == 0
        assert r.invoke(main, ["config", "check", {str(cfg)!r}]).exit_code == 0
        assert r.invoke(main, ["config", "check", "house"]).exit_code == 0
        r.invoke(main, ["status", "--config", {str(cfg)!r}])
        svc = Service(config.load({str(cfg)!r}, environ={{}}), dry_run=True)
        svc.scheduler.start()
        svc.scheduler.shutdown(wait=False)
        """,
        tmp_path,
    )
    heavy = {m for m in loaded if m.split(".")[0] in {"numpy", "matplotlib", "pvsim"}}
    assert not heavy, sorted(heavy)[:10]
