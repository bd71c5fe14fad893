"""The scalable (Lagrangian) search: its answer agrees with the exhaustive reference, its
upper bound is valid, and its pieces — the dual-feasible rounding, the pricing MILP — are
checked against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routerwise.search.bounds import BOUND_SLACK
from routerwise.search.columns import (
    DFF_KS,
    build_columns,
    dff,
    price_columns,
    solve_pricing,
    top_pricings,
)
from routerwise.search.evaluate import EvalContext, Evaluator
from routerwise.search.methods import run_search
from routerwise.search.search import SearchConfig, best_candidate
from routerwise.search.space import SHARE_UNITS, ModelOptions, model_options
from routerwise.spec.catalog import get_gpu, get_model
from routerwise.spec.core import readonly
from tests.search.synthetic import synthetic_curves

MODELS = ("mistral-7b", "llama-2-13b", "yi-34b")


def _context(seed: int, rate_rps: float, slo_ms: float, gpus: int = 4
             ) -> tuple[EvalContext, list[ModelOptions]]:
    gpu = get_gpu("A100-SXM-80GB")
    opts = [model_options(m, get_model(m), gpu, gpus, 4) for m in MODELS]
    rng = np.random.default_rng(seed)
    ability = np.array([0.0, 0.5, 1.0])
    logits = ability - rng.normal(0, 1.2, (300, 1)) + rng.normal(0, .7, (300, 3))
    ctx = EvalContext(MODELS, readonly(1 / (1 + np.exp(-logits))), synthetic_curves(opts),
                      total_rps=rate_rps, slo_ms=slo_ms, gpu_type=gpu.name)
    return ctx, opts


@pytest.mark.parametrize(("seed", "rate_rps", "slo_ms"), [(0, 12.0, 150.0), (1, 20.0, 120.0),
                                                          (2, 6.0, 90.0)])
def test_agrees_with_exhaustive_and_bounds_it(seed: int, rate_rps: float, slo_ms: float) -> None:
    """3 models on 4 GPUs: same quality within 1e-3; the bound ≥ the exhaustive optimum."""
    ctx, opts = _context(seed, rate_rps, slo_ms)
    found = {m: run_search(ctx, opts, 4, 4, SearchConfig(method=m, executor="serial",
                                                          spread_sample=0))
             for m in ("lagrangian", "exhaustive")}
    best = {m: best_candidate(r.candidates) for m, r in found.items()}
    ref, new = best["exhaustive"], best["lagrangian"]
    assert ref is not None and new is not None
    assert abs(new.quality - ref.quality) <= 1e-3, (new.quality, ref.quality)
    lag = found["lagrangian"]
    assert lag.upper_bound >= ref.quality - 1e-9
    assert 0 <= lag.gap < 0.2
    assert lag.method == "lagrangian" and lag.retained is None and lag.dual_iterations > 1
    assert found["exhaustive"].upper_bound >= ref.quality - 1e-12


def test_infeasible_is_an_answer_with_no_bound() -> None:
    ctx, opts = _context(0, rate_rps=400.0, slo_ms=150.0)  # far beyond the cluster
    result = run_search(ctx, opts, 4, 4, SearchConfig(method="lagrangian", executor="serial"))
    assert best_candidate(result.candidates) is None
    assert math.isnan(result.gap)


def test_unknown_method_is_an_input_error() -> None:
    ctx, opts = _context(0, 12.0, 150.0)
    with pytest.raises(ValueError, match=r"unknown search method 'greedy'.*exhaustive"):
        run_search(ctx, opts, 4, 4, SearchConfig(method="greedy"))


@given(st.lists(st.integers(1, SHARE_UNITS), min_size=1, max_size=10))
def test_rounded_shares_of_one_gpu_sum_to_at_most_one(shares: list[int]) -> None:
    """The Fekete–Schepers functions are dual feasible: what fits on a GPU stays ≤ 1."""
    if sum(shares) > SHARE_UNITS:
        return
    for k in DFF_KS:
        assert sum(dff(k, s) for s in shares) <= 1 + 1e-12, (k, shares)


def test_pricing_matches_brute_force() -> None:
    """The MILP's optimum over at most one column per model, within the capacity rows."""
    ctx, opts = _context(0, 12.0, 150.0, gpus=2)
    cols = build_columns(Evaluator(ctx), opts)
    rng = np.random.default_rng(5)
    for _ in range(5):
        value = np.maximum(rng.normal(0.02, 0.03, len(cols)), 0.0)
        got = solve_pricing(cols, value, (2,))
        per_model = [[None, *np.flatnonzero(cols.model == m)] for m in range(len(MODELS))]
        brute = 0.0
        for combo in itertools.product(*per_model):
            chosen = [c for c in combo if c is not None]
            units = sum(cols.units[c] for c in chosen) / SHARE_UNITS
            rounded = [sum(cols.rounded[r, c] for c in chosen) for r in range(len(DFF_KS))]
            if units <= 2 + 1e-9 and all(x <= 2 + 1e-9 for x in rounded):
                brute = max(brute, float(sum(value[c] for c in chosen)))
        assert got.value == pytest.approx(brute, abs=1e-9)
        assert got.bound >= brute - 1e-9
        top = top_pricings(cols, value, (2,), 4)
        assert top[0].value == pytest.approx(brute, abs=1e-9)
        assert len({t.chosen for t in top}) == len(top)
        assert all(a.value >= b.value - 1e-9 for a, b in itertools.pairwise(top))


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["paper-a100-3m", "paper-a100-4m"])
def test_paper_scenarios_agree_with_exhaustive(scenario: str) -> None:
    from routerwise.plan.run import make_plan
    from routerwise.scenarios.registry import load_scenario_spec

    spec = load_scenario_spec(scenario)
    plans = {m: make_plan(spec, scenario, None, settle_lengths=False,  # the searches alone
                          config=SearchConfig(method=m, executor="serial")).built.plan
             for m in ("lagrangian", "exhaustive")}
    ref, new = plans["exhaustive"], plans["lagrangian"]
    assert ref.quality.predicted is not None and new.quality.predicted is not None
    assert abs(new.quality.predicted - ref.quality.predicted) <= 1e-3
    assert new.search.upper_bound is not None
    assert new.search.upper_bound >= ref.quality.predicted - 1e-9
    assert new.search.method == "lagrangian" and ref.search.method == "exhaustive"


def test_column_worth_from_one_replica_bounds_the_replicated_envelope() -> None:
    """g of r replicas priced from one replica's envelope (h_r(x) = r·h_1(x/r)) is ≥ the
    worth on the r-replica deployment's own envelope (so the bound stays valid) and close."""
    ctx, opts = _context(0, 12.0, 150.0)
    evaluator = Evaluator(ctx)
    cols = build_columns(evaluator, opts)
    rng = np.random.default_rng(2)
    for _ in range(3):
        alpha = rng.uniform(0.0, 0.5, len(MODELS))
        beta = float(rng.uniform(0.0, 0.01))
        got = price_columns(cols, alpha, beta)
        for c, dep in enumerate(cols.options):
            own = evaluator.cost(MODELS[int(cols.model[c])], dep)
            exact = float(np.max(alpha[cols.model[c]] * own.xs - beta * own.hs))
            assert got.value[c] >= exact - BOUND_SLACK  # the sampling's chord error
            assert got.value[c] <= exact + 2e-3 * max(1.0, abs(exact))
            assert got.x[c] <= own.cap_x + 1e-9
