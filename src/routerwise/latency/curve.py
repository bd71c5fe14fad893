"""Monotone latency curves: rate (requests/s) → latency statistic (ms).

Estimator convention (docs/architecture.md §6.11): ``fit`` returns ``self``; learned state
ends in ``_``.
Curves are non-decreasing by construction: points that decrease with rate (measurement
noise) are pooled by isotonic regression and every adjusted point is logged by name —
never silently. A curve is ``+inf`` past its highest profiled rate (no data, no promise).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
from numpy.typing import ArrayLike

from routerwise.errors import InputError
from routerwise.profiles.table import ProfilePoints
from routerwise.spec.core import FloatArray, readonly

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One profile point moved by the monotone fit."""

    model: str
    rate_rps: float
    measured_ms: float
    fitted_ms: float
    row: int | None

    def describe(self) -> str:
        where = f" (row {self.row})" if self.row is not None else ""
        return (
            f"model {self.model!r} rate_rps={self.rate_rps:g}{where}: "
            f"{self.measured_ms:.4g} ms -> {self.fitted_ms:.4g} ms"
        )


def isotonic_increasing(values: FloatArray) -> FloatArray:
    """Pool-adjacent-violators: the closest non-decreasing sequence in least squares."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values.tolist():
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    return np.concatenate([np.full(int(c), s / c) for s, c in blocks])


class LatencyCurve(Protocol):
    """What the router needs from a latency model."""

    rates_: FloatArray
    values_: FloatArray
    capacity_rps_: float
    adjustments_: tuple[Adjustment, ...]

    def fit(self, points: ProfilePoints) -> Self: ...

    def __call__(self, rate_rps: ArrayLike) -> FloatArray: ...


class PiecewiseLinearCurve:
    """The paper's model: monotone piecewise-linear interpolation of profile points.

    Below the smallest profiled rate the curve equals the first point's value; above the
    largest it is ``+inf`` (infeasible).
    """

    rates_: FloatArray
    values_: FloatArray
    capacity_rps_: float
    adjustments_: tuple[Adjustment, ...]
    model_: str

    def fit(self, points: ProfilePoints) -> Self:
        values = np.asarray(points.values_ms, dtype=np.float64)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise InputError(f"{points.source}: model {points.model!r}: latencies must be >= 0")
        fitted = isotonic_increasing(values)
        moved = np.flatnonzero(np.abs(fitted - values) > 1e-12 * np.maximum(1.0, values))
        self.adjustments_ = tuple(
            Adjustment(
                model=points.model,
                rate_rps=float(points.rates_rps[i]),
                measured_ms=float(values[i]),
                fitted_ms=float(fitted[i]),
                row=points.source_rows[i] if i < len(points.source_rows) else None,
            )
            for i in moved
        )
        for adj in self.adjustments_:
            log.warning("%s: latency decreases with rate; made monotone: %s",
                        points.source, adj.describe())
        self.rates_ = readonly(points.rates_rps)
        self.values_ = readonly(fitted)
        self.capacity_rps_ = float(self.rates_[-1])
        self.model_ = points.model
        return self

    def __call__(self, rate_rps: ArrayLike) -> FloatArray:
        rate = np.asarray(rate_rps, dtype=np.float64)
        out = np.interp(rate, self.rates_, self.values_)
        return np.where(rate > self.capacity_rps_ * (1 + 1e-12), np.inf, out)


#: Explicit registry of latency models (docs/architecture.md §6.5); no import-time registration.
LATENCY_MODELS: Mapping[str, Callable[[], LatencyCurve]] = {
    "piecewise-linear": PiecewiseLinearCurve,
}


def fit_curve(points: ProfilePoints, kind: str = "piecewise-linear") -> LatencyCurve:
    """Fit the latency model named ``kind`` to ``points``."""
    try:
        factory = LATENCY_MODELS[kind]
    except KeyError:
        known = sorted(LATENCY_MODELS)
        raise InputError(f"unknown latency model {kind!r}; known: {known}") from None
    return factory().fit(points)


def capped_at_latency(curve: LatencyCurve, max_ms: float) -> LatencyCurve | None:
    """The curve cut where it reaches ``max_ms`` (infeasible beyond); None if it starts above.

    A per-model latency bound ``ℓ_m(λ) ≤ max_ms`` is then just a smaller capacity.
    """
    rates, values = curve.rates_, curve.values_
    if values[0] > max_ms:
        return None
    if values[-1] <= max_ms:
        return curve
    j = int(np.flatnonzero(values <= max_ms)[-1])
    frac = (max_ms - values[j]) / (values[j + 1] - values[j])
    cut = rates[j] + frac * (rates[j + 1] - rates[j])
    new_rates = np.append(rates[: j + 1], cut) if cut > rates[j] else rates[: j + 1]
    new_values = np.append(values[: j + 1], max_ms) if cut > rates[j] else values[: j + 1]
    if len(new_rates) < 2:  # one point left: keep a flat sliver up to it
        new_rates = np.array([rates[0] * 0.5, rates[0]])
        new_values = np.array([values[0], values[0]])
    points = ProfilePoints(getattr(curve, "model_", "model"), readonly(new_rates),
                           readonly(new_values), "ttft_mean_ms", (),
                           f"<curve capped at {max_ms:g} ms>")
    return PiecewiseLinearCurve().fit(points)
