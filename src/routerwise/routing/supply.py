"""Supply functions: the load a model takes as a function of its price.

A supply is a continuous, non-decreasing, piecewise-linear map ``α ↦ x`` given by knots
(strictly increasing prices ``p``, non-decreasing fractions ``x``), 0 left of the first knot and
``x[-1]`` right of the last. Its integral ``ψ(α) = ∫_{-∞}^{α} supply`` is the convex conjugate
of the model's (convexified) cost; the dual solver minimises ``D(α) + Σ_m ψ_m(α_m)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

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


@dataclass(frozen=True, slots=True)
class CostKnots:
    """Supply knots (marginal cost, fraction) of K models padded to one K × L table."""

    p: FloatArray  # (K, L), each row padded with its last value
    x: FloatArray
    length: NDArray[np.intp]  # (K,) knots per row

    @classmethod
    def of(cls, knots: Sequence[tuple[FloatArray, FloatArray]]) -> CostKnots:
        """Pad the knots, dropping points that repeat their predecessor exactly (they repeat
        it at every factor and ramp too, so :meth:`SupplyStack.of_costs` would drop them)."""
        rows = []
        for p_raw, x_raw in knots:
            p, x = np.asarray(p_raw, dtype=np.float64), np.asarray(x_raw, dtype=np.float64)
            keep = np.concatenate(([True], (np.diff(p) != 0) | (np.diff(x) != 0)))
            rows.append((p[keep], x[keep]))
        width = max(len(p) for p, _ in rows)
        pad = [(np.pad(p, (0, width - len(p)), mode="edge"),
                np.pad(x, (0, width - len(x)), mode="edge")) for p, x in rows]
        length = np.array([len(p) for p, _ in rows], dtype=np.intp)
        return cls(p=readonly(np.array([p for p, _ in pad])),
                   x=readonly(np.array([x for _, x in pad])), length=length)


@dataclass(frozen=True, slots=True)
class SupplyStack:
    """K supplies evaluated together: knots padded to one (K × L) table, so a price vector's
    loads, slopes and conjugates cost a few array operations instead of 3·K Python calls."""

    p: FloatArray  # (K, L) knot prices, padded with +inf
    x: FloatArray  # (K, L) knot loads, padded with each row's cap
    integral: FloatArray  # (K, L), padded with each row's total
    last: NDArray[np.intp]  # (K,) index of each row's last knot

    @classmethod
    def of(cls, supplies: Sequence[Supply]) -> SupplyStack:
        k, width = len(supplies), max(len(s.p) for s in supplies)
        p = np.full((k, width), np.inf)
        x = np.empty((k, width))
        area = np.empty((k, width))
        for m, s in enumerate(supplies):
            n = len(s.p)
            p[m, :n] = s.p
            x[m, :n], x[m, n:] = s.x, s.x[-1]
            area[m, :n], area[m, n:] = s.integral, s.integral[-1]
        last = np.array([len(s.p) - 1 for s in supplies], dtype=np.intp)
        return cls(p=readonly(p), x=readonly(x), integral=readonly(area), last=last)

    @classmethod
    def of_costs(cls, knots: CostKnots, factor: float, ramp: float) -> SupplyStack:
        """``SupplyStack.of([Supply.of_cost(p, x, factor, ramp) for p, x in knots])``, with
        the same floating-point operations row by row, in a few array operations."""
        k, width = knots.p.shape
        cols = np.arange(width)
        p = knots.p * factor + ramp * knots.x
        x = knots.x
        valid = cols[None, :] < knots.length[:, None]
        keep = valid.copy()
        keep[:, 1:] &= (np.diff(p, axis=1) != 0) | (np.diff(x, axis=1) != 0)
        if not np.array_equal(keep, valid):  # rounding made two prices equal: drop one
            order = np.argsort(~keep, axis=1, kind="stable")  # kept knots first, in order
            p, x = np.take_along_axis(p, order, 1), np.take_along_axis(x, order, 1)
        n = keep.sum(axis=1)
        inside = cols[None, :] < n[:, None]
        pairs = inside[:, 1:]
        if np.any(n < 2) or np.any((np.diff(p, axis=1) < 0) & pairs) or np.any(
                (np.diff(x, axis=1) < 0) & pairs):
            raise ValueError("supply knots need >= 2 non-decreasing prices, monotone loads")
        scale = np.maximum(np.where(inside, np.abs(p), 0.0).max(axis=1), 1e-12)
        p = p + cols[None, :] * 1e-12 * scale[:, None]
        seg = np.where(pairs, np.diff(p, axis=1) * 0.5 * (x[:, :-1] + x[:, 1:]), 0.0)
        area = np.concatenate((np.zeros((k, 1)), np.cumsum(seg, axis=1)), axis=1)
        last = n - 1
        rows = np.arange(k)
        x = np.where(inside, x, x[rows, last][:, None])
        p = np.where(inside, p, np.inf)
        return cls(p=readonly(p), x=readonly(x), integral=readonly(area),
                   last=last.astype(np.intp))

    @property
    def caps(self) -> FloatArray:
        return self.x[:, -1]

    def evaluate(self, alpha: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Loads, slopes and conjugates ψ (each K,) at prices ``alpha``; agrees with
        :meth:`Supply.load`, :meth:`Supply.slope` and :meth:`Supply.conjugate` row by row."""
        rows = np.arange(len(alpha))
        i = (self.p <= alpha[:, None]).sum(axis=1) - 1  # last knot at or left of α
        inside = (i >= 0) & (i < self.last)
        j = np.clip(i, 0, self.last - 1)
        p0, p1 = self.p[rows, j], self.p[rows, np.minimum(j + 1, self.last)]
        x0, x1 = self.x[rows, j], self.x[rows, np.minimum(j + 1, self.last)]
        width = np.where(inside, p1 - p0, 1.0)
        slope = np.where(inside, (x1 - x0) / width, 0.0)
        load = np.where(i < 0, 0.0, np.where(inside, x0 + (alpha - p0) * slope, self.caps))
        p_last = self.p[rows, self.last]
        psi = np.where(
            i < 0, 0.0,
            np.where(inside, self.integral[rows, j] + (alpha - p0) * 0.5 * (x0 + load),
                     self.integral[:, -1] + (alpha - p_last) * self.caps))
        return load, slope, psi
