"""The search finds the optimum: compared with brute force over every retained setup (the
dominated ones too) solved by the exact LP; and its baselines never beat it."""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.routing.exact import solve_exact
from routerwise.search.enumerate import EnumerationCounts, enumerate_setups
from routerwise.search.evaluate import EvalContext, Evaluator
from routerwise.search.search import SearchConfig, best_candidate, search_setups
from tests.search.synthetic import small_problem


@pytest.fixture(scope="module")
def small() -> tuple[EvalContext, list, int]:  # type: ignore[type-arg]
    ctx, opts = small_problem()  # feasible by construction
    return ctx, opts, 4


@pytest.mark.slow
def test_search_matches_exact_brute_force(small) -> None:  # type: ignore[no-untyped-def]
    ctx, opts, gpus = small
    result = search_setups(ctx, opts, gpus, 4, SearchConfig(executor="serial", spread_sample=20))
    best = best_candidate(result.candidates)
    assert best is not None and best.status == "feasible"
    evaluator = Evaluator(ctx)
    brute = -np.inf
    counts = EnumerationCounts()
    for placed in enumerate_setups(opts, gpus, 4, counts):
        problem, _, _ = evaluator.problem(placed.setup)
        exact = solve_exact(problem)
        if exact.feasible:
            brute = max(brute, exact.quality)
    assert counts.retained == result.retained
    assert np.isfinite(brute), "no retained setup is feasible: the scenario must guarantee one"
    assert abs(best.quality - brute) <= 1e-3, (best.quality, brute)
    assert result.evaluated < result.retained  # pruning did work


def test_baselines_never_beat_the_plan(small) -> None:  # type: ignore[no-untyped-def]
    ctx, opts, gpus = small
    result = search_setups(ctx, opts, gpus, 4, SearchConfig(executor="serial", spread_sample=0))
    best = best_candidate(result.candidates)
    assert best is not None and best.status == "feasible"
    feasible = [c for c in result.candidates if c.baselines and c.status == "feasible"]
    # not vacuous: the isolated and best-single-model baselines meet the SLO here
    assert {"isolated", "best_single_model"} <= {b for c in feasible for b in c.baselines}
    for c in feasible:
        assert c.quality <= best.quality + 1e-12, (c.baselines, c.quality, best.quality)


def test_process_pool_gives_the_same_answer(small) -> None:  # type: ignore[no-untyped-def]
    ctx, opts, gpus = small
    serial = best_candidate(search_setups(ctx, opts, gpus, 4,
                                          SearchConfig(executor="serial")).candidates)
    pooled = best_candidate(search_setups(ctx, opts, gpus, 4,
                                          SearchConfig(executor="process", workers=2)).candidates)
    assert serial is not None and pooled is not None
    # warm starts differ between processes: the same optimum to solver tolerance
    assert pooled.quality == pytest.approx(serial.quality, abs=1e-6)
