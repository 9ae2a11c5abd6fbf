"""What a TIC frame means, pure: STGE decoding, horodates, and the label → MQTT topic mapping
that `pvopt tic` publishes (the seed's scalar topics first, then every label as-is)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from pvopt.adapters.tic.frames import Frame

# Historic-mode energy indexes (Wh), one per tariff period: their sum is the drawn total.
HISTORIC_INDEXES = (
    "BASE",
    "HCHC",
    "HCHP",
    "EJPHN",
    "EJPHPM",
    "BBRHCJB",
    "BBRHPJB",
    "BBRHCJW",
    "BBRHPJW",
    "BBRHCJR",
    "BBRHPJR",
)
ERQ_LABELS = ("ERQ1", "ERQ2", "ERQ3", "ERQ4")
# Labels whose data is free text: published stripped, never as numbers.
TEXT_LABELS = frozenset(
    {
        *("ADSC", "ADCO", "PRM", "VTIC", "NGTF", "LTARF", "MSG1", "MSG2", "STGE", "RELAIS"),
        *("PJOURF+1", "PPOINTE", "OPTARIF", "PTEC", "DEMAIN", "HHPHC", "MOTDETAT", "PPOT"),
    }
)
# STGE bits 1-3: the breaker's state and why it opened
_BREAKER = (
    "closed",
    "open_overpower",
    "open_overvoltage",
    "open_load_shedding",
    "open_remote_order",
    "open_overheat_above_imax",
    "open_overheat_below_imax",
)
_TEMPO = ("none", "blue", "white", "red")


def decode_stge(value: str) -> dict[str, Any]:
    """The STGE status register (8 hex digits, Enedis-NOI-CPT_54E §6.2.3.14) as named fields.

    Raises ValueError on a value that is not 32-bit hex."""
    if len(value) != 8:
        raise ValueError(f"STGE {value!r}: want 8 hex digits")
    r = int(value, 16)
    cut = (r >> 1) & 0x7
    return {
        "dry_contact_open": bool(r & 1),
        "breaker": _BREAKER[cut] if cut < len(_BREAKER) else f"code_{cut}",
        "cover_open": bool(r >> 4 & 1),
        "overvoltage": bool(r >> 6 & 1),
        "over_reference_power": bool(r >> 7 & 1),
        "producer": bool(r >> 8 & 1),  # 1: the meter runs as producer/consumer
        "active_energy_negative": bool(r >> 9 & 1),  # 1: exporting now
        "supplier_index": (r >> 10 & 0xF) + 1,  # tariff index 1..10 of the supplier contract
        "distributor_index": (r >> 14 & 0x3) + 1,
        "clock_degraded": bool(r >> 16 & 1),
        "tic_standard": bool(r >> 17 & 1),
        "euridis": (r >> 19) & 0x3,
        "cpl_status": (r >> 21) & 0x3,
        "cpl_synchronised": bool(r >> 23 & 1),
        "tempo_today": _TEMPO[(r >> 24) & 0x3],
        "tempo_tomorrow": _TEMPO[(r >> 26) & 0x3],
        "mobile_peak_notice": (r >> 28) & 0x3,  # 0: none, 1..3: PM1..PM3 announced
        "mobile_peak": (r >> 30) & 0x3,  # 0: none, 1..3: PM1..PM3 running
    }


def horodate_iso(horodate: str) -> str | None:
    """SAAMMJJhhmmss → ISO 8601 with the meter's offset (E/e summer +02:00, H/h winter +01:00;
    a blank season: no offset known). None when it is not a horodate."""
    if len(horodate) != 13 or not horodate[1:].isdigit():
        return None
    season = horodate[0]
    offset = {"E": "+02:00", "H": "+01:00"}.get(season.upper(), "")
    d = horodate[1:]
    return f"20{d[0:2]}-{d[2:4]}-{d[4:6]}T{d[6:8]}:{d[8:10]}:{d[10:12]}{offset}"


def label_topic(prefix: str, label: str) -> str:
    """`prefix` + label; '+' is an MQTT wildcard, so NJOURF+1 becomes NJOURF_1."""
    return prefix + label.replace("+", "_")


def value_of(label: str, data: str) -> str:
    """A label's payload: numbers without their zero padding, text without its padding."""
    text = data.strip()
    if label not in TEXT_LABELS and text.isdigit():
        return str(int(text))
    return text


@dataclass(frozen=True)
class TopicMap:
    """Where the derived scalars go (the topics `pvopt run` reads); labels go under prefix."""

    prefix: str = "tic/"
    sinsts: str = "tic/SINSTS"
    sinsti: str = "tic/SINSTI"
    erqt: str = "tic/ERQT"
    tariff: str = "tic/PTEC"

    @property
    def summary(self) -> str:
        """The retained JSON summary (lower case: no TIC label is)."""
        return self.prefix + "bridge"


def _int(frame: Frame, label: str) -> int | None:
    data = frame.get(label)
    if data is None:
        return None
    text = data.strip()
    return int(text) if text.isdigit() else None


def derived(frame: Frame) -> dict[str, str]:
    """The seed's scalars from one frame: SINSTS, SINSTI, ERQT, EAST, EAIT and the tariff
    label, each only when the frame carries what it needs (historic mode sees no export)."""
    out: dict[str, str] = {}
    if frame.mode == "standard":
        for label in ("SINSTS", "SINSTI", "EAST", "EAIT"):
            v = _int(frame, label)
            if v is not None:
                out[label] = str(v)
        erq = [_int(frame, label) for label in ERQ_LABELS]
        if any(v is not None for v in erq):
            out["ERQT"] = str(sum(v or 0 for v in erq))
        tariff = frame.get("LTARF")
    else:
        papp = _int(frame, "PAPP")
        if papp is not None:
            out["SINSTS"] = str(papp)
        indexes = [_int(frame, label) for label in HISTORIC_INDEXES]
        if any(v is not None for v in indexes):
            out["EAST"] = str(sum(v or 0 for v in indexes))
        tariff = frame.get("PTEC")
    if tariff is not None and tariff.strip():
        out["PTEC"] = tariff.strip()
    return out


def frame_topics(frame: Frame, topics: TopicMap) -> dict[str, str]:
    """Every topic → payload published for one frame: each valid label under the prefix (with
    `<LABEL>/date` for a horodate and `STGE/decoded` as JSON), then the derived scalars on the
    topics pvopt reads (they win over a label of the same name)."""
    out: dict[str, str] = {}
    for label, group in frame.groups.items():
        topic = label_topic(topics.prefix, label)
        if group.data.strip() or not group.horodate:
            out[topic] = value_of(label, group.data)
        if group.horodate:
            iso = horodate_iso(group.horodate)
            key = topic if label == "DATE" else f"{topic}/date"
            out[key] = iso if iso is not None else group.horodate
        if label == "STGE":
            with contextlib.suppress(ValueError):
                out[f"{topic}/decoded"] = json.dumps(decode_stge(group.data.strip()))
    targets = {
        "SINSTS": topics.sinsts,
        "SINSTI": topics.sinsti,
        "ERQT": topics.erqt,
        "PTEC": topics.tariff,
        "EAST": topics.prefix + "EAST",
        "EAIT": topics.prefix + "EAIT",
    }
    for name, value in derived(frame).items():
        out[targets[name]] = value
    return out


def identity(frame: Frame) -> str | None:
    """The meter's address: ADSC (standard) or ADCO (historic)."""
    data = frame.get("ADSC") or frame.get("ADCO")
    return data.strip() if data else None
