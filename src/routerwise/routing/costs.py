"""Per-model SLO cost functions of the routed fraction, and their convex envelopes.

For total rate ``Λ`` (req/s) and a curve ``ℓ`` (ms), the fleet-mean SLO charges model m
``h(x) = x · ℓ(Λ x)`` ms for a fraction ``x`` of requests, and requires ``Σ_m h_m(x_m) ≤ τ``.
``h`` is convex when ``ℓ``'s slopes do not decrease; otherwise the solvers work on its lower
convex envelope and say so (``convexified``).

We sample ``h`` densely enough that the chord (piecewise-linear) interpolation is within
``tol_ms`` of ``h`` (chords of a convex function lie above it, so they are conservative), take
the lower convex hull of the samples, and derive the "supply" function ``x(p)`` — the load a
model takes at marginal cost ``p`` — as the inverse of the envelope's derivative.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from routerwise.latency.curve import LatencyCurve
from routerwise.spec.core import FloatArray, readonly

MAX_SAMPLES_PER_SEGMENT = 4000


def lower_hull(xs: FloatArray, ys: FloatArray) -> np.ndarray:
    """Indices of the lower convex hull of points sorted by x (Andrew's monotone chain)."""
    # the usual case, a strictly convex polyline, in one vectorised test: the chain would pop
    # nothing when every consecutive triple turns left (the same cross product as below)
    cross = ((xs[1:-1] - xs[:-2]) * (ys[2:] - ys[:-2])
             - (ys[1:-1] - ys[:-2]) * (xs[2:] - xs[:-2]))
    if np.all(cross > 0):
        return np.arange(len(xs), dtype=np.intp)
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a])
            if cross <= 0:  # b lies on or above segment a–i
                hull.pop()
            else:
                break
        hull.append(i)
    return np.asarray(hull, dtype=np.intp)


def _sample_grid(curve: LatencyCurve, total_rps: float, cap_x: float, tol_ms: float) -> FloatArray:
    """Fractions x at which to sample h: breakpoints plus enough interior points per segment."""
    knots = np.concatenate(([0.0], curve.rates_ / total_rps))
    knots = np.unique(np.clip(knots, 0.0, cap_x))
    slopes = np.diff(curve.values_) / np.diff(curve.rates_)  # ms per req/s, per profile segment
    pieces = [knots[:1]]
    for lo, hi in itertools.pairwise(knots):
        mid_rate = 0.5 * (lo + hi) * total_rps
        seg = min(int(np.searchsorted(curve.rates_, mid_rate)) - 1, len(slopes) - 1)
        curvature = 2.0 * max(float(slopes[seg]), 0.0) * total_rps if seg >= 0 else 0.0
        # chord error of a quadratic with second derivative c over width d is c·d²/8
        n = 1 if curvature == 0 else math.ceil((hi - lo) * math.sqrt(curvature / (8 * tol_ms)))
        n = max(1, min(n, MAX_SAMPLES_PER_SEGMENT))
        pieces.append(np.linspace(lo, hi, n + 1)[1:])
    return np.concatenate(pieces)


@dataclass(frozen=True, slots=True)
class ModelCost:
    """Convexified SLO cost of one model at one total rate; fractions ``x`` in [0, cap_x]."""

    model: str
    total_rps: float
    cap_x: float  # highest routable fraction (profiled capacity / Λ)
    xs: FloatArray  # hull vertices (fractions)
    hs: FloatArray  # envelope values at the vertices (ms · fraction)
    supply_p: FloatArray  # supply knots: marginal cost (ms) …
    supply_x: FloatArray  # … and the fraction taken at that marginal cost
    convexified: bool
    curve: LatencyCurve

    @property
    def chord_slopes(self) -> FloatArray:
        return np.diff(self.hs) / np.diff(self.xs)

    def true_cost(self, x: FloatArray | float) -> FloatArray:
        """``h(x) = x · ℓ(Λx)`` on the real curve; ``inf`` past capacity."""
        xa = np.asarray(x, dtype=np.float64)
        rate = np.minimum(xa * self.total_rps, np.where(xa <= self.cap_x * (1 + 1e-9),
                                                         self.curve.capacity_rps_, np.inf))
        return np.where(xa > 0, xa * self.curve(rate), 0.0)

    def envelope_cost(self, x: FloatArray | float) -> FloatArray:
        return np.interp(np.asarray(x, dtype=np.float64), self.xs, self.hs)

    def supply(self, p: FloatArray | float) -> FloatArray:
        return np.interp(np.asarray(p, dtype=np.float64), self.supply_p, self.supply_x,
                         left=0.0, right=self.cap_x)


def build_cost(curve: LatencyCurve, model: str, total_rps: float, slo_ms: float) -> ModelCost:
    """Sample, convexify and invert the fleet-mean cost of ``model`` at rate ``total_rps``."""
    cap_x = min(curve.capacity_rps_ / total_rps, 1.0)
    tol_ms = 1e-7 * slo_ms
    xs = _sample_grid(curve, total_rps, cap_x, tol_ms)
    hs = xs * curve(xs * total_rps)
    hull = lower_hull(xs, hs)
    hx, hh = xs[hull], hs[hull]
    gap = hs - np.interp(xs, hx, hh)
    convexified = bool(gap.max(initial=0.0) > 1e-9 * max(slo_ms, float(hs.max(initial=0.0))))
    p, x = _supply_knots(curve, total_rps, hull, hx, hh)
    return ModelCost(model=model, total_rps=total_rps, cap_x=cap_x, xs=readonly(hx),
                     hs=readonly(hh), supply_p=readonly(p), supply_x=readonly(x),
                     convexified=convexified, curve=curve)


def derivative(curve: LatencyCurve, total_rps: float, x: FloatArray, side: str) -> FloatArray:
    """One-sided derivative of ``h(x) = x·ℓ(Λx)``: ``ℓ(λ) + λ·ℓ'(λ±)`` at ``λ = Λx``."""
    rate = np.asarray(x) * total_rps
    slopes = np.concatenate(([0.0], np.diff(curve.values_) / np.diff(curve.rates_), [0.0]))
    # a relative nudge decides which side of a profile point λ = Λx lies on despite rounding
    if side == "right":
        seg = np.searchsorted(curve.rates_, rate * (1 + 1e-10), side="right")
    else:
        seg = np.searchsorted(curve.rates_, rate * (1 - 1e-10), side="left")
    seg = np.minimum(seg, len(curve.rates_) - 1)  # past capacity: keep the last segment
    return np.interp(rate, curve.rates_, curve.values_) + rate * slopes[seg]


def _supply_knots(curve: LatencyCurve, total_rps: float, hull: np.ndarray, hx: FloatArray,
                  hh: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Knots (marginal cost, fraction) of the inverse of the envelope's derivative.

    Where the hull follows ``h`` (consecutive samples) the derivative is ``h'`` itself,
    one-sided at each end so jumps at profile points stay exact; across a hull bridge (a
    linear piece: a constant-latency stretch, or a non-convex dip) it is the bridge's slope.
    Knots may repeat a price (a vertical piece); the solver adds a small ramp before inverting.
    """
    g = np.diff(hh) / np.diff(hx)
    follows = np.diff(hull) == 1
    left = np.where(follows, derivative(curve, total_rps, hx[:-1], "right"), g)
    right = np.where(follows, derivative(curve, total_rps, hx[1:], "left"), g)
    p = np.column_stack([left, right]).ravel()
    x = np.column_stack([hx[:-1], hx[1:]]).ravel()
    return np.maximum.accumulate(p), x
