"""The Linky TIC frame parser (Enedis-NOI-CPT_54E), pure: bytes in, validated frames out.

Bytes may arrive in any chunks; a frame is STX…ETX, a group LF…CR. Historic groups are
`label SP data SP checksum` (checksum over `label SP data`), standard groups are
`label HT [horodate HT] data HT checksum` (checksum over everything up to and including the
HT before it). A group with a bad checksum or a broken shape is dropped and counted; a frame
keeps only its valid groups. STX always starts afresh, so the parser resynchronises on the next
frame after noise, a wrong baud rate or the partial frame that follows opening the port.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal

STX, ETX, EOT, LF, CR, HT, SP = 0x02, 0x03, 0x04, 0x0A, 0x0D, 0x09, 0x20
Mode = Literal["historic", "standard"]

MAX_FRAME_BYTES = 4096  # a standard three-phase frame is ~1.2 kB; beyond this it is noise
_FRAME_CONTROL = re.compile(rb"[\x02\x03\x04]")  # what ends (or interrupts) a frame
_LABEL = re.compile(rb"[A-Z0-9][A-Z0-9+\-]{0,15}")
# a group body's characters: printable ASCII, plus HT as the standard separator
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t"


def checksum(body: bytes) -> int:
    """The TIC checksum of `body`: (sum of its bytes & 0x3F) + 0x20, a printable character."""
    return (sum(body) & 0x3F) + 0x20


@dataclass(frozen=True, slots=True)
class Group:
    """One valid information group; `horodate` is the standard mode's SAAMMJJhhmmss or ""."""

    label: str
    data: str
    horodate: str = ""
    mode: Mode = "standard"
    checksum: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame's valid groups by label (in order), and how many were dropped."""

    mode: Mode
    groups: dict[str, Group]
    dropped: int = 0

    def get(self, label: str) -> str | None:
        group = self.groups.get(label)
        return None if group is None else group.data


@dataclass(slots=True)
class Counters:
    """What the parser saw: the error counters published in the bridge summary."""

    frames: int = 0  # complete frames emitted
    groups: int = 0  # valid groups emitted
    bad_checksum: int = 0  # groups dropped: checksum mismatch
    malformed: int = 0  # groups dropped: no LF/CR pair, bad label, stray characters
    partial_frames: int = 0  # frames cut by STX, EOT or the size cap before their ETX
    skipped_bytes: int = 0  # bytes outside any frame (noise, wrong baud rate, first partial)

    @property
    def errors(self) -> int:
        return self.bad_checksum + self.malformed + self.partial_frames

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def parse_group(raw: bytes) -> Group | Literal[False] | None:
    """A group body (between LF and CR): the Group, None for a checksum mismatch, False when
    it has no TIC shape at all."""
    if len(raw) < 3 or raw.translate(None, _PRINTABLE):
        return False
    sep = raw[-2]
    if sep == HT:
        parts = raw[:-2].split(b"\t")
        if len(parts) == 2:
            label, horodate, data = parts[0], b"", parts[1]
        elif len(parts) == 3:
            label, horodate, data = parts
        else:
            return False
        mode: Mode = "standard"
        covered = raw[:-1]
    elif sep == SP and b"\t" not in raw:
        label, _, data = raw[:-2].partition(b" ")
        if not _:
            return False
        horodate = b""
        mode = "historic"
        covered = raw[:-2]
    else:
        return False
    if not _LABEL.fullmatch(label):
        return False
    if checksum(covered) != raw[-1]:
        return None
    return Group(label.decode(), data.decode(), horodate.decode(), mode, raw[-1])


@dataclass
class TicParser:
    """Feed it bytes as they come; it returns the frames completed by each chunk."""

    counters: Counters = field(default_factory=Counters)
    _buf: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False

    def reset(self) -> None:
        """Forget a half-read frame (the port was closed: already logged, not noise)."""
        self._in_frame = False
        self.counters.skipped_bytes += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        buf = self._buf
        pos = 0
        c = self.counters
        while pos < len(buf):
            if not self._in_frame:
                start = buf.find(b"\x02", pos)
                if start < 0:
                    c.skipped_bytes += len(buf) - pos
                    pos = len(buf)
                    break
                c.skipped_bytes += start - pos
                pos = start + 1
                self._in_frame = True
                continue
            m = _FRAME_CONTROL.search(buf, pos)
            if m is None:
                if len(buf) - pos > MAX_FRAME_BYTES:  # no ETX in sight: noise, drop it
                    c.partial_frames += 1
                    c.skipped_bytes += len(buf) - pos
                    self._in_frame = False
                    pos = len(buf)
                break  # wait for more bytes
            end = m.start()
            control = buf[end]
            if control == ETX:
                frame = self._frame(bytes(buf[pos:end]))
                if frame is not None:
                    out.append(frame)
                self._in_frame = False
                pos = end + 1
            else:  # STX before ETX, or EOT (the meter interrupted its frame): resync here
                c.partial_frames += 1
                self._in_frame = False
                pos = end if control == STX else end + 1
        del buf[:pos]
        return out

    def _frame(self, body: bytes) -> Frame | None:
        c = self.counters
        if len(body) > MAX_FRAME_BYTES:
            c.partial_frames += 1
            return None
        chunks = body.split(b"\r")
        groups: dict[str, Group] = {}
        dropped = 0
        modes = set()
        for chunk in chunks[:-1]:
            if len(chunk) < 1 or chunk[0] != LF or b"\n" in chunk[1:]:
                dropped += 1
                c.malformed += 1
                continue
            group = parse_group(chunk[1:])
            if group is None:
                dropped += 1
                c.bad_checksum += 1
            elif group is False:
                dropped += 1
                c.malformed += 1
            else:
                groups[group.label] = group
                modes.add(group.mode)
        if chunks[-1]:  # bytes after the last CR
            dropped += 1
            c.malformed += 1
        if not groups:
            return None
        if len(modes) > 1:  # a stream mixing both syntaxes is noise that happened to sum up
            c.malformed += len(groups)
            return None
        c.frames += 1
        c.groups += len(groups)
        return Frame(modes.pop(), groups, dropped)
