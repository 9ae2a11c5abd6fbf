"""The serial side of `pvopt tic`: open the TIC port (7E1, 1200 or 9600 baud), find the mode,
read frames forever; a vanished port, a denied one or a dead line is reopened with backoff,
never a crash."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, cast

import serial

from pvopt.adapters.tic.frames import Frame, Mode, TicParser

log = logging.getLogger(__name__)

BAUD: dict[Mode, int] = {"historic": 1200, "standard": 9600}
READ_TIMEOUT_S = 0.5  # a read returns at least this often, so stop() is prompt
AUTO_ORDER: tuple[Mode, ...] = ("standard", "historic")
ModeSetting = Literal["auto", "historic", "standard"]


class SerialLink(Protocol):
    """The part of `serial.Serial` the reader uses (tests may pass their own)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


class PortError(Exception):
    """The serial port cannot be used now; `kind` says why: missing, permission or io."""

    def __init__(self, port: str, kind: str, detail: str):
        super().__init__(f"{port}: {detail}")
        self.port, self.kind, self.detail = port, kind, detail

    def advice(self) -> str:
        """One line a user can act on."""
        if self.kind == "permission":
            return (
                f"permission denied on {self.port}: add this user to the 'dialout' group "
                "(sudo usermod -aG dialout $USER, then log in again) or run the service as a "
                "member of it (see examples/pvopt-tic.service)"
            )
        if self.kind == "missing":
            return f"{self.port} does not exist (dongle unplugged?); waiting for it to appear"
        return f"{self.port}: {self.detail}"


def open_serial(port: str, baud: int) -> SerialLink:
    """Open `port` as the TIC wants it: 7 data bits, even parity, 1 stop bit.

    A pseudo-terminal (the virtual house, the tests) refuses 7E1 with EINVAL: it has no line,
    so it is opened 8N1 and carries the same 7-bit characters."""
    kwargs = {
        "bytesize": serial.SEVENBITS,
        "parity": serial.PARITY_EVEN,
        "stopbits": serial.STOPBITS_ONE,
    }
    try:
        try:
            return cast(SerialLink, serial.Serial(port, baud, timeout=READ_TIMEOUT_S, **kwargs))
        except termios.error as exc:
            if exc.args[0] != errno.EINVAL or not is_pty(port):
                raise
            return cast(SerialLink, serial.Serial(port, baud, timeout=READ_TIMEOUT_S))
    except (serial.SerialException, OSError) as exc:
        code = getattr(exc, "errno", None)
        if code in (errno.EACCES, errno.EPERM):
            raise PortError(port, "permission", str(exc)) from exc
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise PortError(port, "missing", str(exc)) from exc
        raise PortError(port, "io", str(exc)) from exc
    except (termios.error, ValueError) as exc:
        raise PortError(port, "io", f"cannot set 7E1 at {baud} baud: {exc}") from exc


def is_pty(port: str) -> bool:
    """A Unix98 pseudo-terminal slave (majors 136-143), through any symlink."""
    try:
        return 136 <= os.major(os.stat(port).st_rdev) <= 143
    except OSError:
        return False


@dataclass
class Backoff:
    """Doubling delays between reopen attempts; tiny values make tests fast, not sleeps."""

    min_s: float = 1.0
    max_s: float = 30.0
    _next: float = 0.0

    def delay(self) -> float:
        d = self._next or self.min_s
        self._next = min(d * 2, self.max_s)
        return d

    def reset(self) -> None:
        self._next = 0.0


class TicReader:
    """Reads frames from `port` and hands each complete one to `sink`, until `stop()`.

    `mode` "auto" listens at 9600 then 1200 baud, `detect_s` each, and keeps the first that
    yields a valid frame (the frame's syntax names the mode). Counters live in `parser`."""

    def __init__(
        self,
        port: str,
        mode: ModeSetting,
        sink: Callable[[Frame], None],
        *,
        backoff: Backoff | None = None,
        detect_s: float = 6.0,
        opener: Callable[[str, int], SerialLink] = open_serial,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.port = port
        self.setting = mode
        self.mode: Mode | None = None if mode == "auto" else mode
        self.sink = sink
        self.backoff = backoff or Backoff()
        self.detect_s = detect_s
        self.opener = opener
        self.clock = clock
        self.parser = TicParser()
        self.stopping = threading.Event()
        self.state = "starting"  # starting | detecting | reading | waiting
        self.opens = 0
        self.last_frame_at: float | None = None
        self._last_problem: str | None = None
        self._noisy = False
        self._errors_seen = 0
        self._lost = False

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Read until stopped; every failure ends in a wait and a new attempt."""
        while not self.stopping.is_set():
            if self.mode is None:
                self._detect()
            else:
                link = self._open(BAUD[self.mode])
                if link is not None:
                    self._read(link, self.mode)
            if not self.stopping.is_set():
                self.state = "waiting"
                self.stopping.wait(self.backoff.delay())

    # -- opening ------------------------------------------------------------------------------
    def _open(self, baud: int) -> SerialLink | None:
        try:
            link = self.opener(self.port, baud)
        except PortError as exc:
            self._problem(exc.kind, exc.advice())
            return None
        self.opens += 1
        if self._last_problem is not None or self._lost:
            log.info("TIC: %s open again at %d baud", self.port, baud)
        self._last_problem, self._lost = None, False
        return link

    def _problem(self, kind: str, message: str) -> None:
        """Log a port problem once per episode, not once per retry."""
        if kind != self._last_problem:
            (log.error if kind == "permission" else log.warning)("TIC: %s", message)
        self._last_problem = kind

    def _detect(self) -> None:
        """`auto`: try each baud rate for `detect_s`; the first valid frame decides."""
        self.state = "detecting"
        for mode in AUTO_ORDER:
            link = self._open(BAUD[mode])
            if link is None:
                return
            self._read(link, mode, detect=True)  # goes on reading once the mode is found
            if self.mode is not None or self.stopping.is_set():
                return
        log.warning(
            "TIC: auto: no valid frame at 9600 nor 1200 baud on %s within %g s each "
            "(is the dongle on the meter's I1/I2 terminals?); trying again",
            self.port,
            self.detect_s,
        )

    # -- reading ------------------------------------------------------------------------------
    def _read(self, link: SerialLink, mode: Mode, detect: bool = False) -> None:
        """Feed the parser until the link fails or the stop; in detection, give up after
        `detect_s` without a valid frame."""
        self.state = "detecting" if detect else "reading"
        started = self.clock()
        self.parser.reset()  # whatever was half-read before is not this frame's start
        try:
            while not self.stopping.is_set():
                try:
                    data = link.read(link.in_waiting or 1)
                except (serial.SerialException, OSError) as exc:
                    log.warning("TIC: lost %s (%s); reopening with backoff", self.port, exc)
                    self._lost = True
                    return
                frames = self.parser.feed(data) if data else []
                now = self.clock()
                for frame in frames:
                    self.backoff.reset()
                    self.last_frame_at = now
                    if detect:  # the frame's syntax names the mode; keep this link
                        detect = False
                        self.mode, self.state = frame.mode, "reading"
                        log.info(
                            "TIC: auto: found %s mode (%d baud) on %s",
                            frame.mode,
                            BAUD[mode],
                            self.port,
                        )
                    self.sink(frame)
                self._watch_noise(frames)
                if detect and now - started > self.detect_s:
                    return
                if (
                    not detect
                    and self.setting == "auto"
                    and now - max(self.last_frame_at or started, started) > 3 * self.detect_s
                ):
                    log.warning("TIC: no valid frame for a while; detecting the mode again")
                    self.mode = None
                    return
        finally:
            with contextlib.suppress(serial.SerialException, OSError):
                link.close()

    def _watch_noise(self, frames: list[Frame]) -> None:
        """Garbage is counted always, logged once per episode (until a clean frame)."""
        errors = self.parser.counters.errors
        if not self._noisy and errors > self._errors_seen:
            c = self.parser.counters
            log.warning(
                "TIC: garbage on %s (bad checksums %d, malformed %d, partial frames %d): "
                "noise, a loose wire or a wrong baud rate; counting it quietly from now",
                self.port,
                c.bad_checksum,
                c.malformed,
                c.partial_frames,
            )
            self._noisy = True
        if self._noisy and any(f.dropped == 0 for f in frames):
            log.info("TIC: clean frames again")
            self._noisy = False
        self._errors_seen = errors
