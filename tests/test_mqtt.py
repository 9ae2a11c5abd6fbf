"""The MQTT edge against a real Mosquitto with TLS, its CA made by the test (openssl CLI)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pvopt import config
from pvopt.adapters.mqtt import MqttBus
from pvsim.servers.mosquitto import Mosquitto
from tests.mqtt_probe import Probe


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    folder.mkdir()
    days = ("-days", "2")
    ca = ("-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", *days, "-subj", f"/CN={name} CA",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    openssl("x509", "-req", "-in", "server.csr", *ca, *days, "-extfile", "san.ext",
            "-out", "server.crt", cwd=folder)  # fmt: skip
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


class TlsMosquitto(Mosquitto):
    """A broker that speaks only TLS, with the given server certificate."""

    def __init__(self, cert: Path, key: Path):
        super().__init__()
        # run as root, mosquitto drops to its own user before reading them: copies it can read
        self.dir.chmod(0o755)
        cert, key = (Path(shutil.copy(f, self.dir)) for f in (cert, key))
        for f in (cert, key):
            f.chmod(0o644)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"certfile {cert}\nkeyfile {key}\n",
            encoding="utf-8",
        )


def connects(ca: Path, port: int, timeout_s: float = 5.0) -> bool:
    cfg = config.MqttConfig(
        host="127.0.0.1", port=port, tls=config.TlsConfig(ca_file=str(ca)), client_id="t"
    )
    bus = MqttBus(cfg, ["x"], lambda _t, _p: None)
    bus.start()
    try:
        return bus.connected.wait(timeout_s)
    finally:
        bus.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_tls_to_a_real_mosquitto_with_the_right_ca_only(tmp_path: Path) -> None:
    """Guards a gap of item 9: TLS had no test. The bus connects to a TLS-only Mosquitto with
    the CA that signed it, and not with another CA (the server is not trusted blindly)."""
    ca, cert, key = make_ca(tmp_path / "good", "pvopt test")
    other_ca, _, _ = make_ca(tmp_path / "other", "someone else")
    with TlsMosquitto(cert, key) as broker:
        assert connects(ca, broker.port)
        started = time.monotonic()
        assert not connects(other_ca, broker.port, timeout_s=2.0)
        assert time.monotonic() - started >= 1.9


def test_subscribed_means_nothing_sent_from_then_on_is_missed(broker: Mosquitto) -> None:
    """`subscribed` waits for the broker's SUBACK: a message another client sends right after
    it is delivered (waiting on `connected` alone raced the subscription on a busy machine)."""
    got: list[bytes] = []
    cfg = config.MqttConfig(host="127.0.0.1", port=broker.port, client_id="sub-test")
    bus = MqttBus(cfg, ["in/a", "in/b"], lambda _t, p: got.append(p))
    bus.start()
    probe = Probe(broker.port, ())
    try:
        assert bus.subscribed.wait(10)
        probe.publish("in/b", "1")
        assert probe.wait(lambda: got == [b"1"], 5)
    finally:
        probe.close()
        bus.stop()
    assert not bus.subscribed.is_set()
