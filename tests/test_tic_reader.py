"""`pvopt tic` over a real pseudo-terminal and a real Mosquitto: frames in, exact topics out;
the dongle unplugged and replugged, the broker down and back, bad checksums counted, and the
historic-mode warning of `pvopt run` / `pvopt config check`."""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner

from pvopt import config
from pvopt.adapters.tic.bridge import HistoricWatch, TicBridge, historic_warning
from pvopt.adapters.tic.frames import TicParser
from pvopt.adapters.tic.labels import TopicMap, frame_topics
from pvopt.adapters.tic.reader import Backoff, PortError, TicReader, open_serial
from pvopt.cli import main
from pvsim.servers.mosquitto import Mosquitto
from pvsim.tic_bench import spawn_tic, tic_site
from pvsim.tic_writer import PtyLine, encode_frame, encode_group
from tests.clock import wait_until
from tests.conftest import EXAMPLES
from tests.mqtt_probe import Probe
from tests.test_tic_frames import HISTORIC_1PH, STANDARD_1PH, corrupt


def site(port: int, tty: Path | str, mode: str = "auto") -> config.Config:
    return config.parse(
        f"""
mqtt: {{host: 127.0.0.1, port: {port}, client_id: t{time.time_ns() % 10**9}}}
tic: {{port: "{tty}", mode: {mode}, detect_s: 1.0, summary_every_s: 0.5}}
equipment:
  - {{name: heater, type: VariablePowerEquipment, max_power: 2000}}
""",
        environ={},
    )


class Bridge:
    """`pvopt tic` in-process: the reader in a thread, tiny backoff (no sleeps in tests)."""

    def __init__(self, cfg: config.Config):
        self.reader = TicReader(
            cfg.tic.port,
            cfg.tic.mode,
            lambda frame: self.bridge.on_frame(frame),
            backoff=Backoff(0.02, 0.1),
            detect_s=cfg.tic.detect_s,
        )
        self.bridge = TicBridge(
            cfg, self.reader.parser.counters, port=cfg.tic.port, reader_state=self.state
        )
        self.thread = threading.Thread(target=self.reader.run, daemon=True)

    def state(self) -> str:
        return self.reader.state

    def __enter__(self) -> Bridge:
        self.bridge.start()
        assert self.bridge.bus.connected.wait(10)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.reader.stop()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.bridge.stop()


def pump(line: PtyLine, frame: bytes, until: Callable[[], bool], timeout_s: float = 10) -> bool:
    """Write `frame` every 50 ms until `until()` holds (a meter repeats itself, too)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line.write(frame)
        stop = time.monotonic() + 0.05
        while time.monotonic() < stop:
            if until():
                return True
            time.sleep(0.005)
    return until()


@pytest.fixture
def line(tmp_path: Path) -> Iterator[PtyLine]:
    pty = PtyLine(tmp_path / "ttyTIC")
    yield pty
    pty.close()


def value(probe: Probe, topic: str, since: float = 0.0) -> str | None:
    got = probe.last(topic, since)
    return None if got is None else got.decode()


def test_frames_in_exact_topics_out(broker: Mosquitto, line: PtyLine) -> None:
    probe = Probe(broker.port, ("tic/#",))
    frame = encode_frame(STANDARD_1PH)
    expected = frame_topics(TicParser().feed(frame)[0], TopicMap())
    with Bridge(site(broker.port, line.port)) as b:
        assert pump(line, frame, lambda: value(probe, "tic/SINSTI") == "812")
        assert b.reader.mode == "standard"  # auto found it
        t0 = time.time()
        assert pump(line, frame, lambda: value(probe, "tic/SINSTS", t0) is not None)
        probe.sync()
        with probe.cond:
            got = {t: p.decode() for at, t, p in probe.messages if at >= t0}
        for topic, payload in expected.items():
            assert got[topic] == payload, topic
        assert got["tic/ERQT"] == "123400" and got["tic/PTEC"] == "HC  BLEU"
        assert probe.wait(lambda: probe.last("tic/bridge") is not None, 5)
        summary = json.loads(probe.last("tic/bridge") or b"{}")
        assert summary["mode"] == "standard" and summary["meter_id"] == "041876543210"
        assert summary["stge"]["producer"] is True  # 013A0500: bit 8
        assert value(probe, "tic/online") == "online"
    probe.close()


def test_historic_mode_over_the_pty(broker: Mosquitto, line: PtyLine) -> None:
    probe = Probe(broker.port, ("tic/#",))
    frame = encode_frame(HISTORIC_1PH, "historic")
    with Bridge(site(broker.port, line.port, "historic")) as b:
        assert pump(line, frame, lambda: value(probe, "tic/SINSTS") == "420")
        assert value(probe, "tic/PTEC") == "HC.."
        assert value(probe, "tic/SINSTI") is None  # historic mode cannot see export
        assert b.reader.mode == "historic"
        assert probe.wait(lambda: b"historic" in (probe.last("tic/bridge") or b""), 5)
    probe.close()


def test_unplug_and_replug_resumes_publishing(broker: Mosquitto, line: PtyLine) -> None:
    probe = Probe(broker.port, ("tic/#",))
    with Bridge(site(broker.port, line.port, "standard")) as b:
        assert pump(line, encode_frame(STANDARD_1PH), lambda: value(probe, "tic/SINSTI") == "812")
        opens = b.reader.opens
        line.unplug()  # the port vanishes
        assert probe.wait(lambda: b.reader.state == "waiting", 5)
        assert b.thread.is_alive()
        line.plug()  # a new pty behind the same name, as udev's by-id link does
        replugged = [("SINSTI", "00345") if g[0] == "SINSTI" else g for g in STANDARD_1PH]
        assert pump(line, encode_frame(replugged), lambda: value(probe, "tic/SINSTI") == "345")
        assert b.reader.opens > opens
    probe.close()


def test_bad_checksums_counted_never_published(broker: Mosquitto, line: PtyLine) -> None:
    probe = Probe(broker.port, ("tic/#",))
    groups = encode_group("ADSC", "041876543210") + encode_group("SINSTS", "00100")
    frame = b"\x02" + groups + corrupt(encode_group("SINSTI", "09999")) + b"\x03"
    with Bridge(site(broker.port, line.port, "standard")) as b:
        assert pump(line, frame, lambda: value(probe, "tic/SINSTS") == "100")
        assert pump(line, b"\x02\nSIN\x00\xff garbage" * 3 + frame, lambda: b.reader._noisy)
        assert probe.wait(
            lambda: json.loads(probe.last("tic/bridge") or b"{}").get("bad_checksum", 0) >= 2, 5
        )
        summary = json.loads(probe.last("tic/bridge") or b"{}")
        # each of the three STX without ETX is a partial frame; no whole frame was malformed
        assert summary["partial_frames"] >= 3 and summary["malformed"] == 0
        assert value(probe, "tic/SINSTI") is None
    probe.close()


def test_broker_down_keeps_reading_then_sends_only_the_latest(tmp_path: Path) -> None:
    line = PtyLine(tmp_path / "ttyTIC")
    first = Mosquitto().start()
    port = first.port
    probe_topic = "tic/SINSTI"
    try:
        with Bridge(site(port, line.port, "standard")) as b:
            probe = Probe(port, ("tic/#",))
            assert pump(
                line, encode_frame(STANDARD_1PH), lambda: value(probe, probe_topic) == "812"
            )
            probe.close()
            first.close()
            assert pump(line, b"", lambda: not b.bridge.bus.connected.is_set(), 10)
            read_before = b.reader.parser.counters.frames
            for k in range(30):  # 30 frames while the broker is down: none queued
                frame = [("SINSTI", f"{k:05d}") if g[0] == "SINSTI" else g for g in STANDARD_1PH]
                line.write(encode_frame(frame))
                time.sleep(0.01)
            assert pump(line, b"", lambda: b.reader.parser.counters.frames >= read_before + 25)
            with Mosquitto(port) as second:
                probe = Probe(second.port, (probe_topic,))
                assert probe.wait(lambda: probe.last(probe_topic) is not None, 15)
                probe.sync()
                got = [p for _, t, p in probe.messages if t == probe_topic]
                assert got[0] == b"29"  # the newest frame, not a backlog
                assert len(got) <= 2
                probe.close()
                assert b.bridge.skipped_frames >= 25
    finally:
        line.close()
        first.close()


def test_permission_denied_names_the_dialout_group(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def denied(*_a: object, **_k: object) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port: Permission denied")

    monkeypatch.setattr(serial, "Serial", denied)
    with pytest.raises(PortError) as info:
        open_serial("/dev/ttyUSB0", 9600)
    assert info.value.kind == "permission" and "dialout" in info.value.advice()
    caplog.set_level(logging.WARNING, "pvopt.adapters.tic.reader")
    tries: list[int] = []

    def opener(port: str, baud: int) -> serial.Serial:
        tries.append(baud)
        return open_serial(port, baud)

    reader = TicReader(
        "/dev/ttyUSB0", "standard", lambda f: None, backoff=Backoff(0.001, 0.002), opener=opener
    )
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    wait_until(lambda: len(tries) >= 20, 5)  # dozens of retries
    reader.stop()
    thread.join(5)
    assert len(tries) >= 20
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "dialout" in lines[0]  # once per episode, not per retry


def test_missing_port_waits_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pvopt.adapters.tic.reader")
    reader = TicReader(str(tmp_path / "nope"), "auto", lambda f: None, backoff=Backoff(0.01, 0.02))
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    wait_until(lambda: caplog.records, 5)
    reader.stop()
    thread.join(5)
    assert "does not exist" in caplog.records[0].getMessage()
    assert len(caplog.records) == 1


def test_pvopt_tic_cli_finds_the_mode(broker: Mosquitto, tmp_path: Path) -> None:
    line = PtyLine(tmp_path / "ttyTIC")
    cfg_path = tic_site(EXAMPLES / "seed_house.yml", tmp_path, broker.port, line.path)
    probe = Probe(broker.port, ("tic/#",))
    proc = spawn_tic(cfg_path)
    try:
        assert pump(line, encode_frame(STANDARD_1PH), lambda: value(probe, "tic/ERQT") == "123400")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        line.close()
        probe.close()
    log = (tmp_path / "tic.log").read_text()
    assert "auto: found standard mode (9600 baud)" in log


def test_historic_bridge_is_reported_by_config_check_and_run(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = site(broker.port, "/dev/null")
    summary = {"mode": "historic", "meter_id": "031762120162"}
    assert historic_warning(cfg, summary) is not None
    assert historic_warning(cfg, {"mode": "standard"}) is None
    grid = cfg.model_copy(update={"meter": cfg.meter.model_copy(update={"kind": "grid"})})
    assert historic_warning(grid, summary) is None
    probe = Probe(broker.port, ("x",))
    probe.publish("tic/bridge", json.dumps(summary), retain=True)
    cfg_file = tmp_path / "pvopt.yml"
    cfg_file.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        "equipment:\n  - {name: heater, type: VariablePowerEquipment, max_power: 2000}\n"
    )
    out = CliRunner().invoke(main, ["config", "check", str(cfg_file)])
    assert out.exit_code == 0
    warning = [ln for ln in out.output.splitlines() if "historic mode" in ln]
    assert len(warning) == 1 and "031762120162" in warning[0] and "SINSTI" in warning[0]
    caplog.set_level(logging.WARNING, "pvopt.adapters.tic.bridge")
    watch = HistoricWatch(cfg)
    watch.start()
    try:
        assert probe.wait(lambda: watch.said, 10)
    finally:
        watch.bus.stop()
        probe.close()
    assert sum("historic mode" in r.getMessage() for r in caplog.records) == 1


class FakeLine:
    """A serial link serving `data` in 64-byte reads, then failing like an unplugged dongle."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.closed = data, 0, False

    @property
    def in_waiting(self) -> int:
        return min(64, len(self.data) - self.pos)

    def read(self, size: int = 1) -> bytes:
        if self.pos >= len(self.data):
            raise serial.SerialException("device reports readiness to read but returned no data")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


def test_auto_tries_9600_then_finds_historic_at_1200(caplog: pytest.LogCaptureFixture) -> None:
    """At the wrong baud rate a historic meter is noise; at 1200 baud its frames parse."""
    caplog.set_level(logging.INFO, "pvopt.adapters.tic.reader")
    import random

    noise = random.Random(7).randbytes(20_000)
    bauds: list[int] = []
    frames: list = []

    def opener(_port: str, baud: int) -> FakeLine:
        bauds.append(baud)
        if baud == 9600:
            return FakeLine(noise)
        return FakeLine(
            encode_frame(HISTORIC_1PH, "historic")[30:] + encode_frame(HISTORIC_1PH, "historic") * 3
        )

    reader = TicReader(
        "/dev/fake",
        "auto",
        frames.append,
        backoff=Backoff(0.001, 0.002),
        detect_s=60,
        opener=opener,
    )
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    wait_until(lambda: len(frames) >= 3, 5)
    reader.stop()
    thread.join(5)
    assert bauds[:2] == [9600, 1200] and reader.mode == "historic"
    assert len(frames) >= 3 and all(f.mode == "historic" for f in frames)
    assert any("auto: found historic mode (1200 baud)" in r.getMessage() for r in caplog.records)
    c = reader.parser.counters
    assert c.skipped_bytes > 0 or c.errors > 0  # the noise was counted, not published


def test_pvopt_house_tic_writes_frames_pvopt_tic_reads(broker: Mosquitto, tmp_path: Path) -> None:
    """`pvopt house --tic LINK`: the house's meter on a pty, read by the bridge."""
    import subprocess
    import sys

    from pvsim.live import hermetic_env

    link = tmp_path / "ttyHOUSE"
    cfg_path = tic_site(EXAMPLES / "seed_house.yml", tmp_path, broker.port, link)
    probe = Probe(broker.port, ("tic/#",))
    house = subprocess.Popen(
        [
            *(sys.executable, "-m", "pvopt.cli", "house", "--config", str(cfg_path)),
            *("--trace", str(EXAMPLES / "traces/broken_clouds.csv.gz"), "--start", "12:00"),
            *("--duration", "20s", "--tic", str(link)),
        ],
        env=hermetic_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_until(link.exists, 20), "no pty from pvopt house --tic"
        with Bridge(config.load(cfg_path, environ={})) as b:
            assert probe.wait(lambda: probe.last("tic/SINSTI") is not None, 15)
            assert probe.wait(lambda: probe.last("tic/ERQT") is not None, 5)
            assert b.reader.mode == "standard" and b.reader.parser.counters.errors == 0
            assert value(probe, "tic/ADSC") == "041876543210"
    finally:
        house.terminate()
        out = house.communicate(timeout=20)[0].decode()
        probe.close()
    assert "TIC frames on" in out
