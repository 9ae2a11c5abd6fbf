"""The edges speak pvopt's errors (machines/errors.py), never their library's: a store that cannot
be read or written raises `StoreError` naming the file, an MQTT client that cannot be set up or
started raises `BrokerError` naming the broker, and `pvopt run` says either in one line."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from machines.errors import BrokerError, BrokerUnavailable, StoreError
from pvopt import config
from pvopt.adapters.mqtt import MqttBus, OneShot
from pvopt.service import Service
from pvsim.live import hermetic_env
from pvsim.servers.loopback import free_port
from state.store import SqliteStore
from tests.test_service import make_config


def test_a_locked_store_write_is_a_store_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(str(path))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"s\.db: cannot save: OperationalError.*locked") as e:
            store.save({"a": {"x": 1}}, [])
        assert isinstance(e.value.__cause__, SQLAlchemyError)  # kept for the traceback
    finally:
        holder.rollback()
        holder.close()
    store.close()


def test_a_file_that_is_not_sqlite_is_a_store_error_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"not a database, " * 100)
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"cannot open the state store.*not a database"):
            SqliteStore(str(path), read_only=read_only)


def test_only_a_store_error_is_survived_by_the_persister(tmp_path: Path) -> None:
    """A full disk or a lock: regulation goes on and the status says why. Anything else is a
    bug: it reaches the job guard (jobs/errors.py), which logs it with its traceback."""
    cfg = make_config(tmp_path, free_port(), state={"path": str(tmp_path / "pvopt.db")})
    now = [time.time()]
    svc = Service(cfg, clock=lambda: now[0])

    def full(*_a: object, **_k: object) -> None:
        raise StoreError("pvopt.db: cannot save: OperationalError: database or disk is full")

    svc.store.save = full  # type: ignore[method-assign]
    svc.regulator.checkpoint()
    assert "disk is full" in svc.status(now[0])["store"]["error"]

    def bug(*_a: object, **_k: object) -> None:
        raise TypeError("a bug")

    svc.store.save = bug  # type: ignore[method-assign]
    with pytest.raises(TypeError, match="a bug"):
        svc.regulator.checkpoint()
    svc.store.close()


def mqtt(port: int, **tls: str) -> config.MqttConfig:
    return config.MqttConfig(
        host="127.0.0.1", port=port, tls=config.TlsConfig(**tls), client_id="t-errors"
    )


def test_a_missing_ca_file_is_a_broker_error_naming_broker_and_file(tmp_path: Path) -> None:
    port = free_port()
    ca = str(tmp_path / "no-ca.crt")
    with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{port}: cannot set up TLS.*no-ca\.crt"):
        MqttBus(mqtt(port, ca_file=ca), ["x"], lambda _t, _p: None)
    with pytest.raises(BrokerError, match="cannot set up TLS"):
        OneShot(mqtt(port, ca_file=ca), ["x"])


def test_a_client_paho_cannot_start_is_a_broker_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    bus = MqttBus(mqtt(port), ["x"], lambda _t, _p: None)
    monkeypatch.setattr(bus.client, "loop_start", no_thread)
    with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{port}: cannot start.*new thread"):
        bus.start()


def test_an_unreachable_broker_is_broker_unavailable() -> None:
    port = free_port()
    with pytest.raises(BrokerUnavailable, match=rf"MQTT broker 127\.0\.0\.1:{port}"):
        OneShot(mqtt(port), ["x"])
    bus = MqttBus(mqtt(port), ["x"], lambda _t, _p: None)  # never connected
    with pytest.raises(BrokerUnavailable, match="offline not sent"):
        bus.publish_wait("offline", "x", 0.1)


def no_thread(*_a: object) -> None:
    raise RuntimeError("can't start new thread")  # what threading says on a starved Pi


def test_a_service_whose_mqtt_client_cannot_start_stops_cleanly_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    svc = Service(make_config(tmp_path, port, state={"path": str(tmp_path / "pvopt.db")}))
    monkeypatch.setattr(svc.bus.client, "loop_start", no_thread)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{port}: cannot start"):
            svc.run_forever()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert not svc.scheduler.running  # stopped, the state saved and the store closed


STARVED_RUN = """
import sys
import paho.mqtt.client as paho
def no_thread(*_a):
    raise RuntimeError("can't start new thread")
paho.Client.loop_start = no_thread
from pvopt.cli import main
sys.argv = ["pvopt", "run", "--config", sys.argv[1]]
main()
"""


def test_pvopt_run_says_a_broker_error_in_one_line(tmp_path: Path) -> None:
    """A real `pvopt run` process whose paho cannot start its network thread."""
    port = free_port()
    make_config(tmp_path, port)
    out = subprocess.run(
        [sys.executable, "-c", STARVED_RUN, str(tmp_path / "pvopt.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=hermetic_env(),
        check=False,
    )
    assert out.returncode == 1, out.stderr
    assert f"MQTT broker 127.0.0.1:{port}: cannot start the MQTT client" in out.stderr
    assert "Traceback" not in out.stderr, out.stderr
