"""The screened softmax demand and the stacked supplies equal their plain counterparts.

The dual solver's speed at many models rests on two shortcuts that must not change a result:
screening (only models near a prompt's best are evaluated, re-screened as prices move) and
evaluating all supplies as one padded table.
"""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.routing.costs import build_cost, lower_hull
from routerwise.routing.demand import Demand, transposed
from routerwise.routing.supply import CostKnots, Supply, SupplyStack
from tests.routing.builders import irt_problem, make_curve


def _scores(kind: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "continuous":
        return rng.random((n, k))
    if kind == "graded":  # RouterBench-like quarter grades: many exact ties
        return rng.integers(0, 5, (n, k)) / 4.0
    if kind == "binary":  # rows of many tied models
        return (rng.random((n, k)) < 0.7).astype(float)
    # most prompts far ahead on one model: a move leaves only the others' screens stale
    scores = rng.random((n, k)) * 0.5
    clear = rng.random(n) < 0.8
    scores[clear, rng.integers(0, k, int(clear.sum()))] += 1.0
    return scores


@pytest.mark.parametrize("kind", ["continuous", "graded", "binary", "separated"])
@pytest.mark.parametrize("k", [3, 24, 64])
def test_screened_demand_equals_the_full_softmax(kind: str, k: int) -> None:
    rng = np.random.default_rng(k)
    t = 1e-3
    scores = _scores(kind, 3000, k, rng)
    screened = Demand(transposed(scores), t, screen=True)
    full = Demand(transposed(scores), t, screen=False)
    alpha = rng.random(k) * (1e-3 if kind in ("graded", "binary") else 0.1)
    for step in range(40):  # small moves (a few prompts go stale), every 8th a jump (most do)
        alpha = alpha + rng.normal(0, 0.05 if step % 8 == 7 else 0.002, k)
        v1, d1, h1 = screened.evaluate(alpha)
        v2, d2, h2 = full.evaluate(alpha)
        assert v1 == pytest.approx(v2, rel=1e-12, abs=1e-12)
        assert np.abs(d1 - d2).max() < 1e-12
        assert np.abs(h1 - h2).max() <= 1e-9 * max(np.abs(h2).max(), 1.0)
    if kind in ("continuous", "separated") and k > 3:
        assert screened.screens > 1  # the moves did force re-screens …
    if kind == "separated" and k > 3:  # … of only the prompts near a tie
        assert screened.screened_prompts < screened.screens * len(scores)
    s1, c1, q1 = screened.routing(alpha)
    s2, _, _ = full.routing(alpha)
    assert np.abs(s1 - s2).max() < 1e-12
    assert np.allclose(s1.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(c1, s1.sum(axis=0), atol=1e-9)
    assert q1 == pytest.approx(float((scores * s1).sum()), rel=1e-12)


def test_screening_keeps_few_candidates_per_prompt() -> None:
    problem = irt_problem(20_000, 64, seed=1)
    demand = Demand(transposed(problem.scores), 1e-4)
    demand.evaluate(np.linspace(0.0, 0.5, 64))
    # the point of screening: a few entries per prompt, not 64
    assert len(demand.entry_col) < 4 * problem.num_prompts


def _supply_knots() -> list[tuple[np.ndarray, np.ndarray]]:
    problem = irt_problem(50, 6, seed=4)
    costs = [build_cost(c, m, problem.total_rps, problem.slo_ms)
             for m, c in zip(problem.models, problem.curves, strict=True)]
    odd = [make_curve("flat", [1, 5, 10, 15], [80, 80, 80, 200]),  # a vertical supply piece
           make_curve("dip", [1, 2, 3, 4], [10, 30, 31, 40])]  # non-convex: convexified
    costs += [build_cost(c, c.model_, 10.0, 100.0) for c in odd]
    return [(c.supply_p, c.supply_x) for c in costs]


@pytest.mark.parametrize("beta", [1e-7, 1e-4, 3.3e-3, 1.0])
def test_supply_stack_is_bitwise_the_per_model_supplies(beta: float) -> None:
    knots = _supply_knots()
    plain = [Supply.of_cost(p, x, beta, 1e-4) for p, x in knots]
    stack = SupplyStack.of_costs(CostKnots.of(knots), beta, 1e-4)
    for m, s in enumerate(plain):
        n = len(s.p)
        assert stack.last[m] == n - 1
        assert np.array_equal(stack.p[m, :n], s.p)
        assert np.array_equal(stack.x[m, :n], s.x)
        assert np.array_equal(stack.integral[m, :n], s.integral)
    rng = np.random.default_rng(0)
    for _ in range(100):
        alpha = rng.normal(0, 1, len(knots)) * beta * 300
        if _ % 4 == 0:  # exactly on knots
            alpha = np.array([s.p[rng.integers(len(s.p))] for s in plain])
        load, slope, psi = stack.evaluate(alpha)
        assert np.array_equal(load, [s.load(a) for s, a in zip(plain, alpha, strict=True)])
        assert np.array_equal(slope, [s.slope(a) for s, a in zip(plain, alpha, strict=True)])
        assert np.allclose(psi, [s.conjugate(a) for s, a in zip(plain, alpha, strict=True)],
                           rtol=1e-13, atol=1e-15)


def test_supply_stack_drops_prices_that_rounding_made_equal() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(3000):
        v = rng.random() * 10
        p = np.array([0.0, v, np.nextafter(v, 20.0), v + 1, v + 3])
        x = np.array([0.0, 0.2, 0.2, 0.5, 0.9])
        beta = rng.random()
        if (p * beta + 1e-4 * x)[1] != (p * beta + 1e-4 * x)[2]:
            continue
        hits += 1
        plain = Supply.of_cost(p, x, beta, 1e-4)
        stack = SupplyStack.of_costs(CostKnots.of([(p, x)]), beta, 1e-4)
        assert stack.last[0] == len(plain.p) - 1 == 3
        assert np.array_equal(stack.p[0, :4], plain.p)
        assert np.array_equal(stack.integral[0, :4], plain.integral)
    assert hits > 0


def _chain(xs: np.ndarray, ys: np.ndarray) -> list[int]:
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a]) <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def test_lower_hull_fast_path_matches_the_monotone_chain() -> None:
    rng = np.random.default_rng(3)
    for trial in range(600):
        xs = np.cumsum(rng.random(int(rng.integers(2, 40))) + 1e-3)
        ys = [xs**2, rng.random(len(xs)), np.round(xs**2, 1)][trial % 3]  # convex/any/ties
        assert lower_hull(xs, ys).tolist() == _chain(xs, ys)


def test_a_colder_demand_can_adopt_a_warmer_screen() -> None:
    rng = np.random.default_rng(8)
    scores_t = transposed(rng.random((12_000, 32)))
    alpha = rng.random(32) * 0.1
    warm = Demand(scores_t, 1e-3, margin_t=12.0)
    warm.evaluate(alpha)
    cold = Demand(scores_t, 1e-4)
    cold.adopt(warm)
    full = Demand(scores_t, 1e-4, screen=False)
    for step in range(6):
        moved = alpha + rng.normal(0, 0.001 * step, 32)
        v1, d1, h1 = cold.evaluate(moved)
        v2, d2, h2 = full.evaluate(moved)
        assert v1 == pytest.approx(v2, rel=1e-12)
        assert np.abs(d1 - d2).max() < 1e-12
        assert np.abs(h1 - h2).max() <= 1e-9 * np.abs(h2).max()
    assert cold.screens == 0  # never screened itself: the warm screen stayed valid
