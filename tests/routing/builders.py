"""Shared builders for routing tests: curves and problems from plain arrays."""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.latency.curve import PiecewiseLinearCurve
from routerwise.profiles.table import ProfilePoints
from routerwise.routing.problem import RoutingProblem, SloScope
from routerwise.spec.core import readonly


def make_curve(name: str, rates: list[float] | np.ndarray, values: list[float] | np.ndarray
               ) -> PiecewiseLinearCurve:
    pts = ProfilePoints(name, readonly(rates), readonly(values), "ttft_mean_ms",
                        tuple(range(2, 2 + len(rates))), "<test>")
    return PiecewiseLinearCurve().fit(pts)


def make_problem(scores: np.ndarray, curves: list[PiecewiseLinearCurve], rate: float,
                 slo: float, scope: SloScope = "fleet") -> RoutingProblem:
    models = tuple(c.model_ for c in curves)
    return RoutingProblem(models, readonly(scores), tuple(curves), rate, slo, scope)


@pytest.fixture
def three_model_problem() -> RoutingProblem:
    rng = np.random.default_rng(7)
    scores = np.clip(rng.random((400, 3)) * np.array([0.6, 0.8, 1.0]), 0, 1)
    curves = [
        make_curve("small", [2, 10, 20, 30], [40, 45, 60, 120]),
        make_curve("medium", [1, 5, 10, 15], [80, 90, 120, 200]),
        make_curve("large", [1, 3, 6, 9], [150, 170, 220, 400]),
    ]
    return make_problem(scores, curves, 20.0, 90.0)
