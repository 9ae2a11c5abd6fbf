"""A Linky gives S and Q, not P (docs/meter.md): which Q to take P from, how far to trust it,
and how to step by the sign of P near the balance, where its size is hidden."""

from __future__ import annotations

import math
from dataclasses import replace

from machines.meter import active_power_bounded
from machines.model import MeterSnapshot, PolicyMemo
from machines.policy.params import LinkyParams


def identify_q(snapshot: MeterSnapshot, params: LinkyParams, memo: PolicyMemo) -> PolicyMemo:
    """Q from the last step of the loads: with S₁ before and S₂ after a known change ΔL of the
    active power, P₁ = (S₂² − S₁² − ΔL²) / 2ΔL and Q² = S₁² − P₁². Near the balance, where
    P = √(S² − Q²) is most sensitive to Q, the other flows' drift hardly matters (it enters
    as P₂·drift/ΔL). Kept only when it agrees with the ERQT estimate."""
    s2, s1, step = snapshot.apparent_va, memo.s_prev_va, memo.step_prev_w
    if s2 is None or s1 is None or abs(step) < params.q_id_min_step_w:
        if s2 is None and s1 is not None:
            return replace(memo, s_prev_va=None)  # no S now: the last one is no reference
        return memo
    p1 = (s2 * s2 - s1 * s1 - step * step) / (2.0 * step)
    q2 = s1 * s1 - p1 * p1
    ref = snapshot.reactive_timed_var
    if ref is None:
        ref = snapshot.reactive_var
    if q2 < 0 or ref is None:
        return memo
    q = math.sqrt(q2)
    if abs(q - ref) > max(params.q_id_tolerance * ref, 15.0):
        return memo
    return replace(memo, q_id_var=q, q_id_at=snapshot.sampled_at)


def trusted_q(
    snapshot: MeterSnapshot, memo: PolicyMemo, params: LinkyParams, now: float
) -> tuple[float | None, float | None]:
    """The Q to take P from, and how far we trust it (var; None: not at all): from a crossing
    when fresh, else identified from our own steps when fresh, else timed on the ERQT steps,
    else the seed's."""
    q = snapshot.reactive_timed_var
    tol: float | None = params.q_timed_import_tol_var
    if q is None:
        q, tol = snapshot.reactive_var, None
    for value, at, ttl, trust in (
        (memo.q_id_var, memo.q_id_at, params.q_id_ttl_s, params.q_id_import_tol_var),
        (memo.q_cross_var, memo.q_cross_at, params.q_cross_ttl_s, params.sign_quantum_va),
    ):
        if value is not None and at is not None and now - at <= ttl:
            q, tol = value, trust
    return q, tol


def grid_estimate(snapshot: MeterSnapshot, q: float | None, tol: float | None) -> float:
    """Active power to regulate on: for a Linky, bounded by what S and Q (trusted to `tol`)
    allow."""
    s = snapshot.apparent_va
    if tol and s is not None and q is not None and 0 < s < q:
        # An import whose S hides under Q: with a Q we trust to `tol`, the true Q ≥ S − tol,
        # so P ≤ √(2·S·tol). The seed's Q may lag a reactive step: then assume P = S.
        return min(s, math.sqrt(2.0 * s * tol))
    if snapshot.apparent_va is not None and q is not None:
        return active_power_bounded(snapshot.apparent_va, q)
    assert snapshot.grid_w is not None
    return snapshot.grid_w


def near_balance(
    snapshot: MeterSnapshot, q: float | None, tol: float | None, params: LinkyParams
) -> bool:
    """Near the balance a Linky shows the sign of P, hardly its size: S ≈ Q, so 1 VA of S or
    1 var of Q is tens of watts of P."""
    s = snapshot.apparent_va
    if s is None or q is None or tol is None or params.sign_step_w <= 0:
        return False
    return abs(s) < q + tol + params.sign_quantum_va + params.sign_resolve_va


def sign_step(
    snapshot: MeterSnapshot,
    grid: float,
    q: float,
    tol: float,
    memo: PolicyMemo,
    params: LinkyParams,
    now: float,
    margin: float,
) -> float | None:
    """Near the balance, step by the sign: rise by what P surely exceeds (at least
    `sign_step_w`); after a rise that crossed into an import, go back by that rise (the import
    is at most that) and the margin. None: regulate on the estimate."""
    s = snapshot.apparent_va
    assert s is not None
    if s < 0:  # an export: at least what S minus its error exceeds Q plus its error
        sure = math.sqrt(max((abs(s) - params.sign_quantum_va) ** 2 - (q + tol) ** 2, 0.0))
        crossed = memo.sign_crossed_at
        if crossed is not None and now - crossed < params.sign_hold_s:
            return sure  # just back from an import: stay a while
        return max(sure, params.sign_step_w)
    prev, rise = memo.s_prev_va, memo.step_prev_w
    if prev is not None and prev < 0 and rise > 0:  # crossed on our own rise
        return -(min(rise, max(grid, 0.0)) + max(params.sign_step_w, margin))
    return None


def crossing(
    snapshot: MeterSnapshot,
    memo: PolicyMemo,
    params: LinkyParams,
    now: float,
    sign_step: float | None,
) -> PolicyMemo:
    """A small rise of ours just took an export into an import: P ≈ 0 at both samples, so
    both |S| are Q to within the meter's quantum, a finer Q than ERQT or our steps give."""
    if sign_step is None or sign_step >= 0:
        return memo
    s, prev = snapshot.apparent_va, memo.s_prev_va
    if s is None or prev is None or memo.step_prev_w > params.q_cross_max_rise_w:
        return replace(memo, sign_crossed_at=now)
    return replace(memo, sign_crossed_at=now, q_cross_var=(s - prev) / 2.0, q_cross_at=now)
