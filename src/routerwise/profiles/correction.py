"""Correcting estimated profiles with measured ones: one time-scale factor per model and GPU.

Where a model has a measured profile for one instance shape and estimates for the others,
the estimator's error on the measured shape says how far off its neighbours' estimates
are too. The correction is a **time scale** ``f``: the real engine runs every step ``f``
times slower than the estimate (``f`` < 1: faster), so a latency curve ``ℓ(λ)`` becomes

    ℓ_f(λ) = f · ℓ(f · λ)

(a queue whose service times all scale by ``f`` has its waiting times scaled by ``f`` at
the rate that keeps its utilisation: λ/f; its capacity is divided by ``f``). At low load it
is a plain multiplicative factor on TTFT; near saturation it also moves the capacity, which
a factor on TTFT alone could not. ``f`` is fitted by least squares on log TTFT over the
measured points, comparing each with the estimate of the *same* shape at the scaled rate
(points whose scaled rate lies past the estimate's last point are not comparable; ``f`` is
limited so that none does). Several measured shapes of one model and GPU share one ``f``.

Limits (stated in the plan's notes): one factor for prefill and decode alike, fitted on
mean TTFT only, and on the token lengths each side used (the measurement's prompts, the
plan's workload for the estimate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routerwise.profiles.table import ProfilePoints
from routerwise.spec.core import FloatArray, readonly

#: Factors searched (the grid is dense in log f: steps of 0.1%).
MIN_FACTOR, MAX_FACTOR = 1e-3, 1e4  # 1e4: a CPU engine against a GPU estimate
_GRID_STEP = 1e-3


@dataclass(frozen=True, slots=True)
class TimeScale:
    """A fitted time-scale factor and how well it explains the measured points."""

    factor: float
    points: int  # measured points used
    rms_log_error_before: float  # at f = 1 (NaN when f = 1 is not comparable)
    rms_log_error_after: float

    def describe(self) -> str:
        before = "" if math.isnan(self.rms_log_error_before) else \
            f"{_pct(self.rms_log_error_before)} → "
        return (f"×{self.factor:.3g} (fitted on {self.points} measured point(s); typical "
                f"TTFT error {before}{_pct(self.rms_log_error_after)})")


def _pct(rms_log: float) -> str:
    return f"{math.expm1(rms_log) * 100:.0f}%"


def _residuals(pairs: Sequence[tuple[ProfilePoints, ProfilePoints]], log_f: FloatArray
               ) -> FloatArray:
    """Sum of squared log errors for each candidate ``log f`` (inf where not comparable)."""
    total = np.zeros_like(log_f)
    f = np.exp(log_f)
    for measured, estimated in pairs:
        rates = np.asarray(estimated.rates_rps, dtype=np.float64)
        values = np.asarray(estimated.values_ms, dtype=np.float64)
        scaled = np.outer(f, np.asarray(measured.rates_rps, dtype=np.float64))
        est = np.interp(scaled, rates, values)  # flat below the first estimated rate
        est = np.where(scaled <= rates[-1] * (1 + 1e-9), est, np.nan)
        model = log_f[:, None] + np.log(np.maximum(est, 1e-12))
        err = np.log(np.asarray(measured.values_ms, dtype=np.float64))[None, :] - model
        total += np.where(np.isnan(err), np.inf, err**2).sum(axis=1)
    return total


def fit_time_scale(pairs: Sequence[tuple[ProfilePoints, ProfilePoints]]) -> TimeScale | None:
    """The factor ``f`` that best maps the estimates onto the measurements of the same shapes
    (``(measured, estimated)`` pairs); None when no factor makes them comparable."""
    pairs = [(m, e) for m, e in pairs if len(m.rates_rps) and len(e.rates_rps)]
    if not pairs or any(np.any(np.asarray(m.values_ms) <= 0) for m, _ in pairs):
        return None
    grid = np.arange(math.log(MIN_FACTOR), math.log(MAX_FACTOR) + _GRID_STEP, _GRID_STEP)
    sse = _residuals(pairs, grid)
    best = int(np.argmin(sse))
    if not math.isfinite(float(sse[best])):
        return None
    n = sum(len(m.rates_rps) for m, _ in pairs)
    before = float(_residuals(pairs, np.zeros(1))[0])
    return TimeScale(
        factor=float(math.exp(grid[best])), points=n,
        rms_log_error_before=math.sqrt(before / n) if math.isfinite(before) else math.nan,
        rms_log_error_after=math.sqrt(float(sse[best]) / n))


def apply_time_scale(points: ProfilePoints, factor: float) -> ProfilePoints:
    """``ℓ_f(λ) = f · ℓ(f λ)``: rates divided by ``f``, latencies multiplied by it."""
    return ProfilePoints(points.model,
                         readonly(np.asarray(points.rates_rps, dtype=np.float64) / factor),
                         readonly(np.asarray(points.values_ms, dtype=np.float64) * factor),
                         points.stat, points.source_rows,
                         f"{points.source} (time scale ×{factor:.3g})")
