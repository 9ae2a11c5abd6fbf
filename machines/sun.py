"""The sun as the relay rule sees it (docs/regulation.md, "The sun-aware relay rule"): a
clear-sky curve for the site's panels, and the sky's state read from the PV production.

The clear-sky curve is a shape, not a forecast of watts: the rule only uses ratios (the
production now against the clear sky now, the clear sky ahead against now), so the plant's peak
power, its losses and the model's absolute error cancel out. The model is the textbook one:
Spencer's declination and equation of time, Kasten-Young air mass, Meinel's direct beam
(1353 W/m² × 0.7^AM^0.678), a diffuse share of 10 %, isotropic transposition onto the panels.
The held-out trace generator (pvsim/tracegen.py) has its own copy of the solar position, on
numpy arrays and held byte for byte by its test; its irradiance model (Haurwitz) differs on
purpose, so the rule is not judged on days drawn from its own model.
"""

from __future__ import annotations

import math

from machines.model import SkyState
from machines.value import value

DIFFUSE_SHARE = 0.1  # clear-sky diffuse irradiance as a share of the direct beam
ALBEDO = 0.2
MIN_CLEAR_SKY_W = 100.0  # below this clear-sky irradiance (W/m²) the sky is not read
AHEAD_POINTS = 7  # Simpson's rule over the horizon: the curve is smooth at this scale


@value
class Plant:
    """Where the panels are and how they face (`site:` in the config)."""

    latitude: float  # degrees, north positive
    longitude: float  # degrees, east positive
    tilt: float = 35.0  # degrees from horizontal
    azimuth: float = 180.0  # compass: 0 north, 90 east, 180 south, 270 west


def clear_sky(plant: Plant, t: float) -> float:
    """Clear-sky irradiance on the panels at epoch second `t` (W/m²; 0 at night)."""
    day = t / 86400.0
    doy = (day % 365.2425) + 1  # close enough to the calendar's day of the year for the sun
    hours = (t % 86400.0) / 3600.0
    g = 2 * math.pi / 365 * (doy - 1 + (hours - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
    )
    eot = 229.18 * (
        0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g) - 0.014615 * math.cos(2 * g)
    )
    solar_min = hours * 60 + eot + 4 * plant.longitude
    ha = math.radians(solar_min / 4 - 180)
    lat = math.radians(plant.latitude)
    cos_z = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)
    if cos_z <= 0.01:
        return 0.0
    zenith = math.degrees(math.acos(cos_z))
    air_mass = 1.0 / (cos_z + 0.50572 * (96.07995 - zenith) ** -1.6364)
    dni = 1353.0 * math.pow(0.7, math.pow(air_mass, 0.678))
    dhi = DIFFUSE_SHARE * dni
    ghi = dni * cos_z + dhi
    sin_z = math.sqrt(1 - cos_z * cos_z)
    sun_az = math.atan2(math.sin(ha), math.cos(ha) * math.sin(lat) - math.tan(decl) * math.cos(lat))
    panel_az = math.radians(plant.azimuth - 180.0)  # from the south, west positive, as sun_az
    tilt = math.radians(plant.tilt)
    cos_aoi = cos_z * math.cos(tilt) + sin_z * math.sin(tilt) * math.cos(sun_az - panel_az)
    return (
        dni * max(cos_aoi, 0.0)
        + dhi * (1 + math.cos(tilt)) / 2
        + ALBEDO * ghi * (1 - math.cos(tilt)) / 2
    )


def clear_sky_ahead(plant: Plant, t: float, horizon_s: float) -> float:
    """The clear-sky irradiance's mean over [t, t + horizon_s] (W/m²), by Simpson's rule."""
    n = AHEAD_POINTS - 1
    h = horizon_s / n
    total = 0.0
    for k in range(AHEAD_POINTS):
        weight = 1 if k in (0, n) else (4 if k % 2 else 2)
        total += weight * clear_sky(plant, t + k * h)
    return total * h / 3 / horizon_s if horizon_s > 0 else clear_sky(plant, t)


def update_sky(
    sky: SkyState | None, pv_w: float, clear_w: float, at: float, tau_s: float
) -> SkyState | None:
    """The sky's state after a PV sample taken at `at`: the production per unit of clear sky
    (`ratio`, W per W/m²: the plant's size times the clear-sky index), its slow mean and the
    spread around it, both over `tau_s`. None while the sun is too low to tell."""
    if clear_w < MIN_CLEAR_SKY_W:
        return None  # dawn and dusk: the ratio is noise
    ratio = pv_w / clear_w
    if sky is None:
        return SkyState(mean=ratio, var=0.0, at=at)
    if at <= sky.at:
        return sky
    a = 1.0 - math.exp(-(at - sky.at) / tau_s)
    dev = ratio - sky.mean
    mean = sky.mean + a * dev
    var = (1 - a) * (sky.var + a * dev * dev)  # the exponentially weighted variance
    return SkyState(mean=mean, var=var, at=at)


def expected_change_w(sky: SkyState, pv_w: float, ahead_w: float, caution: float) -> float:
    """How much the PV production is expected to change over the horizon (W, + rising): the sky
    reverts to its recent mean, less `caution` × its spread, under the clear-sky curve ahead."""
    ratio = max(sky.mean - caution * math.sqrt(sky.var), 0.0)
    return ratio * ahead_w - pv_w
