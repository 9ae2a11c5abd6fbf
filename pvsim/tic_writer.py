"""A Linky that speaks TIC: frames built per Enedis-NOI-CPT_54E, written to a pseudo-terminal
that `pvopt tic` opens like a real dongle. The virtual house, the tests and the benchmarks use
it; unplugging and replugging the "dongle" is closing and reopening the pty."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import threading
import time
import tty
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pvopt.adapters.tic.frames import Mode, checksum
from pvsim.virtual_house import VirtualHouse

if TYPE_CHECKING:
    from pvopt.config import Config
    from pvsim.physics import House
    from pvsim.traces import Trace

GroupSpec = tuple[str, str] | tuple[str, str, str]  # (label, data) or (label, horodate, data)


def encode_group(label: str, data: str, horodate: str = "", mode: Mode = "standard") -> bytes:
    """LF label SEP [horodate SEP] data SEP checksum CR, with the mode's checksum span."""
    if mode == "historic":
        body = f"{label} {data}".encode()
        return b"\n" + body + b" " + bytes([checksum(body)]) + b"\r"
    fields = [label, horodate, data] if horodate else [label, data]
    body = ("\t".join(fields) + "\t").encode()
    return b"\n" + body + bytes([checksum(body)]) + b"\r"


def encode_frame(groups: Iterable[GroupSpec], mode: Mode = "standard") -> bytes:
    """STX, the groups, ETX."""
    out = [b"\x02"]
    for g in groups:
        if len(g) == 3:
            out.append(encode_group(g[0], g[2], g[1], mode))
        else:
            out.append(encode_group(g[0], g[1], "", mode))
    out.append(b"\x03")
    return b"".join(out)


def horodate(epoch: float) -> str:
    """SAAMMJJhhmmss in Paris time; the season letter E (summer) or H (winter)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(epoch, ZoneInfo("Europe/Paris"))
    season = "E" if local.dst() else "H"
    return season + local.strftime("%y%m%d%H%M%S")


def stge(*, producer: bool, exporting: bool, supplier_index: int = 1) -> str:
    """An STGE register for a standard-mode meter in normal service."""
    r = 1 << 17  # TIC in standard mode
    r |= (supplier_index - 1 & 0xF) << 10
    r |= int(producer) << 8 | int(exporting) << 9
    r |= 2 << 21 | 1 << 23  # CPL registered and synchronised
    return f"{r:08X}"


class LinkyTic:
    """The meter's counters between frames: energy indexes integrated from the house's grid
    power, the reactive index split by quadrant (ERQ1+…+ERQ4 = the house's ERQT exactly)."""

    def __init__(self, adsc: str = "041876543210", offpeak: bool = False):
        self.adsc = adsc
        self.offpeak = offpeak
        self.east_wh = 1_234_567.0
        self.eait_wh = 345_678.0
        self.erq = [0, 0, 0, 0]
        self.erqt_seen = 0
        self.last_at: float | None = None

    def groups(
        self, sinsts: float, sinsti: float, grid_w: float, erqt: float, now: float
    ) -> list[GroupSpec]:
        """One standard-mode frame's groups for the values of now."""
        if self.last_at is not None:
            dt_h = max(0.0, now - self.last_at) / 3600
            if grid_w >= 0:
                self.east_wh += grid_w * dt_h
            else:
                self.eait_wh -= grid_w * dt_h
        self.last_at = now
        step = int(erqt) - self.erqt_seen
        self.erqt_seen = int(erqt)
        self.erq[0 if grid_w >= 0 else 1] += step  # Q1 importing, Q2 exporting (inductive)
        tariff = "HEURE CREUSE" if self.offpeak else "HEURE PLEINE"
        index = 1 if self.offpeak else 2
        east = int(self.east_wh)
        return [
            ("ADSC", self.adsc),
            ("VTIC", "02"),
            ("DATE", horodate(now), ""),
            ("NGTF", "     H PLEINE/CREUSE"),
            ("LTARF", f"{tariff:<16}"),
            ("EAST", f"{east:09d}"),
            ("EASF01", f"{east // 3:09d}"),
            ("EASF02", f"{east - east // 3:09d}"),
            ("EAIT", f"{int(self.eait_wh):09d}"),
            *((f"ERQ{k + 1}", f"{v:09d}") for k, v in enumerate(self.erq)),
            ("IRMS1", f"{round(max(sinsts, sinsti) / 230):03d}"),
            ("URMS1", "231"),
            ("PREF", "09"),
            ("PCOUP", "09"),
            ("SINSTS", f"{round(sinsts):05d}"),
            ("SMAXSN", horodate(now), f"{round(sinsts):05d}"),
            ("SINSTI", f"{round(sinsti):05d}"),
            ("SMAXIN", horodate(now), f"{round(sinsti):05d}"),
            ("STGE", stge(producer=True, exporting=sinsti > 0, supplier_index=index)),
            ("MSG1", "PAS DE          MESSAGE         "),
            ("PRM", "09876543210987"),
            ("RELAIS", "000"),
            ("NTARF", f"{index:02d}"),
            ("NJOURF", "00"),
            ("NJOURF+1", "00"),
        ]

    def frame_from_house(self, house: House, now: float) -> bytes:
        """What the Linky of `house` sends now: S quantised as the direct MQTT path does
        (√(P² + Q²) on SINSTS when importing, on SINSTI when exporting)."""
        grid = house.grid
        q = house.q_ratio * house.base
        s_va = round(math.sqrt(grid * grid + q * q) / house.quantum) * house.quantum
        sinsts, sinsti = (s_va, 0.0) if grid >= 0 else (0.0, s_va)
        return encode_frame(self.groups(sinsts, sinsti, grid, house.erqt, now))


class PtyLine:
    """A pseudo-terminal standing for the TIC dongle. `path` is a stable symlink to the pty
    slave (like /dev/serial/by-id/…), so a replug can come back under the same name."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.master: int | None = None
        self.slave: int | None = None
        self.slave_name = ""
        self.written = 0
        self.dropped = 0  # bytes lost because nobody read the line (as on a real one)
        self.lock = threading.Lock()
        self.plug()

    def plug(self) -> None:
        """A new pty (the dongle appears); the symlink points at it."""
        with self.lock:
            master, slave = os.openpty()
            tty.setraw(slave)  # no CR→LF translation, no echo: bytes as on the wire
            os.set_blocking(master, False)
            self.master, self.slave = master, slave
            self.slave_name = os.ttyname(slave)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".new")
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                tmp.symlink_to(self.slave_name)
                tmp.replace(self.path)

    @property
    def port(self) -> str:
        return str(self.path) if self.path is not None else self.slave_name

    def unplug(self) -> None:
        """The dongle goes away: the reader's next read fails, the port vanishes."""
        with self.lock:
            if self.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            for fd in (self.master, self.slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.master = self.slave = None

    close = unplug

    def write(self, data: bytes) -> int:
        """Write what the line takes now; the rest is lost, never blocks (a meter does not
        wait for its reader)."""
        with self.lock:
            if self.master is None:
                self.dropped += len(data)
                return 0
            try:
                n = os.write(self.master, data)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                n = 0
            self.written += n
            self.dropped += len(data) - n
            return n

    def write_paced(self, data: bytes, baud: int, stop: threading.Event, chunk: int = 32) -> None:
        """Write at the line's speed (10 bits a character) in USB-sized chunks."""
        per_s = baud / 10
        t0 = time.monotonic()
        for k in range(0, len(data), chunk):
            due = t0 + k / per_s
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            self.write(data[k : k + chunk])


class TicMeter:
    """The virtual house's hook (`VirtualHouse(tic=…)`): each meter sample becomes one
    standard-mode frame on the line instead of MQTT messages."""

    def __init__(self, line: PtyLine, linky: LinkyTic | None = None):
        self.line = line
        self.linky = linky or LinkyTic()
        self.frames = 0
        self.sent: list[float] = []  # wall-clock time each frame was written

    def send(self, house: House, now: float) -> None:
        frame = self.linky.frame_from_house(house, now)
        self.line.write(frame)
        self.frames += 1
        self.sent.append(time.time())


class TicVirtualHouse(VirtualHouse):
    """The virtual house whose meter writes TIC frames on a line instead of MQTT messages;
    probes and load commands stay on MQTT. Only the meter hook differs, so the house itself
    needs no TIC knowledge."""

    def __init__(self, cfg: Config, trace: Trace, tic: TicMeter, **kwargs: Any):
        super().__init__(cfg, trace, **kwargs)
        self.tic = tic

    def _publish_meter(self, *_now: float) -> None:  # called with `now`, or without
        if self.cfg.meter.pv_topic:
            self.bus.publish(self.cfg.meter.pv_topic, f"{self.house.pv:.0f}")
        self.tic.send(self.house, self.clock())
