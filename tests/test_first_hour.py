"""A new user's first hour, against real processes: `pvopt status` tells a stopped service
from a running one, a dry run's figures never pass for real energy, `pvopt --version`, a
missing config names its options, and a pip install outside the repository runs the examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pvsim.live import hermetic_env, spawn_service, stop_service
from pvsim.servers.mosquitto import Mosquitto
from tests.mqtt_probe import Probe
from tests.test_service import make_config, publish_grid
from tests.wheel import build_wheel

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    """`pvopt ARGS` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "pvopt.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env or hermetic_env(),
        check=False,
    )


def status_json(conf: Path) -> dict[str, Any]:
    out = cli("status", "--json", "--config", str(conf))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def poll(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll until `predicate` holds or the deadline passes (each call is a process: no sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
    return False


def test_a_stopped_service_reads_offline_in_one_status_call(
    broker: Mosquitto, tmp_path: Path
) -> None:
    make_config(tmp_path, broker.port, regulation={"tick_s": 1})
    conf = tmp_path / "pvopt.yml"
    probe = Probe(broker.port)
    proc = spawn_service(conf)
    try:
        assert probe.wait(lambda: probe.last("regulation/status") is not None, 20)
        doc = status_json(conf)
        assert doc["service"]["state"] == "online" and doc["service"]["status_age_s"] < 5
        publish_grid(probe, -3000)
        assert probe.wait(lambda: b'"solar"' in (probe.last("regulation/status") or b""), 10)
    finally:
        assert stop_service(proc) == 0
        probe.close()
    started = time.monotonic()
    doc = status_json(conf)
    assert doc["service"]["state"] == "offline"
    assert [e["power_w"] for e in doc["loads"]] == [0.0, 0.0]  # the store's view, not 2400 W
    out = cli("status", "--config", str(conf))
    assert "SERVICE OFFLINE" in out.stdout and "live from" not in out.stdout, out.stdout
    assert "old" in out.stdout  # the age of its last status
    assert time.monotonic() - started < 10


def test_a_silent_service_is_named_with_the_age_of_its_last_status() -> None:
    from pvopt.cli.service import service_state

    now = 1_000_000.0
    assert service_state("online", {"date": now - 3}, now, 15) == ("online", 3.0)
    assert service_state("online", {"date": now - 45}, now, 15) == ("silent", 45.0)
    assert service_state(None, {"date": now - 45}, now, 15) == ("silent", 45.0)
    assert service_state("offline", {"date": now - 2}, now, 15) == ("offline", 2.0)
    assert service_state(None, None, now, 15) == ("absent", None)


def test_a_dry_run_is_labelled_and_never_counts_as_real_energy(
    broker: Mosquitto, tmp_path: Path
) -> None:
    make_config(tmp_path, broker.port, regulation={"tick_s": 0.5, "settle_s": 0})
    conf = tmp_path / "pvopt.yml"
    probe = Probe(broker.port)
    proc = spawn_service(conf, "--dry-run")
    try:
        assert probe.wait(lambda: probe.last("regulation/dry_run/online") == b"online", 20)

        def would_be_wh() -> float:
            doc = json.loads(probe.last("regulation/dry_run/status") or b"{}")
            return sum(e.get("would_be_energy_wh", 0.0) for e in doc.get("loads", []))

        deadline = time.monotonic() + 20
        while would_be_wh() < 0.5 and time.monotonic() < deadline:
            publish_grid(probe, -3000)  # a meter sample, then the status it brings
            sent = time.time()
            probe.wait(lambda s=sent: probe.last("regulation/dry_run/status", s) is not None, 2)
        assert would_be_wh() >= 0.5
        doc = status_json(conf)
        assert doc["service"]["state"] == "absent"
        assert all(e["energy_today_wh"] == 0 and e["power_w"] == 0 for e in doc["loads"])
        dry = doc["dry_run_status"]
        assert dry["dry_run"] is True and dry["service"]["state"] == "online"
        assert dry["loads"][0]["would_be_energy_wh"] > 0 and dry["loads"][0]["power_w"] > 0
        assert all(e["energy_today_wh"] == 0 for e in dry["loads"])  # real counters untouched
        text = cli("status", "--config", str(conf)).stdout
        assert "DRY RUN" in text and "would-be" in text and "Hypothetical" in text, text
    finally:
        assert stop_service(proc) == 0
    assert probe.wait(lambda: probe.last("regulation/dry_run/online") == b"offline", 5)
    with probe.cond:
        topics = {t for _, t, _ in probe.messages}
    probe.close()
    assert not {"regulation/status", "regulation/online", "scr/0/in", "scr/1/in"} & topics
    assert not (tmp_path / "pvopt.db").exists()
    assert status_json(conf)["dry_run_status"]["service"]["state"] == "offline"
    for command in ("history", "energy"):
        out = cli(command, "--config", str(conf))
        assert out.returncode == 1 and "only a dry run has run" in out.stderr, out.stderr


def test_version_and_a_missing_config_names_its_options(tmp_path: Path) -> None:
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("pvopt 0."), out
    out = cli("status", cwd=tmp_path)
    assert out.returncode == 1
    assert "pvopt.yml" in out.stderr and "--config" in out.stderr and "$PVOPT_CONFIG" in out.stderr
    env = {**hermetic_env(), "PVOPT_CONFIG": str(tmp_path / "mine.yml")}
    out = cli("history", cwd=tmp_path, env=env)
    assert out.returncode == 1 and "mine.yml" in out.stderr and "$PVOPT_CONFIG" in out.stderr


@pytest.mark.slow
def test_a_pip_install_runs_the_shipped_examples_from_any_folder(tmp_path: Path) -> None:
    """Build a wheel from the tracked files, install it in a fresh venv (dependencies borrowed
    from this one, so no network), and run the examples from a folder far from the repo."""
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {**hermetic_env(), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    pvopt = str(venv / "bin" / "pvopt")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [pvopt, *args], cwd=away, env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out

    where = subprocess.run(
        [py, "-c", "import pvsim; print(pvsim.__file__)"], cwd=away, capture_output=True, text=True
    )
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout
    assert run("--version").stdout.startswith("pvopt 0.")
    assert "broken_clouds" in run("demo", "--help").stdout
    run("simulate", "broken_clouds", "--config", "seed_house", "--json", "kpis.json")
    kpis = json.loads((away / "kpis.json").read_text())
    assert kpis["trace"].startswith("broken_clouds") and kpis["capture"] > 0.8
    run("config", "check", "house")  # a shipped house by name, too


def test_small_energies_stay_visible_and_one_unit_per_table() -> None:
    from pvopt.tables import energy_unit, fmt_energy, fmt_number

    assert energy_unit([0.35, 120.0]) == ("Wh", 1.0)
    assert energy_unit([0.35, 5230.0]) == ("kWh", 1000.0)
    assert fmt_energy(0.35, ("Wh", 1.0)) == "0.35"
    assert fmt_energy(0.35, ("kWh", 1000.0)) == "0.00035"  # never 0.00
    assert [fmt_number(v) for v in (0, 1234.5, 12.34, 1.234, 0.0123)] == [
        "0",
        "1,234",
        "12.3",
        "1.23",
        "0.012",
    ]


def test_config_check_keeps_sim_blocks_apart_from_the_service_settings() -> None:
    out = cli("config", "check", str(ROOT / "examples" / "seed_house.yml"))
    assert out.returncode == 0, out.stderr
    service, _, sim = out.stdout.partition("# sim: blocks")
    assert "litres: 200" not in service and "thermostat_c" not in service
    assert "# defaults in force" in service and "stale_after_s" in service
    assert "litres: 200" in sim and "pvopt run` ignores them" in sim
