"""The regulator's tuning, by concern (docs/regulation.md): one frozen dataclass per group,
the same names as the `regulation:` config keys."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from machines.value import value


@value
class MarginParams:
    """How far below the balance to aim. The margin and the dead band adapt (docs/regulation.md):
    each is the larger of a gain × the observed noise and a share of the surplus, kept within
    [*_min_w, its maximum]. A quiet meter and a small surplus (a grey day) get a fine
    regulation; a noisy one or a large surplus the old margin."""

    balance_band_w: float = 50.0  # the band's maximum
    margin_w: float = 100.0  # the margin's maximum
    band_min_w: float = 8.0
    margin_min_w: float = 4.0
    noise_band_gain: float = 1.0
    noise_margin_gain: float = 0.5
    surplus_band_share: float = 0.025
    surplus_margin_share: float = 0.015
    margin_start_w: float = 20.0  # before any noise was observed
    noise_start_w: float = 40.0
    noise_share: float = 0.1  # the noise mean moves by this share of a surprise per sample ...
    noise_clip: float = 3.0  # ... a surprise counted up to this × the mean (+ band_min_w): a
    # kettle's step is one event, not noise; many surprises in a row raise the mean fast


@value
class DampingParams:
    """How fast to move: wait for the command to settle, halve a rise that overshot, move by a
    share of the error inside the band."""

    settle_s: float = 1.5
    min_rise_gain: float = 0.125
    band_gain: float = 0.3  # inside the band, move by this share of the error (0: hold)
    band_min_step_w: float = 2.0  # ... when that is at least this much
    creep_w: float = 5.0  # exporting, but S ≤ Q hides how much: rise by this much


@value
class LinkyParams:
    """A Linky gives S and Q, not P: how Q is found, and how to step by the sign of P near the
    balance where its size is hidden."""

    q_id_min_step_w: float = 30.0  # a step this large identifies Q from S before and after it
    q_id_ttl_s: float = 90.0  # ... and that Q is trusted this long
    q_id_import_tol_var: float = 3.0  # how far an identified Q may be above the truth ...
    q_timed_import_tol_var: float = 6.0  # ... and a timed one (0: assume the worst, P = S)
    q_id_tolerance: float = 0.3  # ... if within this share (or 15 var) of the ERQT estimate
    sign_step_w: float = 3.0  # near the balance a Linky gives the sign: step by this (0: off)
    sign_quantum_va: float = 1.0  # ... allowing for this error of S
    sign_resolve_va: float = 3.0  # ... while |S| is within Q + its errors + this
    q_cross_max_rise_w: float = 10.0  # a crossing on a rise this small gives Q ...
    q_cross_ttl_s: float = 60.0  # ... trusted this long
    sign_hold_s: float = 12.0  # ... and once back from an import, rise no further this long


@value
class RelayParams:
    """When an all-or-nothing load starts and stops."""

    relay_on_delay_s: float = 60.0  # budget must cover a relay this long before it starts
    relay_stop_deficit_wh: float = 7.5  # ... and stops once it ran this short of it
    relay_start_headroom_w: float = 300.0  # budget beyond nominal needed to start a relay
    relay_stop_tolerance_w: float = 0.0  # shortfall a running relay may have without counting


@value
class SunParams:
    """The sun-aware relay rule (machines/sun.py): with a PV reading and a site, a relay starts
    on the surplus expected over its bet, not the surplus now."""

    sun_horizon_s: float = 600.0  # how far ahead a start is judged
    sun_tau_s: float = 600.0  # the sky's mean and spread are over this long
    sun_caution: float = 0.0  # expect the sky's mean less this many standard deviations
    sun_start_headroom_w: float = 100.0  # expected budget beyond nominal needed to start
    sun_on_delay_s: float = 30.0  # ... this long
    sun_stop_deficit_wh: float = 30.0  # a running relay short now stops after this deficit
    sun_stop_short_wh: float = 7.5  # ... or this one when the sky ahead is short too


@value
class LegacyParams:
    """The seed's `evaluate()`."""

    legacy_threshold_w: float = 50.0
    legacy_min_dimmer_w: float = 50.0


GROUPS: dict[str, Any] = {  # group name -> its frozen dataclass
    "margin": MarginParams,
    "damping": DampingParams,
    "linky": LinkyParams,
    "relay": RelayParams,
    "sun": SunParams,
    "legacy": LegacyParams,
}


@value
class PolicyParams:
    """Tuning of the regulator, by concern; defaults are the shipped ones (tuned on the traces).
    Each tunable has one name, the same in every group and in the `regulation:` config."""

    name: str = "default"
    margin: MarginParams = MarginParams()
    damping: DampingParams = DampingParams()
    linky: LinkyParams = LinkyParams()
    relay: RelayParams = RelayParams()
    sun: SunParams = SunParams()
    legacy: LegacyParams = LegacyParams()

    @classmethod
    def from_flat(cls, name: str = "default", **values: float) -> PolicyParams:
        """The params with `values` (flat names, as in the config) put in their groups; a name
        no group has is a TypeError, as a misspelt keyword is."""
        unknown = set(values) - set(flat_names())
        if unknown:
            raise TypeError(f"unknown policy parameter(s): {', '.join(sorted(unknown))}")
        groups = {
            group: kind(**{f.name: values[f.name] for f in fields(kind) if f.name in values})
            for group, kind in GROUPS.items()
        }
        return cls(name, **groups)


def flat_names() -> list[str]:
    """Every tunable's name, group by group."""
    return [f.name for kind in GROUPS.values() for f in fields(kind)]
