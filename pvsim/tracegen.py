"""Held-out day traces from a documented stochastic model (numpy only), so the regulator can be
checked on days its tuning never saw. `python -m pvsim.tracegen [--out DIR]` rewrites them.

Model (docs/simulator.md, "Held-out traces"): clear-sky PV of the shipped site (Toulouse, 6 kWp
south 35°, 5 kW inverter) from solar geometry, times a clear-sky index kc(t) drawn per minute from a
Markov chain of sky regimes (clear, broken, overcast), rendered to 1 s (broken: sun/shade spells
with exponential durations and 2–6 s cloud edges, cloud enhancement up to 1.25; overcast: a slow
Ornstein–Uhlenbeck kc); base load = 140 W always-on, a fridge cycling, appliance events drawn per
hour of an activity profile (kettle, hob with thermostat cycling, oven, washing machine, dishwasher,
TV/IT, lighting) and OU noise. Same name, same seed: byte-identical files."""

from __future__ import annotations

import argparse
import gzip
import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from pvopt.examples import TRACES

LAT, LON = 43.6, 1.44
TILT = 35.0  # degrees; the panels face due south (`clear_sky_pv` takes azimuth from south)
KWP_DC, AC_MAX_W, DERATE = 6000.0, 5000.0, 0.913 * 0.96
BASE_SEED = 20261129  # differs from the shipped traces' 20160623


@dataclass(frozen=True)
class DaySpec:
    """One held-out day: its date and the regime chain it draws from."""

    name: str
    day: date
    # per-minute transition matrix over (clear, broken, overcast) and the initial regime
    chain: tuple[tuple[float, float, float], ...]
    start_regime: int
    overcast_kc: tuple[float, float]  # mean, spread of the overcast index
    weekend: bool = False


HELD_OUT = (
    DaySpec(
        "heldout_grey",
        date(2016, 3, 9),
        ((0.90, 0.05, 0.05), (0.01, 0.90, 0.09), (0.001, 0.003, 0.996)),
        2,
        (0.2, 0.08),
    ),
    DaySpec(
        "heldout_mixed",
        date(2016, 5, 28),
        ((0.95, 0.045, 0.005), (0.03, 0.955, 0.015), (0.01, 0.05, 0.94)),
        1,
        (0.40, 0.12),
        weekend=True,
    ),
)


def seed_of(name: str) -> int:
    return BASE_SEED + zlib.crc32(name.encode())


def clear_sky_pv(t: np.ndarray) -> np.ndarray:
    """AC power (W) at epoch seconds `t` under a clear sky: Haurwitz GHI, a fixed diffuse share,
    isotropic transposition, 4 % temperature loss, the inverter's clip."""
    dt = t.astype("datetime64[s]")
    doy = (dt - dt.astype("datetime64[Y]")).astype("timedelta64[D]").astype(float) + 1
    hours = (dt - dt.astype("datetime64[D]")).astype(float) / 3600.0
    g = 2 * math.pi / 365 * (doy - 1 + (hours - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
    )
    eot = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g)
    )
    solar_time = hours * 60 + eot + 4 * LON
    ha = np.radians(solar_time / 4 - 180)
    lat = math.radians(LAT)
    cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(ha)
    cos_z = np.clip(cos_z, 0.0, 1.0)
    ghi = np.where(cos_z > 0.01, 1098 * cos_z * np.exp(-0.057 / np.maximum(cos_z, 0.01)), 0.0)
    dhi = 0.15 * ghi
    dni = np.where(cos_z > 0.05, (ghi - dhi) / np.maximum(cos_z, 0.05), 0.0)
    sin_z = np.sqrt(1 - cos_z**2)
    az = np.arctan2(
        np.sin(ha), np.cos(ha) * np.sin(lat) - np.tan(decl) * np.cos(lat)
    )  # from south, west positive
    tilt = math.radians(TILT)
    cos_aoi = cos_z * math.cos(tilt) + sin_z * math.sin(tilt) * np.cos(az)
    poa = dni * np.clip(cos_aoi, 0, None) + dhi * (1 + math.cos(tilt)) / 2
    poa += 0.2 * ghi * (1 - math.cos(tilt)) / 2
    return np.asarray(np.minimum(KWP_DC * poa / 1000.0 * DERATE, AC_MAX_W))


def _ou(rng: np.random.Generator, n: int, tau_s: float, sigma: float) -> np.ndarray:
    a = math.exp(-1.0 / tau_s)
    noise = rng.normal(0.0, sigma * math.sqrt(1 - a * a), n)
    out = np.empty(n)
    x = 0.0
    for i in range(n):
        x = a * x + noise[i]
        out[i] = x
    return out


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones(width) / width
    return np.convolve(
        np.pad(x, (width // 2, width - 1 - width // 2), mode="edge"), kernel, "valid"
    )


def clear_sky_index(spec: DaySpec, rng: np.random.Generator) -> np.ndarray:
    """kc per second over the day from the regime chain."""
    chain = np.array(spec.chain)
    regimes = np.empty(1440, dtype=int)
    r = spec.start_regime
    for m in range(1440):
        regimes[m] = r
        r = int(rng.choice(3, p=chain[r]))
    per_s = np.repeat(regimes, 60)
    n = per_s.size
    # broken: alternating sun and shade spells, edges of a few seconds
    spells = np.empty(n)
    i = 0
    sun = bool(rng.random() < 0.5)
    while i < n:
        length = int(rng.exponential(70.0 if sun else 45.0)) + 3
        level = rng.uniform(1.0, 1.25) if sun else rng.uniform(0.2, 0.45)
        spells[i : i + length] = level
        i += length
        sun = not sun
    broken = _smooth(spells, int(rng.integers(2, 7)))
    mean, spread = spec.overcast_kc
    overcast = np.clip(mean + _ou(rng, n, 600.0, spread) + _ou(rng, n, 30.0, 0.02), 0.05, 0.9)
    clear = 1.0 + _ou(rng, n, 60.0, 0.005)
    kc = np.choose(per_s, [clear, broken, overcast])
    return _smooth(kc, 5)  # regime changes are not instantaneous either


def base_load(spec: DaySpec, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Household consumption (W) per second: never the controlled loads."""
    n = t.size
    local_h = ((t - t[0]) / 3600.0 + (2.0 if spec.day.month in range(4, 11) else 1.0)) % 24
    load = 140.0 + _ou(rng, n, 20.0, 4.0)
    # fridge: 90 W, ~15 min on / 30 min off
    i = int(rng.integers(0, 1800))
    while i < n:
        on = int(rng.normal(900, 120))
        load[i : i + on] += 90.0
        i += on + int(rng.normal(1800, 240))
    # activity by local hour: mornings, lunch, evenings (more spread on a weekend)
    profile = np.array(
        [0.02] * 6
        + [0.5, 0.9, 0.6, 0.3, 0.3, 0.5, 0.8, 0.5, 0.3, 0.3, 0.4, 0.6]
        + [0.9, 1.0, 0.8, 0.6, 0.3, 0.1]
    )
    if spec.weekend:
        profile = np.maximum(profile, 0.3) * np.array([1.0] * 7 + [0.6] * 2 + [1.0] * 15)
    events = (
        ("kettle", 2000.0, (120, 240), 0.8),
        ("hob", 1500.0, (600, 1800), 0.3),
        ("oven", 2000.0, (1800, 3600), 0.08),
        ("washing", 2000.0, (5400, 5400), 0.05),
        ("dishwasher", 1800.0, (4800, 4800), 0.05),
        ("tv_it", 150.0, (1800, 7200), 0.4),
        ("misc", 600.0, (60, 900), 0.5),
    )
    for hour in range(24):
        for name, power, (lo, hi), rate in events:
            for _ in range(int(rng.poisson(rate * profile[hour]))):
                start = int(np.argmax(local_h >= hour)) + int(rng.integers(0, 3600))
                length = int(rng.integers(lo, hi + 1))
                _appliance(load, name, power, start, min(start + length, n), rng)
    lights = ((local_h > 6.5) & (local_h < 8)) | ((local_h > 18.5) & (local_h < 23))
    load += np.where(lights, 60.0, 0.0)
    return np.asarray(np.clip(load, 120.0, None))


def _appliance(
    load: np.ndarray, name: str, power: float, a: int, b: int, rng: np.random.Generator
) -> None:
    if a >= b:
        return
    if name in ("hob", "oven"):  # full power, then thermostat cycling
        heat = a + int((b - a) * rng.uniform(0.2, 0.4))
        load[a:heat] += power
        period = int(rng.integers(30, 120))
        duty = rng.uniform(0.35, 0.8)
        k = np.arange(b - heat)
        load[heat:b] += np.where((k % period) < duty * period, power, 0.0)
    elif name in ("washing", "dishwasher"):  # water heating, then motor/pump with spikes
        heat = a + int(rng.integers(900, 1500))
        load[a : min(heat, b)] += power
        k = np.arange(max(b - heat, 0))
        load[heat:b] += 150.0 + np.where((k % 90) < 20, 250.0, 0.0)
    else:
        load[a:b] += power


def generate(spec: DaySpec) -> str:
    """The trace's CSV text (1 s, one UTC day)."""
    rng = np.random.default_rng(seed_of(spec.name))
    start = int(datetime(spec.day.year, spec.day.month, spec.day.day, tzinfo=UTC).timestamp())
    t = np.arange(start, start + 86400, dtype=np.int64)
    pv = clear_sky_pv(t) * clear_sky_index(spec, rng)
    pv = np.clip(np.minimum(pv, AC_MAX_W), 0.0, None)
    base = base_load(spec, t, rng)
    lines = ["ts,pv_w,base_load_w"]
    stamps = t.astype("datetime64[s]").astype(str)
    lines += [f"{s}Z,{p:.1f},{b:.1f}" for s, p, b in zip(stamps, pv, base, strict=True)]
    return "\n".join(lines) + "\n"


def write(spec: DaySpec, folder: Path) -> Path:
    path = folder / f"{spec.name}.csv.gz"
    data = generate(spec).encode()
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(data)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TRACES, help="folder (default: shipped)")
    args = parser.parse_args(argv)
    for spec in HELD_OUT:
        print(write(spec, args.out))


if __name__ == "__main__":
    main()
