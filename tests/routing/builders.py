"""Shared builders for routing tests: curves and problems from plain arrays."""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.latency.curve import PiecewiseLinearCurve
from routerwise.profiles.table import ProfilePoints
from routerwise.routing.problem import RoutingProblem, SloScope
from routerwise.routing.reachable import lowest_fleet_ms
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


def irt_problem(num_prompts: int, num_models: int, seed: int = 0, *,
                binary: bool = False, slo_factor: float = 1.3) -> RoutingProblem:
    """Many-model instance: item-response scores (shared prompt difficulty, abilities rising
    with model size; 0/1 draws from them when ``binary``, so exact ties abound), M/M/1-shaped
    mean-TTFT curves at 10 rates up to 95% of capacity (bigger models slower and smaller),
    70% of total capacity offered and an SLO ``slo_factor`` above the lowest reachable."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1.5, num_prompts)
    ability = np.linspace(-0.5, 1.5, num_models)
    noise = rng.normal(0, 0.8, (num_prompts, num_models))
    scores = 1 / (1 + np.exp(-(ability[None, :] - difficulty[:, None] + noise)))
    if binary:
        scores = (rng.random(scores.shape) < scores).astype(float)
    curves = []
    for m in range(num_models):
        cap = 40.0 / (1 + m)
        rates = np.linspace(0.05, 0.95, 10) * cap
        curves.append(make_curve(f"model-{m}", rates, 30.0 * (1 + m) * (1 + rates / (cap - rates))))
    rate = 0.7 * sum(c.capacity_rps_ for c in curves)
    draft = make_problem(scores, curves, rate, 1e9)
    return make_problem(scores, curves, rate, slo_factor * lowest_fleet_ms(draft, rate))
