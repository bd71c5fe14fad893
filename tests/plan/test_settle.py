"""The length fixed point (``plan/settle.py``): a model's curve is re-estimated with the
prompts the chosen routing sends it, re-routed, until the routed lengths hold still; a model
routed the workload's mix keeps its curve; weighted length pools are deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.errors import InfeasibleError, InputError
from routerwise.latency.curve import fit_curve
from routerwise.plan.settle import routed_mixes, settle, shift
from routerwise.plan.shapes import ShapeEstimate, ShapeProfiles
from routerwise.profiles.estimator import TokenLengths
from routerwise.profiles.table import ProfilePoints
from routerwise.search.evaluate import EvalContext
from routerwise.search.search import Candidate
from routerwise.spec.core import readonly
from routerwise.spec.deployment import Instance, InstanceShape, setup_from_instances

GPU = "H100-SXM"
N = 400


def test_weighted_pool_follows_the_weights_and_is_deterministic() -> None:
    inp, out = np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0])
    pool = TokenLengths.weighted(inp, out, [1.0, 0.0, 3.0], "t", size=400)
    assert sorted(set(pool.input_tokens.tolist())) == [10.0, 30.0]
    assert np.count_nonzero(pool.input_tokens == 30.0) == 300
    assert pool.means() == pytest.approx((25.0, 2.5))
    again = TokenLengths.weighted(inp, out, [2.0, 0.0, 6.0], "t", size=400)
    assert again.digest() == pool.digest()  # same proportions: same pool, same cache key
    for bad in ([0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1.0, np.nan, 1.0]):
        with pytest.raises(InputError, match="weights"):
            TokenLengths.weighted(inp, out, bad, "t")


def _curve(mean_input: float) -> ShapeEstimate:
    """A synthetic shape whose latency grows and capacity shrinks with the prompt length."""
    scale = mean_input / 100.0
    cap = 20.0 / scale
    rates = np.linspace(0.05, 0.9, 8) * cap
    values = 20.0 * scale / (1.0 - rates / cap)
    points = ProfilePoints("m", readonly(rates), readonly(values), "ttft_mean_ms", (), "<t>")
    return ShapeEstimate(fit_curve(points), cap)


def _problem(rate_rps: float, slo_ms: float = 300.0) -> tuple[ShapeProfiles, EvalContext, Candidate,
                                         dict[str, TokenLengths]]:
    """``long`` wins the long prompts, ``short`` the short ones; both curves estimated on the
    whole pool (mean 300 tokens)."""
    rng = np.random.default_rng(0)
    inp = np.where(np.arange(N) % 2 == 0, 100.0, 500.0)
    scores = np.column_stack([np.where(inp > 300, 0.9, 0.5), np.where(inp > 300, 0.5, 0.9)])
    scores = np.clip(scores + rng.normal(0, 0.01, scores.shape), 0, 1)
    pool = {m: TokenLengths.pool(inp, np.full(N, 50.0), m) for m in ("long", "short")}
    setup = setup_from_instances([Instance("long", GPU, 1, 1.0, (0,)),
                                  Instance("short", GPU, 1, 1.0, (1,))])
    shapes = {d.shape: _curve(300.0) for d in setup.deployments}
    profiles = ShapeProfiles(curves={k: v.curve for k, v in shapes.items()},
                             provenance=dict.fromkeys(shapes, "estimated"), estimated=2,
                             supplied=0, unusable={},
                             saturation_rps={k: v.saturation_rps for k, v in shapes.items()})
    ctx = EvalContext(("long", "short"), readonly(scores), profiles.curves, total_rps=rate_rps,
                      slo_ms=slo_ms, gpu_type=GPU)
    return profiles, ctx, Candidate(0, setup, "feasible", ""), pool


def test_each_model_is_reestimated_with_what_it_is_routed() -> None:
    profiles, ctx, chosen, pool = _problem(5.0)
    calls: list[tuple[str, float]] = []

    def estimate(key: InstanceShape, lengths: TokenLengths, replicas: int) -> ShapeEstimate:
        assert replicas == 1
        calls.append((key.model, lengths.means()[0]))
        return _curve(lengths.means()[0])

    s = settle(profiles, ctx, chosen, pool, pool, estimate)
    assert s.feasible and s.converged and s.rounds >= 1
    assert {m for m, _ in calls} == {"long", "short"}
    for m, (lengths, kind) in s.basis.items():
        assert kind == "routed"
        assert shift(lengths, s.mixes[m]) <= 0.05  # the curve stands for what it gets
    assert s.basis["long"][0].means()[0] > 400
    assert s.basis["short"][0].means()[0] < 200
    shape = next(d.shape for d in chosen.setup.deployments if d.model == "long")
    assert s.shapes.curves[shape] is not profiles.curves[shape]
    assert s.shapes.saturation_rps[shape] < profiles.saturation_rps[shape]
    assert s.ctx.shape_curves[shape] is s.shapes.curves[shape]


def test_a_model_routed_the_pools_mix_keeps_its_curve() -> None:
    profiles, ctx, chosen, pool = _problem(5.0)
    scores = np.full(ctx.scores.shape, 0.5)  # ties everywhere: each model gets the pool's mix
    ctx = EvalContext(ctx.models, readonly(scores), ctx.shape_curves, ctx.total_rps,
                      ctx.slo_ms, ctx.gpu_type)

    def estimate(key: InstanceShape, lengths: TokenLengths, replicas: int) -> ShapeEstimate:
        raise AssertionError(f"{key.model} should not be re-estimated")

    s = settle(profiles, ctx, chosen, pool, pool, estimate)
    assert s.feasible and s.rounds == 0
    assert all(kind == "workload" for _, kind in s.basis.values())
    assert routed_mixes(s.routed, pool).keys() == {"long", "short"}


def test_replicas_are_reestimated_as_a_balanced_group_once() -> None:
    """A deployment of several replicas gets a curve of that many behind least-outstanding
    balancing even when its lengths did not move; then it holds still."""
    profiles, ctx, _, pool = _problem(5.0)
    two = setup_from_instances([Instance("long", GPU, 1, 1.0, (0,)),
                                Instance("long", GPU, 1, 1.0, (2,)),
                                Instance("short", GPU, 1, 1.0, (1,))])
    scores = np.full(ctx.scores.shape, 0.5)
    ctx = EvalContext(ctx.models, readonly(scores), ctx.shape_curves, ctx.total_rps,
                      ctx.slo_ms, ctx.gpu_type)
    calls: list[tuple[str, int]] = []

    def estimate(key: InstanceShape, lengths: TokenLengths, replicas: int) -> ShapeEstimate:
        calls.append((key.model, replicas))
        return _curve(lengths.means()[0])

    s = settle(profiles, ctx, Candidate(0, two, "feasible", ""), pool, pool, estimate)
    assert s.feasible and s.converged
    assert calls == [("long", 2)]
    assert s.replicas == {"long": 2, "short": 1}


def test_a_setup_that_cannot_serve_its_routed_lengths_is_reported_infeasible() -> None:
    profiles, ctx, chosen, pool = _problem(5.0)

    def estimate(key: InstanceShape, lengths: TokenLengths, replicas: int) -> ShapeEstimate:
        raise InfeasibleError("cannot serve")

    s = settle(profiles, ctx, chosen, pool, pool, estimate)
    assert not s.feasible
    assert s.mixes["long"].means()[0] > 400  # what it was routed before the curve moved


def test_plans_written_before_the_length_fields_still_load() -> None:
    """``lengths``, ``length_rounds`` and ``length_searches`` are optional in plan.json (a
    plan written before them validates), and a written ``lengths`` round-trips."""
    from pydantic import TypeAdapter

    from routerwise.spec.plan import CurveLengths, ModelLoad, Prediction, plan_json_schema

    defs = plan_json_schema()["$defs"]
    assert "lengths" in defs["ModelLoad"]["properties"]
    assert "lengths" not in defs["ModelLoad"]["required"]
    assert not {"length_rounds", "length_searches"} & set(defs["Prediction"]["required"])
    old = {"deployment": "1×tp1", "rate_rps": 1.0, "ttft_mean_ms": 20.0, "capacity_rps": 2.0,
           "utilisation": 0.5}
    adapter = TypeAdapter(Prediction)
    got = adapter.validate_python({"ttft_mean_ms": 20.0, "per_model": {"a": old},
                                   "convexified": False})
    assert got.per_model["a"].lengths is None and got.length_rounds == 0
    new = ModelLoad("1×tp1", 1.0, 20.0, 2.0, 0.5, CurveLengths("routed", 250.0, 80.0, 251.0, 79.0))
    again = TypeAdapter(ModelLoad).validate_python(
        TypeAdapter(ModelLoad).dump_python(new, mode="json"))
    assert again == new


def test_a_baseline_that_settles_better_becomes_the_plan() -> None:
    """Baselines are settled like the plan's setup; one that then predicts a higher quality
    within the SLO is chosen (the search ranked setups on the workload's lengths)."""
    from routerwise.plan.settle import best_settled, settle_baselines

    profiles, ctx, chosen, pool = _problem(5.0, slo_ms=100.0)  # binds once settled
    bigger = Candidate(1, setup_from_instances([Instance("long", GPU, 1, 1.0, (0,)),
                                                Instance("long", GPU, 1, 1.0, (2,)),
                                                Instance("short", GPU, 1, 1.0, (1,))]),
                       "feasible", "", baselines=("equal_split",))
    mine = Candidate(0, chosen.setup, "feasible", "", baselines=("isolated",))

    def estimate(key: InstanceShape, lengths: TokenLengths, replicas: int) -> ShapeEstimate:
        return _curve(lengths.means()[0])

    s = settle(profiles, ctx, mine, pool, pool, estimate)
    base = settle_baselines(profiles, ctx, [mine, bigger], ("equal_split", "isolated"), mine,
                            s, pool, pool, estimate, frozenset())
    assert base["isolated"] is s  # the plan's own setup is not settled twice
    assert base["equal_split"].feasible
    assert base["equal_split"].routed.result.quality > s.routed.result.quality
    pick, final, name = best_settled(mine, s, base, [mine, bigger])
    assert pick is bigger and final is base["equal_split"] and name == "equal_split"
    assert best_settled(mine, s, {"isolated": s}, [mine, bigger])[2] is None
