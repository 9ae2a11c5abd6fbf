"""`pip install pvopt` (no extra) is the service a Pi runs: no numpy, no matplotlib, no pvsim
libraries, and every service command works; the developer tools say which extra they need."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pvsim.live import hermetic_env, stop_service
from pvsim.servers.mosquitto import Mosquitto
from tests.mqtt_probe import Probe
from tests.wheel import build_wheel


@pytest.mark.slow
def test_a_slim_install_runs_the_service_without_the_simulators_libraries(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    installed = subprocess.run(
        [py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "numpy" not in installed and "matplotlib" not in installed, installed

    env = {**hermetic_env(), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    pvopt = str(venv / "bin" / "pvopt")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pvopt, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    assert cli("run", "--help").returncode == 0
    with Mosquitto() as broker:
        cfg = tmp_path / "pvopt.yml"
        cfg.write_text(
            textwrap.dedent(
                f"""\
                mqtt: {{host: 127.0.0.1, port: {broker.port}}}
                state: {{path: {tmp_path / "state.db"}}}
                equipment:
                  - {{name: heater, type: VariablePowerEquipment, max_power: 2000}}
                """
            ),
            encoding="utf-8",
        )
        probe = Probe(broker.port, ("regulation/online",))
        log = (tmp_path / "run.log").open("wb")
        proc = subprocess.Popen(
            [pvopt, "run", "--config", str(cfg)], env=env, stdout=log, stderr=log
        )
        try:
            up = probe.wait(lambda: probe.last("regulation/online") == b"online", timeout_s=30)
            status = cli("status", "--config", str(cfg))
        finally:
            code = stop_service(proc)
            log.close()
            probe.close()
        run_log = (tmp_path / "run.log").read_text(encoding="utf-8")
        assert up and code == 0 and "Traceback" not in run_log, run_log
        assert status.returncode == 0 and "heater" in status.stdout, status.stdout + status.stderr
    refused = cli("simulate", "broken_clouds")
    assert refused.returncode == 1
    assert "pip install 'pvopt[sim]'" in refused.stderr and "Traceback" not in refused.stderr
