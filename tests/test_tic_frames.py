"""The TIC parser and label mapping, pure: frames built per Enedis-NOI-CPT_54E in both modes,
single- and three-phase, and Hypothesis over arbitrary byte streams."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvopt.adapters.tic.frames import Frame, TicParser, checksum, parse_group
from pvopt.adapters.tic.labels import (
    TopicMap,
    decode_stge,
    derived,
    frame_topics,
    horodate_iso,
    identity,
    label_topic,
)
from pvsim.tic_writer import encode_frame, encode_group, stge

# A historic single-phase frame (the spec's example groups and their published checksums)
HISTORIC_1PH = [
    ("ADCO", "031762120162"),
    ("OPTARIF", "HC.."),
    ("ISOUSC", "45"),
    ("HCHC", "001234567"),
    ("HCHP", "002345678"),
    ("PTEC", "HC.."),
    ("IINST", "002"),
    ("IMAX", "090"),
    ("PAPP", "00420"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
]
HISTORIC_3PH = [
    ("ADCO", "031762120163"),
    ("OPTARIF", "BASE"),
    ("ISOUSC", "20"),
    ("BASE", "012345678"),
    ("PTEC", "TH.."),
    ("IINST1", "001"),
    ("IINST2", "002"),
    ("IINST3", "003"),
    ("IMAX1", "060"),
    ("IMAX2", "060"),
    ("IMAX3", "060"),
    ("PMAX", "06000"),
    ("PAPP", "01520"),
    ("HHPHC", "A"),
    ("MOTDETAT", "000000"),
    ("PPOT", "00"),
]
STANDARD_1PH = [
    ("ADSC", "041876543210"),
    ("VTIC", "02"),
    ("DATE", "E260615114500", ""),
    ("NGTF", "      TEMPO     "),
    ("LTARF", "  HC  BLEU      "),
    ("EAST", "012345678"),
    ("EASF01", "006000000"),
    ("EASF02", "006345678"),
    ("EAIT", "000345678"),
    ("ERQ1", "000100000"),
    ("ERQ2", "000020000"),
    ("ERQ3", "000003000"),
    ("ERQ4", "000000400"),
    ("IRMS1", "004"),
    ("URMS1", "231"),
    ("PREF", "09"),
    ("PCOUP", "09"),
    ("SINSTS", "00000"),
    ("SMAXSN", "E260615112233", "03456"),
    ("SMAXSN-1", "E260614120000", "04567"),
    ("SINSTI", "00812"),
    ("SMAXIN", "E260615121314", "02500"),
    ("CCASN", "E260615113000", "00150"),
    ("UMOY1", "E260615114000", "230"),
    ("STGE", "013A0500"),
    ("MSG1", "PAS DE          MESSAGE         "),
    ("PRM", "09876543210987"),
    ("RELAIS", "000"),
    ("NTARF", "01"),
    ("NJOURF", "00"),
    ("NJOURF+1", "00"),
    ("PJOURF+1", "00004001 06004002 22004001 NONUTILE NONUTILE"),
]
STANDARD_3PH = [
    *STANDARD_1PH[:13],
    *((f"IRMS{n}", f"{n:03d}") for n in (1, 2, 3)),
    *((f"URMS{n}", f"{229 + n:03d}") for n in (1, 2, 3)),
    ("SINSTS", "01500"),
    *((f"SINSTS{n}", f"{n * 250:05d}") for n in (1, 2, 3)),
    ("SINSTI", "00000"),
    ("STGE", "003A0001"),
]


def parse_all(data: bytes) -> tuple[list[Frame], TicParser]:
    parser = TicParser()
    return parser.feed(data), parser


# -- checksums: the spec's own examples ---------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "mode"),
    [
        (b"IINST 002 Y", "historic"),
        (b"OPTARIF HC.. <", "historic"),
        (b"PTEC HP..  ", "historic"),  # a checksum that is itself a space
        (b"MOTDETAT 000000 B", "historic"),
        (b"SINSTS\t00000\tF", "standard"),
        (b"VTIC\t02\tJ", "standard"),
    ],
)
def test_checksums_match_the_spec_examples(line: bytes, mode: str) -> None:
    group = parse_group(line)
    assert group and group.mode == mode


def test_checksum_formula() -> None:
    assert checksum(b"") == 0x20
    assert checksum(b"\x3f") == 0x5F
    assert checksum(b"\x40") == 0x20  # only the low 6 bits count


# -- whole frames, both modes ----------------------------------------------------------------
@pytest.mark.parametrize("groups", [HISTORIC_1PH, HISTORIC_3PH], ids=["1ph", "3ph"])
def test_historic_frames(groups: list[tuple[str, str]]) -> None:
    frames, parser = parse_all(encode_frame(groups, "historic"))
    (frame,) = frames
    assert frame.mode == "historic" and frame.dropped == 0
    assert {k: g.data for k, g in frame.groups.items()} == dict(groups)
    assert parser.counters.groups == len(groups) and parser.counters.errors == 0


@pytest.mark.parametrize("groups", [STANDARD_1PH, STANDARD_3PH], ids=["1ph", "3ph"])
def test_standard_frames(groups: list) -> None:
    frames, _ = parse_all(encode_frame(groups))
    (frame,) = frames
    assert frame.mode == "standard" and frame.dropped == 0
    for g in groups:
        got = frame.groups[g[0]]
        assert (got.horodate, got.data) == ((g[1], g[2]) if len(g) == 3 else ("", g[1]))


def test_standard_single_phase_topics() -> None:
    (frame,) = parse_all(encode_frame(STANDARD_1PH))[0]
    topics = frame_topics(frame, TopicMap())
    assert topics["tic/SINSTS"] == "0"
    assert topics["tic/SINSTI"] == "812"
    assert topics["tic/ERQT"] == str(100000 + 20000 + 3000 + 400)
    assert topics["tic/EAST"] == "12345678"
    assert topics["tic/EAIT"] == "345678"
    assert topics["tic/PTEC"] == "HC  BLEU"  # LTARF, what the off-peak schedule matches
    assert topics["tic/LTARF"] == "HC  BLEU"
    assert topics["tic/ADSC"] == "041876543210"  # an address keeps its zeros
    assert topics["tic/VTIC"] == "02"
    assert topics["tic/DATE"] == "2026-06-15T11:45:00+02:00"
    assert topics["tic/SMAXSN"] == "3456"
    assert topics["tic/SMAXSN/date"] == "2026-06-15T11:22:33+02:00"
    assert topics["tic/SMAXSN-1"] == "4567"
    assert topics["tic/NJOURF_1"] == "0"  # '+' is an MQTT wildcard
    assert topics["tic/PJOURF_1"].startswith("00004001 06004002")
    assert topics["tic/MSG1"] == "PAS DE          MESSAGE"
    stge_doc = json.loads(topics["tic/STGE/decoded"])
    assert stge_doc == decode_stge("013A0500")
    assert identity(frame) == "041876543210"


def test_standard_three_phase_topics() -> None:
    (frame,) = parse_all(encode_frame(STANDARD_3PH))[0]
    topics = frame_topics(frame, TopicMap())
    assert [topics[f"tic/SINSTS{n}"] for n in (1, 2, 3)] == ["250", "500", "750"]
    assert [topics[f"tic/URMS{n}"] for n in (1, 2, 3)] == ["230", "231", "232"]
    assert [topics[f"tic/IRMS{n}"] for n in (1, 2, 3)] == ["1", "2", "3"]
    assert topics["tic/SINSTS"] == "1500" and topics["tic/SINSTI"] == "0"


def test_historic_topics_have_no_export() -> None:
    (frame,) = parse_all(encode_frame(HISTORIC_1PH, "historic"))[0]
    topics = frame_topics(frame, TopicMap())
    assert topics["tic/SINSTS"] == "420"  # PAPP, the apparent power drawn
    assert "tic/SINSTI" not in topics and "tic/ERQT" not in topics
    assert topics["tic/EAST"] == str(1234567 + 2345678)  # HCHC + HCHP
    assert topics["tic/PTEC"] == "HC.."
    assert topics["tic/MOTDETAT"] == "000000"
    assert identity(frame) == "031762120162"
    (frame3,) = parse_all(encode_frame(HISTORIC_3PH, "historic"))[0]
    t3 = frame_topics(frame3, TopicMap())
    assert [t3[f"tic/IINST{n}"] for n in (1, 2, 3)] == ["1", "2", "3"]
    assert t3["tic/EAST"] == "12345678"


def test_scalars_follow_the_meter_config_topics() -> None:
    (frame,) = parse_all(encode_frame(STANDARD_1PH))[0]
    topics = frame_topics(frame, TopicMap("linky/", "a/s", "a/i", "a/q", "a/tariff"))
    assert topics["a/s"] == "0" and topics["a/i"] == "812" and topics["a/q"] == "123400"
    assert topics["a/tariff"] == "HC  BLEU" and topics["linky/EAST"] == "12345678"
    assert topics["linky/SINSTI"] == "812"
    assert TopicMap("linky/").summary == "linky/bridge"


# -- STGE -----------------------------------------------------------------------------------
def test_stge_fields() -> None:
    # producer (bit 8), exporting (bit 9), supplier index 3 (bits 10-13 = 2), standard TIC
    # (bit 17), Tempo today white (bits 24-25 = 2), tomorrow red (bits 26-27 = 3)
    r = 1 << 8 | 1 << 9 | 2 << 10 | 1 << 17 | 2 << 24 | 3 << 26
    doc = decode_stge(f"{r:08X}")
    assert doc["producer"] and doc["active_energy_negative"] and doc["tic_standard"]
    assert doc["supplier_index"] == 3 and doc["distributor_index"] == 1
    assert (doc["tempo_today"], doc["tempo_tomorrow"]) == ("white", "red")
    assert doc["breaker"] == "closed" and not doc["dry_contact_open"]
    assert decode_stge("00000002")["breaker"] == "open_overpower"
    assert decode_stge("C0000000")["mobile_peak"] == 3
    assert decode_stge(stge(producer=False, exporting=False))["producer"] is False
    with pytest.raises(ValueError):
        decode_stge("XYZ")


def test_horodate() -> None:
    assert horodate_iso("H081225223518") == "2008-12-25T22:35:18+01:00"
    assert horodate_iso("e260701000000") == "2026-07-01T00:00:00+02:00"
    assert horodate_iso(" 260701000000") == "2026-07-01T00:00:00"
    assert horodate_iso("nonsense") is None
    assert label_topic("tic/", "PJOURF+1") == "tic/PJOURF_1"


# -- errors: dropped, counted, resynchronised ---------------------------------------------------
def corrupt(group: bytes) -> bytes:
    """The same group with a wrong checksum character (still printable)."""
    cs = group[-2]
    return group[:-2] + bytes([0x20 + (cs - 0x20 + 1) % 64]) + b"\r"


def test_bad_checksum_drops_only_that_group() -> None:
    good = encode_group("SINSTS", "00100") + encode_group("URMS1", "231")
    bad = corrupt(encode_group("SINSTI", "00999"))
    frames, parser = parse_all(b"\x02" + good + bad + b"\x03")
    (frame,) = frames
    assert set(frame.groups) == {"SINSTS", "URMS1"} and frame.dropped == 1
    assert parser.counters.bad_checksum == 1
    assert "tic/SINSTI" not in frame_topics(frame, TopicMap())


def test_producer_frame_with_every_erq_group() -> None:
    """The seed's reader died on the first ERQ group: a producer frame parses whole."""
    (frame,) = parse_all(encode_frame(STANDARD_1PH))[0]
    assert {"ERQ1", "ERQ2", "ERQ3", "ERQ4", "SINSTI", "EAIT"} <= set(frame.groups)
    assert derived(frame)["ERQT"] == "123400"


def test_partial_first_frame_and_noise_then_resync() -> None:
    frame = encode_frame(STANDARD_1PH)
    stream = frame[200:] + b"\xff\x00noise\x02\nHALF" + frame + b"\x02\nCUT\x04" + frame
    frames, parser = parse_all(stream)
    assert len(frames) == 2 and all(f.dropped == 0 for f in frames)
    assert parser.counters.partial_frames == 2  # STX before ETX, then EOT


def test_chunking_does_not_matter() -> None:
    data = encode_frame(STANDARD_3PH) * 3
    parser = TicParser()
    frames = [f for b in data for f in parser.feed(bytes([b]))]
    assert len(frames) == 3


def test_oversized_frame_is_dropped() -> None:
    frames, parser = parse_all(b"\x02" + b"A" * 10_000 + encode_frame(HISTORIC_1PH, "historic"))
    assert len(frames) == 1 and parser.counters.partial_frames == 1


# -- Hypothesis --------------------------------------------------------------------------------
LABELS = st.from_regex(r"[A-Z][A-Z0-9]{0,7}", fullmatch=True)
DATA = st.from_regex(r"[0-9A-Z .:]{0,20}", fullmatch=True)


@st.composite
def tic_groups(draw: st.DrawFn) -> tuple[str, bool, list[tuple[bytes, str, str, bool]]]:
    """A frame's groups, each (encoded, label, data, valid): some with a wrong checksum."""
    mode = draw(st.sampled_from(["historic", "standard"]))
    out = []
    for _ in range(draw(st.integers(1, 8))):
        label = draw(LABELS)
        data = draw(DATA)
        if mode == "historic":
            data = data.strip(" ").replace(" ", ".") or "0"
        raw = encode_group(label, data, "", mode)
        valid = draw(st.booleans())
        out.append((raw if valid else corrupt(raw), label, data, valid))
    return mode, True, out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 64), max_size=50))
def test_any_byte_stream_never_raises_and_checksums_hold(data: bytes, cuts: list[int]) -> None:
    parser = TicParser()
    frames, pos = [], 0
    for n in cuts:
        frames += parser.feed(data[pos : pos + n])
        pos += n
    frames += parser.feed(data[pos:])
    for frame in frames:
        frame_topics(frame, TopicMap())  # mapping never raises either
        for g in frame.groups.values():
            if g.mode == "historic":
                body = f"{g.label} {g.data}".encode()
            else:
                fields = [g.label, g.horodate, g.data] if g.horodate else [g.label, g.data]
                body = ("\t".join(fields) + "\t").encode()
            assert checksum(body) == g.checksum
    whole = TicParser().feed(data)
    assert [f.groups for f in whole] == [f.groups for f in frames]  # chunking never matters


@settings(max_examples=300, deadline=None)
@given(st.lists(tic_groups(), min_size=1, max_size=5), st.binary(max_size=200))
def test_no_value_from_a_bad_group(frames_spec: list, noise: bytes) -> None:
    stream = noise
    good: set[tuple[str, str]] = set()
    for _mode, _, groups in frames_spec:
        stream += b"\x02" + b"".join(raw for raw, *_ in groups) + b"\x03"
        for _raw, label, data, valid in groups:
            if valid:
                good.add((label, data))
    frames = TicParser().feed(stream)
    noise_frames = TicParser().feed(noise)  # valid groups the noise itself carries
    from_noise = {(k, g.data) for f in noise_frames for k, g in f.groups.items()}
    for frame in frames:
        for label, g in frame.groups.items():
            assert (label, g.data) in good | from_noise  # never a corrupted group's value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_recovers_the_next_valid_frame_after_any_garbage(garbage: bytes) -> None:
    valid = encode_frame(STANDARD_1PH)
    frames = TicParser().feed(garbage + valid)
    assert frames and frames[-1].groups == parse_all(valid)[0][0].groups
