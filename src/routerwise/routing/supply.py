"""Supply functions: the load a model takes as a function of its price.

A supply is a continuous, non-decreasing, piecewise-linear map ``α ↦ x`` given by knots
(strictly increasing prices ``p``, non-decreasing fractions ``x``), 0 left of the first knot and
``x[-1]`` right of the last. Its integral ``ψ(α) = ∫_{-∞}^{α} supply`` is the convex conjugate
of the model's (convexified) cost; the dual solver minimises ``D(α) + Σ_m ψ_m(α_m)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerwise.spec.core import FloatArray, readonly


@dataclass(frozen=True, slots=True)
class Supply:
    """Piecewise-linear supply ``x(α)`` with its cumulative integral at the knots."""

    p: FloatArray
    x: FloatArray
    integral: FloatArray  # ∫_{p[0]}^{p[i]} x(α) dα

    @classmethod
    def from_knots(cls, p: FloatArray, x: FloatArray) -> Supply:
        """Supply through knots (``p`` strictly increasing after dropping repeated points)."""
        p = np.asarray(p, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        keep = np.concatenate(([True], (np.diff(p) != 0) | (np.diff(x) != 0)))
        p, x = p[keep], x[keep]
        if len(p) < 2 or np.any(np.diff(p) < 0) or np.any(np.diff(x) < 0):
            raise ValueError("supply knots need >= 2 non-decreasing prices, monotone loads")
        # a vertical piece whose ramp vanished in rounding: separate its knots by a hair so
        # the supply stays single-valued (a shift of ~1e-12 relative in price)
        p = p + np.arange(len(p)) * 1e-12 * max(float(np.abs(p).max()), 1e-12)
        area = np.concatenate(([0.0], np.cumsum(np.diff(p) * 0.5 * (x[:-1] + x[1:]))))
        return cls(p=readonly(p), x=readonly(x), integral=readonly(area))

    @classmethod
    def of_cost(cls, p: FloatArray, x: FloatArray, factor: float, ramp: float) -> Supply:
        """The supply of the cost ``factor · h(x) + ramp · x² / 2`` where ``(p, x)`` are the
        (non-decreasing, possibly vertical) knots of the inverse of ``h'``.

        The ramp caps the supply's slope at ``1 / ramp`` so no price ↦ load step is sharper
        than the demand's softmax smoothing, at a cost of at most ``ramp / 2`` in quality.
        """
        return cls.from_knots(np.asarray(p) * factor + ramp * np.asarray(x), x)

    @property
    def cap(self) -> float:
        return float(self.x[-1])

    def load(self, alpha: float) -> float:
        return float(np.interp(alpha, self.p, self.x, left=0.0, right=self.x[-1]))

    def slope(self, alpha: float) -> float:
        i = int(np.searchsorted(self.p, alpha, side="right")) - 1
        if i < 0 or i >= len(self.p) - 1:
            return 0.0
        return float((self.x[i + 1] - self.x[i]) / (self.p[i + 1] - self.p[i]))

    def conjugate(self, alpha: float) -> float:
        """ψ(α), the integral of the supply up to ``α``."""
        if alpha <= self.p[0]:
            return 0.0
        if alpha >= self.p[-1]:
            return float(self.integral[-1] + (alpha - self.p[-1]) * self.x[-1])
        i = int(np.searchsorted(self.p, alpha, side="right")) - 1
        return float(self.integral[i] + (alpha - self.p[i]) * 0.5 * (self.x[i] + self.load(alpha)))


def capacity_supply(cap: float, ramp: float) -> Supply:
    """Supply of a hard capacity ``x ≤ cap`` with zero cost below it, smoothed over ``ramp``."""
    return Supply.from_knots(np.array([0.0, ramp]), np.array([0.0, max(cap, 0.0)]))
